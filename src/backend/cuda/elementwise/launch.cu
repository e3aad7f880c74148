// Launchers of the elementwise family: validate, pick the compiled instance from the plan, launch, check.
#include <cstdint>
#include <string>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/elementwise/launch.h"
#include "backend/cuda/elementwise/plan.h"
#include "backend/cuda/elementwise/rms_norm.cuh"
#include "backend/cuda/elementwise/rows_f32.cuh"
#include "core/check.h"

namespace dsv4::cuda {

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  const RmsNormPlan plan = plan_rms_norm(p.dim);
  check(plan.unsupported.empty(), plan.unsupported);
  check(p.n_rows >= 0 && p.n_rows <= INT32_MAX, [&] { return "rms_norm: n_rows " + std::to_string(p.n_rows) + " out of range"; });
  check(reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && reinterpret_cast<uintptr_t>(p.y) % 16 == 0 &&
            reinterpret_cast<uintptr_t>(p.weight) % 16 == 0,
        "rms_norm: x, y and weight must be 16-byte aligned");
  check(p.x != p.y, "rms_norm: y must not alias x");
  if (p.n_rows == 0) return;
  auto launch = [&]<int kChunks>() {
    launch_kernel(rms_norm_kernel<kRmsNormThreads, kChunks>, static_cast<unsigned>(p.n_rows), kRmsNormThreads, 0, stream, p);
  };
  switch (plan.chunks) {
    case 1: launch.template operator()<1>(); break;
    case 2: launch.template operator()<2>(); break;
    case 4: launch.template operator()<4>(); break;
    default: launch.template operator()<8>(); break;
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

namespace {
bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
}  // namespace

void launch_rms_norm_f32(const RmsNormF32Params& p, cudaStream_t stream) {
  check(p.dim > 0, [&] { return "rms_norm f32: dim " + std::to_string(p.dim) + " must be positive"; });
  check(p.n_seg >= 0, "rms_norm f32: negative segment count");
  check(p.x != nullptr || p.n_seg == 0, "rms_norm f32: null x");
  if (p.n_seg == 0) return;
  const RmsNormF32Plan plan = plan_rms_norm_f32(p.dim);
  if (plan.group == 0 || !aligned16(p.x)) {
    check(p.n_seg <= INT32_MAX, [&] { return "rms_norm f32: n_seg " + std::to_string(p.n_seg) + " exceeds grid.x"; });
    launch_kernel(rms_norm_f32_generic_kernel, static_cast<unsigned>(p.n_seg), kRmsNormF32Threads, 0, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t segs_per_cta = kRmsNormF32Threads / plan.group;
  const int64_t blocks = (p.n_seg + segs_per_cta - 1) / segs_per_cta;
  check(blocks <= INT32_MAX, [&] { return "rms_norm f32: n_seg " + std::to_string(p.n_seg) + " exceeds grid.x"; });
  auto launch = [&]<int kGroup, int kChunks>() {
    launch_kernel(rms_norm_f32_kernel<kGroup, kChunks>, static_cast<unsigned>(blocks), kRmsNormF32Threads, 0, stream, p);
  };
  if (plan.group == 32) {
    switch (plan.chunks) {
      case 1: launch.template operator()<32, 1>(); break;
      case 2: launch.template operator()<32, 2>(); break;
      default: launch.template operator()<32, 4>(); break;
    }
  } else {
    switch (plan.chunks) {
      case 1: launch.template operator()<kRmsNormF32Threads, 1>(); break;
      case 2: launch.template operator()<kRmsNormF32Threads, 2>(); break;
      case 4: launch.template operator()<kRmsNormF32Threads, 4>(); break;
      default: launch.template operator()<kRmsNormF32Threads, 8>(); break;
    }
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_f32_map(const F32MapParams& p, F32Map op, int sms, cudaStream_t stream) {
  check(p.n >= 0, "f32 map: negative n");
  if (p.n == 0) return;
  check(p.y != nullptr, "f32 map: null y");
  const bool adds = op == F32Map::Add || op == F32Map::AddRound;
  if (adds)
    check(p.x != nullptr && p.x_n > 0 && p.n % p.x_n == 0,
          [&] { return "add: y has " + std::to_string(p.n) + " values, not a multiple of x's " + std::to_string(p.x_n); });
  const bool vec = p.n % 4 == 0 && aligned16(p.y) && (!adds || (p.x_n % 4 == 0 && aligned16(p.x)));
  const int blocks = plan_flat_blocks(vec ? p.n / 4 : p.n, sms);
  auto launch = [&]<F32Map kOp>() {
    if (vec) launch_kernel(f32_map_kernel<kOp, 4>, blocks, kF32MapThreads, 0, stream, p);
    else launch_kernel(f32_map_kernel<kOp, 1>, blocks, kF32MapThreads, 0, stream, p);
  };
  switch (op) {
    case F32Map::Round: launch.template operator()<F32Map::Round>(); break;
    case F32Map::Scale: launch.template operator()<F32Map::Scale>(); break;
    case F32Map::Add: launch.template operator()<F32Map::Add>(); break;
    case F32Map::ScaleRound: launch.template operator()<F32Map::ScaleRound>(); break;
    case F32Map::AddRound: launch.template operator()<F32Map::AddRound>(); break;
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_row_gather(const RowGatherParams& p, RowGather mode, int sms, cudaStream_t stream) {
  check(p.n_rows >= 0 && p.width >= 0, "row gather: negative shape");
  if (p.n_rows == 0 || p.width == 0) return;
  check(p.src && p.dst, "row gather: null operand");
  check(mode == RowGather::Expand ? p.repeat > 0 : p.index != nullptr, "row gather: missing index / repeat");
  check(mode != RowGather::AddPosition || p.src_rows > 0, "add_position_rows: empty table");
  const bool vec = p.width % 4 == 0 && aligned16(p.src) && aligned16(p.dst);
  const int blocks = plan_flat_blocks(p.n_rows * (vec ? p.width / 4 : p.width), sms);
  auto launch = [&]<RowGather kMode>() {
    if (vec) launch_kernel(row_gather_kernel<kMode, 4>, blocks, kF32MapThreads, 0, stream, p);
    else launch_kernel(row_gather_kernel<kMode, 1>, blocks, kF32MapThreads, 0, stream, p);
  };
  switch (mode) {
    case RowGather::Expand: launch.template operator()<RowGather::Expand>(); break;
    case RowGather::Gather: launch.template operator()<RowGather::Gather>(); break;
    case RowGather::AddPosition: launch.template operator()<RowGather::AddPosition>(); break;
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
