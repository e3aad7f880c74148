// Parameter structs of the MoE kernel family. One struct per kernel, passed as `const __grid_constant__`;
// every pointer is __restrict__ with its dtype and shape.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace dsv4::cuda {

// MoE router (spec §6.1), one warp per token: s = sqrt(softplus(z)); sel = tid2eid[token] (hash layers) or the
// top_k of s + bias (descending, ties to the lower expert id); weight = s[sel] (normalised by Σ_k s[sel] in k
// order when normalize) · route_scale.
struct RouteParams {
  const float* __restrict__ logits = nullptr;    // f32 [T, E]
  const float* __restrict__ bias = nullptr;      // f32 [E] or nullptr
  const void* __restrict__ tid2eid = nullptr;    // i64 or i32 [vocab, top_k] or nullptr
  const int32_t* __restrict__ tokens = nullptr;  // i32 [T] (hash layers)
  int32_t* __restrict__ sel = nullptr;           // i32 [T, top_k]
  float* __restrict__ weight = nullptr;          // f32 [T, top_k]
  int32_t T = 0;
  int32_t E = 0;                         // at most kRouteMaxExperts
  int32_t top_k = 0;                     // at most kRouteMaxTopK
  int32_t tid2eid_i64 = 0;
  int32_t normalize = 1;
  float route_scale = 1.0f;
  int32_t rank = 1;  // launch_route: route_rank_kernel (one CTA per token) when T <= kRouteRankMaxT
};

// moe_align (vLLM moe_align_block_size, deterministic): the n_slots = T·top_k (token, k) slots grouped by
// expert. Count pass (one CTA): counts, exclusive offsets, and the tile list of a grouped GEMM with tiles of
// `bm` slots of one expert (ascending expert, then row). Place pass (one CTA per expert): perm[offsets[e] + r]
// = the r-th slot (ascending slot id) whose expert is e.
struct MoeAlignParams {
  const int32_t* __restrict__ sel = nullptr;   // i32 [n_slots], expert of each slot
  int32_t* __restrict__ counts = nullptr;      // i32 [E]
  int32_t* __restrict__ offsets = nullptr;     // i32 [E + 1]
  int32_t* __restrict__ perm = nullptr;        // i32 [n_slots], slot ids in expert order
  int32_t* __restrict__ tiles = nullptr;       // i32 [max_tiles, 3]: expert, first sorted row, rows
  int32_t* __restrict__ n_tiles = nullptr;     // i32 [1]
  int32_t n_slots = 0;
  int32_t E = 0;                       // at most kAlignMaxExperts
  int32_t bm = 0;                      // rows per tile
  int32_t max_tiles = 0;               // capacity of `tiles`: min(n_slots, E) + ceil(n_slots / bm)
};

// FP8 fake-quant of GEMM inputs (spec §2.3, core fp8_fake_quant): per 1x128 block, s = ue8m0_ceil(max(amax,
// 1e-4)·fl32(1/448)), x <- e4m3(clamp(x/s, ±448))·s (exact in bf16). One warp per block. out_bf16 or out_f32.
struct MoeFakeQuantParams {
  const float* __restrict__ x = nullptr;            // f32 [rows, K]
  __nv_bfloat16* __restrict__ out_bf16 = nullptr;   // bf16 [rows, K] (the mma path's A operand) or nullptr
  float* __restrict__ out_f32 = nullptr;            // f32 [rows, K] or nullptr
  int64_t rows = 0;
  int32_t K = 0;                          // multiple of 128
};

// route + moe_align fused (moe_route_align_kernel, one CTA of kAlignThreads): align.sel == route.sel,
// align.n_slots == route.T * route.top_k <= kAlignThreads, E <= kFusedRouteMaxExperts.
struct MoeRouteAlignParams {
  RouteParams route;
  MoeAlignParams align;
};

// Storage format of one set of expert weights [N, K] (all experts of a call share it).
enum class MoeWeightFormat : int32_t {
  F32,         // f32 [N, K]
  Bf16,        // bf16 [N, K]
  F16,         // f16 [N, K]
  Fp8,         // e4m3 [N, K], scale [ceil(N/128), ceil(K/128)]
  Mxfp4,       // e2m1 nibbles [N, K/2] (low nibble = even k), scale [N, K/32]
};
enum class MoeScaleDtype : int32_t { E8m0, F32, Bf16 };

struct MoeWeightPtr {
  const uint8_t* data = nullptr;
  const uint8_t* scale = nullptr;
};

// Grouped expert GEMM over the tile list of moe_align. Sorted row i (i in [0, n_rows)) belongs to the
// expert of its tile; its A row is a[gather ? perm[i] / top_k : i] (perm == nullptr: identity).
// gate_up: acc1 = A·w1ᵀ, acc3 = A·w3ᵀ (N = intermediate), then per element, with bf16 rounding (round_bf16)
//   of g, u and h: g = min(g, lim), u = clamp(u, ±lim) (lim > 0), h = silu(g)·u·weight[slot]; out f32
//   [n_rows, N] in sorted order.
// down: y = A·w2ᵀ (bf16-rounded when round_bf16) written to out row perm[i] (i when perm == nullptr).
// A is bf16 (mma path, values exactly bf16), f32 (generic path) or e4m3 codes with f32 act_quant scales (the FP8
// prefill kernel, moe_gemm_fp8.cuh: value = a_q · a_scale).
struct MoeGemmParams {
  const __nv_bfloat16* __restrict__ a_bf16 = nullptr;  // bf16 [a_rows, K] (mma path)
  const float* __restrict__ a_f32 = nullptr;           // f32 [a_rows, K] (generic path)
  const uint8_t* __restrict__ a_q = nullptr;           // e4m3 [a_rows, K] (FP8 path)
  const float* __restrict__ a_scale = nullptr;         // f32 [K/128, a_rows] (FP8 path)
  int32_t a_rows = 0;                                   // FP8 path
  const MoeWeightPtr* __restrict__ w1 = nullptr;        // [E] (w2 for the down GEMM)
  const MoeWeightPtr* __restrict__ w3 = nullptr;        // [E] (gate_up only)
  const int32_t* __restrict__ perm = nullptr;           // i32 [n_rows] slot ids, or nullptr (identity)
  const int32_t* __restrict__ tiles = nullptr;          // i32 [max_tiles, 3], or nullptr (gemv paths): one tile
  const int32_t* __restrict__ n_tiles = nullptr;        // i32 [1]                {expert 0, row 0, single_rows}
  const float* __restrict__ weight = nullptr;           // f32 [n_slots] routing weight per slot, or nullptr
  float* __restrict__ out = nullptr;                    // f32 [n_rows, N] (gate_up) / [n_slots, N] (down)
  __nv_bfloat16* __restrict__ out_bf16 = nullptr;       // FP8 path with round_bf16: bf16 instead of out (exact)
  int32_t N = 0;
  int32_t K = 0;
  int32_t top_k = 1;
  int32_t gather = 0;                   // A rows through perm[i] / top_k
  int32_t gate_up = 0;
  int32_t round_bf16 = 0;
  float limit = 0.0f;                   // swiglu limit, <= 0: none
  int32_t single_rows = 0;              // rows of the one tile when tiles == nullptr (gemv paths)
  MoeWeightFormat format = MoeWeightFormat::F32;
  MoeScaleDtype scale_dtype = MoeScaleDtype::E8m0;
  // FP8 path: per expert, the e8m0 reference byte of its whole weight (gate_up: w1's | w3's << 8; down: w2's),
  // every scale byte of that weight within 12 below it (moe_gemm_fp8.cuh "tensor references"); nullptr: a
  // reference per (row, 128-K block).
  const uint32_t* __restrict__ fp8_ref = nullptr;
  int32_t fp8_stage = 1;  // FP8 path: epilogue operands (routing weights / output rows, tensor references) from
                          // the producers' shared-memory copies (moe_f8_staged_rows), 0: global loads
  int32_t fp8_pair_stores = 1;  // FP8 path, bf16 outputs: two adjacent columns per 4-byte store
};

// Combine: out[t] = Σ over the k slots of token t in ascending (expert id, k) order of y[t·top_k + k], an f32
// sum from 0 in that fixed order (the CPU reference's accumulation), no atomics.
struct MoeCombineParams {
  const float* __restrict__ y = nullptr;        // f32 [T·top_k, D]
  const __nv_bfloat16* __restrict__ y_bf16 = nullptr;  // bf16 [T·top_k, D] instead of y (D % 4 == 0, aligned)
  const int32_t* __restrict__ sel = nullptr;    // i32 [T, top_k]
  float* __restrict__ out = nullptr;            // f32 [T, D]
  int32_t T = 0;
  int32_t D = 0;
  int32_t top_k = 0;                    // at most kRouteMaxTopK
};

}  // namespace dsv4::cuda
