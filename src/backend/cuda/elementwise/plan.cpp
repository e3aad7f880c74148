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

namespace dsv4::cuda {

RmsNormF32Plan plan_rms_norm_f32(int64_t dim) {
  RmsNormF32Plan p;
  if (dim <= 0 || dim % 4 != 0 || dim > 4 * kRmsNormF32Threads * 8) return p;
  const int64_t n4 = dim / 4;
  p.group = n4 <= 32 * 4 ? 32 : kRmsNormF32Threads;
  const int64_t need = (n4 + p.group - 1) / p.group;
  p.chunks = need <= 1 ? 1 : need <= 2 ? 2 : need <= 4 ? 4 : 8;
  return p;
}

int plan_flat_blocks(int64_t work_items, int sms) {
  const int64_t blocks = (work_items + kF32MapThreads - 1) / kF32MapThreads;
  const int64_t cap = static_cast<int64_t>(sms > 0 ? sms : 132) * 8 * 4;
  return static_cast<int>(blocks < 1 ? 1 : blocks < cap ? blocks : cap);
}

}  // namespace dsv4::cuda
