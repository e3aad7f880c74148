// Launchers of the elementwise family: validate, pick the compiled instance from the plan, launch, check.
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/elementwise/launch.h"
#include "backend/cuda/elementwise/plan.h"
#include "backend/cuda/elementwise/rms_norm.cuh"
#include "core/check.h"

namespace dsv4::cuda {

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  const RmsNormPlan plan = plan_rms_norm(p.dim);
  check(plan.unsupported.empty(), plan.unsupported);
  check(p.n_rows >= 0 && p.n_rows <= INT32_MAX, "rms_norm: n_rows " + std::to_string(p.n_rows) + " out of range");
  check(reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && reinterpret_cast<uintptr_t>(p.y) % 16 == 0 &&
            reinterpret_cast<uintptr_t>(p.weight) % 16 == 0,
        "rms_norm: x, y and weight must be 16-byte aligned");
  check(p.x != p.y, "rms_norm: y must not alias x");
  if (p.n_rows == 0) return;
  auto launch = [&]<int kChunks>() {
    rms_norm_kernel<kRmsNormThreads, kChunks><<<static_cast<unsigned>(p.n_rows), kRmsNormThreads, 0, stream>>>(p);
  };
  switch (plan.chunks) {
    case 1: launch.template operator()<1>(); break;
    case 2: launch.template operator()<2>(); break;
    case 4: launch.template operator()<4>(); break;
    default: launch.template operator()<8>(); break;
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
