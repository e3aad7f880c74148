// launch_sample: one CTA of sampling_detail::kSampleThreads per row (sample.cuh).
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/sampling/launch.h"
#include "backend/cuda/sampling/sample.cuh"
#include "core/check.h"

namespace dsv4::cuda {

void launch_sample(const SampleParams& p, cudaStream_t stream) {
  check(p.vocab > 0, "launch_sample: vocab must be positive");
  if (p.n_rows == 0) return;
  launch_kernel(sample_kernel, p.n_rows, sampling_detail::kSampleThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
