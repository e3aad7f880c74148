// indexer_score_wgmma_kernel: the tensor-core indexer scores of indexer_mma.cuh on Hopper wgmma, for the engine's
// official layout (Mxfp4 key rows, head_dim 128, at most 64 heads, bf16 numerics). Why a third score kernel: ncu of
// the mma.sync kernel at 1M context (run 85: 262144 keys, one query) shows it issue-bound, 12.2 M warp
// instructions for 2048 key tiles (~6000 per tile, 43 us at ncu's clocks): per 128-key tile each warp runs 16
// n-tiles of 4 ldmatrix + 8 dependent mma.sync, each followed by its own epilogue. One warpgroup's eight
// m64n128k16 wgmmas do the whole tile's 64 heads x 128 keys x 128 products with both operands in shared memory,
// so the tile's instructions are the FP4 expansion, the epilogue and the head sums.
// Layout: one CTA (one warpgroup, 128 threads) per (row t, key slice blockIdx.x), looping over 128-key tiles tile =
// blockIdx.x, blockIdx.x + gridDim.x, ... as indexer_score_mma_kernel<128, true> does, with the same raw-word
// prefetch (IdxPackedRaw: the next tile's words in registers while this one is computed). q (A, 64 x 128, rows past
// n_heads zero) and the expanded key tile (B, 128 keys x 128) are K-major bf16 in the 128-byte swizzle of wgmma
// (two 64-wide K blocks each; 16-byte chunk c of row r at chunk c ^ (r & 7)); the f32 accumulators hold head
// 16w + l/4 + 8(v >> 1), key 8j + 2(l % 4) + (v & 1) in d[4j + v] (warp w, lane l), the m16n8 tile layout of the
// mma.sync kernel, so the epilogue and the ordered head sum are indexer_mma.cuh's (indexer_store_terms,
// indexer_head_sum; the term matrix reuses the key tile's space once the wgmmas are done). Products of bf16 values
// are exact and summed in f32 by the tensor core in its own order, as with mma.sync: the scores equal CpuOps' up to
// the rare last-bit flips that indexer_mma.cuh describes.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention/indexer_mma.cuh"
#include "backend/cuda/attention/params.h"
#include "backend/cuda/attention/plan.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe_gemm_wgmma.cuh"  // wgmma, descriptor and fence helpers (moe_wg_*)

namespace dsv4::cuda {
namespace indexer_wgmma_detail {
using indexer_mma_detail::IdxPackedRaw;

inline constexpr int kHd = 128;
inline constexpr int kKeys = kIdxMmaTileKeys;          // 128
inline constexpr int kQBytes = 2 * 64 * 128;           // 2 K blocks x 64 rows x 128 B
inline constexpr int kKBlockBytes = kKeys * 128;       // one K block of the key tile
inline constexpr int kKBytes = 2 * kKBlockBytes;       // the key tile (and, after the wgmmas, the term matrix)
inline constexpr int kRawBytes = kKeys * IdxPackedRaw<kHd>::kWords * 4;
inline constexpr int kOffK = kQBytes, kOffRaw = kOffK + kKBytes, kOffPtr = kOffRaw + kRawBytes;
inline constexpr int kSmemUsed = kOffPtr + kKeys * 8;
static_assert(kIdxMmaMaxHeads * kIdxMmaTermLd * 2 <= kKBytes, "the term matrix fits in the key tile's space");
static_assert(kOffRaw % 16 == 0 && kOffPtr % 16 == 0, "aligned regions");

// 16-byte chunk c (0..15, 8 values of 128) of row r of a swizzled operand with `rows` rows per K block.
__device__ __forceinline__ int swz_offset(int r, int c, int rows) {
  return (c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4);
}

// Key threadIdx.x of the staged raw words -> its 128 bf16 values in the swizzled key tile (bf16_expand.cuh).
__device__ __forceinline__ void expand_key(const uint32_t* raw, uint8_t* ktile) {
  constexpr int kWords = IdxPackedRaw<kHd>::kWords;
  const int r = threadIdx.x;
  const uint32_t* row = raw + r * kWords;
  const uint32_t scales = row[kHd / 8];
#pragma unroll
  for (int b = 0; b < kHd / 32; ++b) {
    uint32_t f1, f2;
    e8m0_factors((scales >> (8 * b)) & 0xFFu, 126, f1, f2);
    if (f2 == kBf16x2One) {
#pragma unroll
      for (int u = 0; u < 4; ++u)
        *reinterpret_cast<uint4*>(ktile + swz_offset(r, 4 * b + u, kKeys)) =
            fp4x8_to_bf16<false>(row[4 * b + u], f1, f2);
    } else {
#pragma unroll
      for (int u = 0; u < 4; ++u)
        *reinterpret_cast<uint4*>(ktile + swz_offset(r, 4 * b + u, kKeys)) =
            fp4x8_to_bf16<true>(row[4 * b + u], f1, f2);
    }
  }
}

}  // namespace indexer_wgmma_detail

// Dynamic shared memory of indexer_score_wgmma_kernel (1024-byte alignment slack included).
inline constexpr size_t kIdxWgmmaSmem = size_t(indexer_wgmma_detail::kSmemUsed) + 1024;

// Needs p.packed, p.head_dim == 128, p.n_heads <= 64, p.round_bf16 (launch_indexer_scores checks).
__global__ void __launch_bounds__(kIdxMmaThreads, 3)
    indexer_score_wgmma_kernel(const __grid_constant__ IndexerScoreParams p) {
  grid_dependency_sync();
  using namespace indexer_wgmma_detail;
  extern __shared__ __align__(16) unsigned char idx_wg_smem_raw[];
  uint8_t* smem = moe_wg_align1024(idx_wg_smem_raw);
  uint8_t* qs = smem;
  uint8_t* ks = smem + kOffK;
  __nv_bfloat16* terms = reinterpret_cast<__nv_bfloat16*>(ks);
  uint32_t* raw_s = reinterpret_cast<uint32_t*>(smem + kOffRaw);
  const float** kp = reinterpret_cast<const float**>(smem + kOffPtr);
  const int t = blockIdx.y;
  const int n = p.n_keys[t];
  if (blockIdx.x * kKeys >= n) return;
  const int nh = p.n_heads;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int h0 = warp * 16 + (lane >> 2), h1 = h0 + 8;

  // q -> bf16 A operand (rows past n_heads zero): 64 rows x 16 chunks of 8 values, 8 chunks per thread.
  {
    const float* __restrict__ qt = p.q + int64_t(t) * nh * kHd;
#pragma unroll 2
    for (int i = tid; i < 64 * 16; i += kIdxMmaThreads) {
      const int r = i >> 4, c = i & 15;
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (r < nh) {
        const float4 x0 = *reinterpret_cast<const float4*>(qt + r * kHd + 8 * c);
        const float4 x1 = *reinterpret_cast<const float4*>(qt + r * kHd + 8 * c + 4);
        v = make_uint4(indexer_mma_detail::pack_bf16x2(x0.x, x0.y), indexer_mma_detail::pack_bf16x2(x0.z, x0.w),
                       indexer_mma_detail::pack_bf16x2(x1.x, x1.y), indexer_mma_detail::pack_bf16x2(x1.z, x1.w));
      }
      *reinterpret_cast<uint4*>(qs + swz_offset(r, c, 64)) = v;
    }
  }
  const float* __restrict__ wrow = p.w + int64_t(t) * nh;
  const __nv_bfloat162 wv0 = __float2bfloat162_rn(h0 < nh ? wrow[h0] : 0.0f);
  const __nv_bfloat162 wv1 = __float2bfloat162_rn(h1 < nh ? wrow[h1] : 0.0f);
  const float* const* __restrict__ row_keys = p.keys + p.key_begin[t];
  const int tiles = (n + kKeys - 1) / kKeys;
  auto key_ptr = [&](int tile) -> const float* {
    const int s = tile * kKeys + tid;
    return tile < tiles && s < n ? row_keys[s] : nullptr;
  };
  const uint32_t q_addr = moe_wg_smem_u32(qs), k_addr = moe_wg_smem_u32(ks);

  indexer_mma_detail::IdxPackedRaw<kHd> raw;
  kp[tid] = key_ptr(blockIdx.x);
  const float* next_ptr = key_ptr(blockIdx.x + gridDim.x);
  __syncthreads();
  raw.load(kp, blockIdx.x * kKeys, n);
  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.0f;
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    __syncthreads();  // the previous tile's terms (the key tile's space) summed, its pointers and words consumed
    raw.stage(raw_s);
    kp[tid] = next_ptr;
    next_ptr = key_ptr(tile + 2 * gridDim.x);
    __syncthreads();
    expand_key(raw_s, ks);
    if (tile + gridDim.x < tiles) raw.load(kp, (tile + gridDim.x) * kKeys, n);
    moe_wg_fence_async_smem();  // the expanded keys (and q) visible to the wgmmas (async proxy)
    __syncthreads();
    moe_wg_fence();
    moe_wg_fence_acc(d);
#pragma unroll
    for (int s = 0; s < kHd / 16; ++s) {
      const uint32_t off = 32u * uint32_t(s & 3);  // the 16-wide K slice within its 64-wide block
      moe_wg_mma128(d, moe_wg_desc(q_addr + (s >> 2) * (kQBytes / 2) + off),
                    moe_wg_desc(k_addr + (s >> 2) * kKBlockBytes + off), s > 0);
    }
    moe_wg_commit();
    moe_wg_wait<0>();
    moe_wg_fence_acc(d);
    __syncthreads();  // every warp's wgmmas have read the key tile before the terms overwrite it
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j)
      indexer_mma_detail::indexer_store_terms(terms, d + 4 * j, wv0, wv1, h0, h1, nh, 8 * j + 2 * (lane & 3));
    __syncthreads();
    indexer_mma_detail::indexer_head_sum(p, terms, t, n, tile * kKeys);
  }
}

}  // namespace dsv4::cuda
