// Schedule constants and capability checks of the MoE kernels shared by host and device code.
// route_kernel: one warp per token, E <= kRouteMaxExperts, top_k <= kRouteMaxTopK.
// moe_align: E <= kAlignMaxExperts (one CTA counts and scans).
// Grouped expert GEMM, three paths (moe_gemm_path picks one):
//   Simt        any format / shape / numerics (f32 A, weights dequantized per element, sequential-K f32 FMAs)
//   MmaDecode   bf16 mma.sync, tile 16 slots x 64 weight rows (few slots per expert: weight streaming)
//   MmaPrefill  bf16 mma.sync, tile 128 slots x 64 weight rows
//   MmaGemv / MmaGemvWide  decode (moe_gemv.cuh): swap-AB mma.sync, weights as the 16-row A operand decoded in
//               registers, tile 16 / 64 slots; each CTA streams 16 (gate/up: w1 and w3) or 32 (down) weight rows
//               of one expert once with 16-byte loads, split-K over its warps (moe_gemv_warps), deterministic reduce.
//               Needs what the mma paths need plus N % 32 == 0 (moe_gemv_unsupported).
// The mma paths need A exactly representable in bf16 (FP8 fake-quantized acts) and MXFP4 / FP8 weights with
// e8m0 scales (code times a power of two, exact in bf16), N % 64 == 0 and K % 128 == 0.
#pragma once
#include <cstdint>
#include <string>

#include "backend/cuda/moe/params.h"

namespace dsv4::cuda {

inline constexpr int kRouteWarps = 4;
inline constexpr int kRouteMaxExperts = 1024;
inline constexpr int kRouteMaxTopK = 16;
inline constexpr int kRouteRankThreads = 256;  // route_rank_kernel: one CTA per token
inline constexpr int kRouteRankMaxT = 256;     // tokens up to which launch_route picks route_rank_kernel
inline constexpr int kAlignMaxExperts = 1024;
inline constexpr int kAlignThreads = 1024;
inline constexpr int kAlignPlaceThreads = 256;
inline constexpr int kAlignPlacePer = 8;  // consecutive slots per thread and round of moe_align_place_kernel
inline constexpr int kCombineThreads = 128;
inline constexpr int kCombineSlotsInFlight = 8;  // moe_combine_bf16_kernel: slot loads issued together
inline constexpr int kFusedRouteMaxExperts = 256;  // moe_route_align_kernel: a lane holds E / 32 <= 8 keys

// Empty when moe_route_align_kernel supports the shape.
std::string moe_route_align_unsupported(int64_t E, int64_t top_k, int64_t n_slots);
// Whether the fused decode launches are enabled (route+align in one kernel, the activation fake-quant inside the
// gemv kernels): DSV4_MOE_FUSE=0 in the environment selects the separate kernels.
bool moe_fuse_enabled();

inline constexpr int kMoeSimtBM = 32;
inline constexpr int kMoeSimtBN = 64;
inline constexpr int kMoeSimtBK = 32;
inline constexpr int kMoeSimtThreads = 256;

inline constexpr int kMoeMmaBK = 64;
inline constexpr int kMoeMmaBN = 64;

inline constexpr int kMoeGemvWarps = 8;
inline constexpr int kMoeGemvWarpsLargeGrid = 2;
// Warps per CTA of the 2-n-tile gemv kernel for a grid of `ctas` CTAs on `sms` SMs: KernelPaths::moe_gemv_warps
// when 1, 2, 4 or 8, else kMoeGemvWarpsLargeGrid from 4 CTAs per SM on (routed experts: K split over fewer warps,
// each with more supersteps, so the per-warp set-up and the reduction cost less per byte, and the small CTAs, 8 per
// SM, fill the SMs evenly), kMoeGemvWarps below (a single tile, e.g. the shared expert's 128 CTAs: fewer warps would
// leave the SMs half empty). H200 run 159 (4 against 8), run 200 (2 against 4: Flash B=64 gate/up 368 -> 350 us,
// down 217 -> 201 us; B=1 25.4 -> 23.6 and 14.5 -> 13.9 us; the shared expert's 128 CTAs 11.8 -> 23.2 us on 2).
int moe_gemv_warps(int64_t ctas, int sms);

enum class MoeGemmPath { Simt, MmaDecode, MmaPrefill, MmaGemv, MmaGemvWide };

// Slots per tile of a path (the bm of its moe_align tile list).
int moe_gemm_bm(MoeGemmPath path);
// Upper bound of the tile count: at most min(n_slots, E) experts are non-empty.
int64_t moe_max_tiles(int64_t n_slots, int64_t n_experts, int bm);
// Empty when the mma paths support the weight set.
std::string moe_mma_unsupported(MoeWeightFormat format, MoeScaleDtype scale_dtype, int64_t N, int64_t K);
// Empty when the gemv paths support the weight set.
std::string moe_gemv_unsupported(MoeWeightFormat format, MoeScaleDtype scale_dtype, int64_t N, int64_t K);
// Whether the gemv paths are enabled: DSV4_MOE_GEMV=0 in the environment selects the older mma paths.
bool moe_gemv_enabled();
// Prefill tile (128 slots) when kernel_paths().moe_wgmma; else the decode tile while the average slot count per
// used expert is below 32, the prefill tile above.
MoeGemmPath moe_mma_tile(int64_t n_slots, int64_t n_experts);

}  // namespace dsv4::cuda
