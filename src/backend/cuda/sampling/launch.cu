// launch_sample: one CTA of sampling_detail::kSampleThreads per row (sample.cuh), or a cluster of kGreedyCtas per
// row when every row is greedy without logprobs, the vocabulary gives each CTA at least 4096 logits and there are
// at most 64 rows (H200 run 150, dsv4_sampling_bench greedy at vocab 129280, ms per call incl. the result copy:
// clusters 0.025 / 0.027 / 0.049 / 0.152 at B = 1 / 8 / 64 / 256; one CTA per row 0.045 / 0.046 / 0.057 / 0.116 in
// run 148).
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/sampling/launch.h"
#include "backend/cuda/sampling/sample.cuh"
#include "core/check.h"

namespace dsv4::cuda {

void launch_sample(const SampleParams& p, cudaStream_t stream) {
  check(p.vocab > 0, "launch_sample: vocab must be positive");
  if (p.n_rows == 0) return;
  if (p.greedy_only && p.vocab >= 4096 * sampling_detail::kGreedyCtas && p.n_rows <= 64)
    launch_kernel(sample_greedy_kernel, p.n_rows * sampling_detail::kGreedyCtas, sampling_detail::kSampleThreads, 0,
                  stream, p);
  else
    launch_kernel(sample_kernel, p.n_rows, sampling_detail::kSampleThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
