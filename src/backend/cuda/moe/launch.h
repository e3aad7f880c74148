// Host entry points of the MoE kernel family: asynchronous on `stream`, no allocation, CUDA-graph safe.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "backend/cuda/moe/params.h"
#include "backend/cuda/moe/plan.h"

namespace dsv4::cuda {

// sel / weight of the router on the device.
void launch_route(const RouteParams& p, cudaStream_t stream);
// counts, offsets, tile list (p.bm), then perm.
void launch_moe_align(const MoeAlignParams& p, cudaStream_t stream);
// Only the tile list for another bm (counts and offsets from an earlier launch_moe_align are rewritten).
void launch_moe_align_tiles(const MoeAlignParams& p, cudaStream_t stream);
// route + moe_align in one single-CTA launch (decode): E <= kFusedRouteMaxExperts, n_slots <= kAlignThreads;
// the same sel / weight / counts / offsets / perm / tile list as launch_route then launch_moe_align.
void launch_moe_route_align(const MoeRouteAlignParams& p, cudaStream_t stream);
void launch_moe_fake_quant(const MoeFakeQuantParams& p, cudaStream_t stream);
// Empty when the FP8 prefill kernel (moe_gemm_fp8.cuh) supports weights of this format and shape (gate_up: the
// w1 / w3 linear); the caller also checks the scales (its exactness condition).
std::string moe_fp8_shape_unsupported(MoeWeightFormat format, MoeScaleDtype scale_dtype, int64_t N, int64_t K,
                                      bool gate_up);
// Grouped expert GEMM along `path` (p.a_q set: the FP8 prefill kernel, path MmaPrefill); max_tiles = the tile
// capacity given to moe_align for moe_gemm_bm(path).
void launch_moe_gemm(const MoeGemmParams& p, MoeGemmPath path, int64_t max_tiles, cudaStream_t stream);
void launch_moe_combine(const MoeCombineParams& p, cudaStream_t stream);

}  // namespace dsv4::cuda
