// Launcher of the MXFP4 expert GEMV: validates the shape and dispatches on K / 1024 at compile time.
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/moe/launch.h"
#include "backend/cuda/moe/mxfp4_gemv.cuh"
#include "core/check.h"

namespace dsv4::cuda {

void launch_mxfp4_gemv(const Mxfp4GemvParams& p, cudaStream_t stream) {
  const std::string why = mxfp4_gemv_unsupported(p.N, p.K);
  check(why.empty(), why);
  check(p.n_slots >= 0 && p.n_slots <= 65535, "mxfp4 gemv: n_slots " + std::to_string(p.n_slots) +
                                                  " outside [0, 65535] (grid.y)");
  check(p.w && p.w_scale && p.xq && p.x_scale && p.slot_expert && p.slot_token && p.y,
        "mxfp4 gemv: null operand");
  check(reinterpret_cast<uintptr_t>(p.w) % 16 == 0, "mxfp4 gemv: w must be 16-byte aligned");
  if (p.n_slots == 0) return;
  const dim3 grid(static_cast<unsigned>(p.N / kMxfp4RowsPerCta), static_cast<unsigned>(p.n_slots));
  auto launch = [&]<int kChunks>() { mxfp4_gemv_kernel<kChunks><<<grid, kMxfp4Warps * 32, 0, stream>>>(p); };
  switch (p.K / 1024) {
    case 1: launch.template operator()<1>(); break;
    case 2: launch.template operator()<2>(); break;
    case 4: launch.template operator()<4>(); break;
    case 8: launch.template operator()<8>(); break;
    default: check(false, "mxfp4 gemv: K " + std::to_string(p.K) + " has no compiled instance (1024, 2048, 4096, 8192)");
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
