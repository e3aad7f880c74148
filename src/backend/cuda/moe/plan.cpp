// MoE kernel capability checks.
#include "backend/cuda/moe/plan.h"

namespace dsv4::cuda {

std::string mxfp4_gemv_unsupported(int64_t N, int64_t K) {
  if (N <= 0 || N % kMxfp4RowsPerCta != 0)
    return "mxfp4 gemv: N " + std::to_string(N) + " is not a positive multiple of " + std::to_string(kMxfp4RowsPerCta);
  if (K <= 0 || K % 1024 != 0 || K > kMxfp4MaxK)
    return "mxfp4 gemv: K " + std::to_string(K) + " must be a positive multiple of 1024 up to " +
           std::to_string(kMxfp4MaxK);
  return {};
}

}  // namespace dsv4::cuda
