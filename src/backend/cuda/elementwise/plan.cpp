// Elementwise schedules: the smallest compiled chunk count that covers a row.
#include "backend/cuda/elementwise/plan.h"

namespace dsv4::cuda {

RmsNormPlan plan_rms_norm(int64_t dim) {
  RmsNormPlan p;
  if (dim <= 0 || dim % 8 != 0) {
    p.unsupported = "rms_norm: dim " + std::to_string(dim) + " is not a positive multiple of 8";
    return p;
  }
  if (dim > kRmsNormMaxDim) {
    p.unsupported = "rms_norm: dim " + std::to_string(dim) + " exceeds the compiled maximum " +
                    std::to_string(kRmsNormMaxDim);
    return p;
  }
  const int64_t need = (dim / 8 + kRmsNormThreads - 1) / kRmsNormThreads;
  p.chunks = need <= 1 ? 1 : need <= 2 ? 2 : need <= 4 ? 4 : 8;
  return p;
}

}  // namespace dsv4::cuda
