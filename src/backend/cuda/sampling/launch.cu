// launch_sample: one CTA of sampling_detail::kSampleThreads per row (sample.cuh), or a cluster of kGreedyCtas per
// row when every row is greedy without logprobs, the vocabulary gives each CTA at least 4096 logits and the
// clusters fit on the GPU at once (at most kGreedyMaxRows rows). H200, ncu, vocab 129280: clusters 10.6 / 11.3 /
// 32.0 µs at B = 1 / 8 / 64 (run 151) against one CTA per row 25.2 / 25.4 / 26.3 (runs 148-149).
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/sampling/launch.h"
#include "backend/cuda/sampling/sample.cuh"
#include "core/check.h"

namespace dsv4::cuda {

void launch_sample(const SampleParams& p, cudaStream_t stream) {
  check(p.vocab > 0, "launch_sample: vocab must be positive");
  if (p.n_rows == 0) return;
  constexpr int32_t kGreedyMaxRows = 16;  // 128 CTAs: one wave on the H200's 132 SMs
  if (p.greedy_only && p.vocab >= 4096 * sampling_detail::kGreedyCtas && p.n_rows <= kGreedyMaxRows)
    launch_kernel(sample_greedy_kernel, p.n_rows * sampling_detail::kGreedyCtas, sampling_detail::kSampleThreads, 0,
                  stream, p);
  else
    launch_kernel(sample_kernel, p.n_rows, sampling_detail::kSampleThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
