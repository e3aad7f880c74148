// indexer_score_mma_kernel: lightning-indexer scores on the tensor cores, for the bf16 numerics only (q and the
// indexer keys are bf16 values there: bf16-rounded, or Hadamard + FP4 fake-quantized, which bf16 holds
// exactly). Why a second score kernel: at long contexts the CUDA-core kernel (indexer.cuh) is compute-bound —
// 2·64·128 FLOP per (query, key), 4.3 GFLOP per query at 1M context, about 0.4 ms per CSA layer on the H200 —
// while mma.sync bf16 does the same dot products in a fraction of the key-read time.
//
// Key rows: f32 (bf16 values), or Mxfp4 rows of the official FP4 indexer (core/row_blocks.h; 68 instead of 512
// bytes per key at head_dim 128, expanded to the same bf16 values, so both give the same scores).
// Layout: one CTA (4 warps) per (row t, key slice blockIdx.x), looping over 128-key tiles tile = blockIdx.x,
// blockIdx.x + gridDim.x, ... of row t's key list. Warp w owns heads [16w, 16w + 16) as the mma's A operand
// (its q fragments stay in registers for the whole kernel); the key tile (bf16 in shared memory, row stride
// head_dim + 8 so the B-fragment loads are conflict-free) is the B operand, 16 n-tiles of 8 keys. The f32
// accumulators are the per-(head, key) dot products: products of bf16 values are exact and the tensor core
// sums them in f32 in its own order, so d differs from the reference's ordered sum only in the last f32 bits
// (and not at all when the sum is exact, as it is for FP4-simulated q and keys whose block scales are close),
// which survives the bf16 rounding of d except next to a rounding boundary. After that the reference's rounding
// points and order are kept: d rounded to bf16, relu, times w[t, h] rounded to bf16, and the per-key sum over
// heads in ascending head order with a bf16 rounding after every add (one thread per key, terms through shared
// memory). So the scores equal CpuOps' except for rare last-bit flips, which can only swap keys whose scores
// tie or nearly tie at the top-k boundary; the op test checks exactly that.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/bf16_expand.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/attention/params.h"
#include "backend/cuda/attention/plan.h"
#include "backend/cuda/attention/sparse_attention.cuh"  // attn_detail: mma_bf16, round_bf16, store_bf16x4

namespace dsv4::cuda {
namespace indexer_mma_detail {

inline constexpr int kKeys = kIdxMmaTileKeys;  // 128 keys per tile, one thread per key in the head sum
inline constexpr int kTermLd = kIdxMmaTermLd;  // bf16 row stride of the term matrix [heads][keys]

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// One accumulator tile's terms: c0/c1 = head h0, keys key, key + 1; c2/c3 = head h1, same keys. d rounded to bf16
// (cvt.rn.bf16x2), relu (x > 0 ? x : +0, also for NaN), times w rounded (mul.rn.bf16x2), into terms [head][key].
__device__ __forceinline__ void indexer_store_terms(__nv_bfloat16* terms, const float* c, __nv_bfloat162 wv0,
                                                    __nv_bfloat162 wv1, int h0, int h1, int nh, int key) {
  const __nv_bfloat162 zero = __float2bfloat162_rn(0.0f);
  __nv_bfloat162 x0 = __floats2bfloat162_rn(c[0], c[1]), x1 = __floats2bfloat162_rn(c[2], c[3]);
  uint32_t m0 = __hgt2_mask(x0, zero), m1 = __hgt2_mask(x1, zero);
  uint32_t r0 = *reinterpret_cast<uint32_t*>(&x0) & m0, r1 = *reinterpret_cast<uint32_t*>(&x1) & m1;
  const __nv_bfloat162 d0 = __hmul2_rn(*reinterpret_cast<__nv_bfloat162*>(&r0), wv0);
  const __nv_bfloat162 d1 = __hmul2_rn(*reinterpret_cast<__nv_bfloat162*>(&r1), wv1);
  if (h0 < nh) *reinterpret_cast<__nv_bfloat162*>(terms + h0 * kTermLd + key) = d0;
  if (h1 < nh) *reinterpret_cast<__nv_bfloat162*>(terms + h1 * kTermLd + key) = d1;
}

// The per-key sum over heads of a tile's terms [head][key] in ascending head order, a bf16 rounding after every add
// (add.rn.bf16x2 of two bf16 values), written as row t's scores of keys [s0, s0 + kKeys) below n: thread tid <
// kKeys / 2 sums keys 2 tid, 2 tid + 1.
__device__ __forceinline__ void indexer_head_sum(const IndexerScoreParams& p, const __nv_bfloat16* terms, int t,
                                                 int n, int s0) {
  const int tid = threadIdx.x, nh = p.n_heads;
  if (tid < kKeys / 2) {
    __nv_bfloat162 total = __float2bfloat162_rn(0.0f);
    const __nv_bfloat162* tc = reinterpret_cast<const __nv_bfloat162*>(terms) + tid;
#pragma unroll 8
    for (int h = 0; h < nh; ++h) total = __hadd2_rn(total, tc[h * (kTermLd / 2)]);
    const int k0 = s0 + 2 * tid;
    float* out = p.scores + int64_t(t) * p.ld + k0;
    if (k0 < n) out[0] = __low2float(total);
    if (k0 + 1 < n) out[1] = __high2float(total);
  }
}

// The mma, relu/weight rounding and the ordered head sum of one staged key tile (keys in ks); writes the tile's
// scores. Starts and ends with every thread's shared accesses of the tile complete (it syncs in between).
// The reference's bf16 steps run as bf16x2 instructions with the same results: d rounded to bf16 (cvt.rn.bf16x2),
// relu (x > 0 ? x : +0, also for NaN), w·x rounded (w is bf16-valued: the model's scale_round output; the f32
// product of two bf16 values is exact, so one bf16
// rounding of it is mul.rn.bf16x2), and total + term rounded (two bf16 values: the f32 sum rounded to bf16 equals
// the exactly rounded sum, add.rn.bf16x2). Thread tid < kKeys / 2 sums keys 2 tid, 2 tid + 1 over the heads in
// ascending order.
template <int kHd>
__device__ __forceinline__ void indexer_mma_tile(const IndexerScoreParams& p, const __nv_bfloat16* ks,
                                                 __nv_bfloat16* terms, const uint32_t (&a)[kHd / 16][4], float w0,
                                                 float w1, int t, int n, int s0) {
  constexpr int kLd = kHd + 8;
  const int nh = p.n_heads;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, q4 = lane & 3;
  const int h0 = warp * 16 + g, h1 = h0 + 8;
  if (warp * 16 < nh) {
    const __nv_bfloat162 wv0 = __float2bfloat162_rn(w0), wv1 = __float2bfloat162_rn(w1);
#pragma unroll 2
    for (int nt = 0; nt < kKeys / 8; ++nt) {
      float c[4] = {0.f, 0.f, 0.f, 0.f};
      // ldmatrix x4: rows = keys nt*8 + (lane & 7), k blocks 16 s + 8 (lane >> 3): b0 / b1 of steps s and s + 1.
      const __nv_bfloat16* kr = ks + (nt * 8 + (lane & 7)) * kLd + (lane >> 3) * 8;
#pragma unroll
      for (int s = 0; s < kHd / 16; s += 2) {
        uint32_t b[4];
        attn_detail::ldmatrix_x4(b, kr + 16 * s);
        attn_detail::mma_bf16(c, a[s], b[0], b[1]);
        attn_detail::mma_bf16(c, a[s + 1], b[2], b[3]);
      }
      // c0/c1: head h0, keys nt*8 + 2 q4 + {0, 1}; c2/c3: head h1, same keys.
      indexer_store_terms(terms, c, wv0, wv1, h0, h1, nh, nt * 8 + 2 * q4);
    }
  }
  __syncthreads();
  indexer_head_sum(p, terms, t, n, s0);
}

// Mxfp4 key rows (p.packed, core/row_blocks.h): kWords 4-byte words per row, words [0, kHd/8) the codes, word
// kHd/8 the kHd/32 e8m0 scale bytes. A tile's rows are loaded as words w = tid + 128 j of the tile (key w / kWords,
// word w % kWords: consecutive threads read consecutive words of a row and of neighbouring rows, which the stores
// keep contiguous), held in registers from one tile to the next, staged into shared memory (stage: conflict-free,
// consecutive words) and expanded by thread tid for key tid (expand: row reads kWords words apart, an odd stride,
// and 16-byte stores 272 bytes apart: both conflict-free).
template <int kHd>
struct IdxPackedRaw {
  static constexpr int kBlocks = kHd / 32;
  static constexpr int kWords = (kHd / 2 + kHd / 32 + 3) / 4;  // mxfp4_row_bytes(kHd) / 4
  uint32_t w[kWords];

  __device__ __forceinline__ void load(const float* const* kp, int s0, int n) {
#pragma unroll
    for (int j = 0; j < kWords; ++j) {
      const int i = j * kIdxMmaThreads + threadIdx.x, r = i / kWords;
      w[j] = s0 + r < n ? reinterpret_cast<const uint32_t*>(kp[r])[i - r * kWords] : 0u;
    }
  }
  __device__ __forceinline__ void stage(uint32_t* raw) const {
#pragma unroll
    for (int j = 0; j < kWords; ++j) raw[j * kIdxMmaThreads + threadIdx.x] = w[j];
  }
  // Exact bf16 values (bf16_expand.cuh) of key threadIdx.x into the key tile ks [kKeys][kHd + 8].
  __device__ __forceinline__ static void expand(const uint32_t* raw, __nv_bfloat16* ks) {
    const uint32_t* row = raw + threadIdx.x * kWords;
    const uint32_t scales = row[kHd / 8];
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      uint32_t f1, f2;
      e8m0_factors((scales >> (8 * b)) & 0xFFu, 126, f1, f2);
      uint4* dst = reinterpret_cast<uint4*>(ks + threadIdx.x * (kHd + 8) + 32 * b);
      if (f2 == kBf16x2One) {
#pragma unroll
        for (int u = 0; u < 4; ++u) dst[u] = fp4x8_to_bf16<false>(row[4 * b + u], f1, f2);
      } else {
#pragma unroll
        for (int u = 0; u < 4; ++u) dst[u] = fp4x8_to_bf16<true>(row[4 * b + u], f1, f2);
      }
    }
  }
};

}  // namespace indexer_mma_detail

// Shared memory (indexer_mma_smem): keys bf16 [kKeys][kHd + 8] (the pad makes the B-fragment loads
// conflict-free), terms bf16 [64][kTermLd], the tile's key pointers [kKeys] (53 KB: 4 CTAs per SM). kHd in {64, 128},
// n_heads <= 64; f32 key rows 16-byte aligned (p.vec4) or Mxfp4 rows (kPacked = p.packed); bf16 numerics only
// (p.round_bf16: every term is a bf16 value, which is what lets the term matrix be bf16).
// f32 rows: the tile's rows are loaded (16 float4 in flight per thread) and rounded into ks after the previous
// tile is consumed. Mxfp4 rows (8x fewer bytes): the next tile's raw words are loaded into registers (coalesced,
// IdxPackedRaw) while this tile is expanded, so they are in flight during its mma and head sums.
template <int kHd, bool kPacked>
__global__ void __launch_bounds__(kIdxMmaThreads, 4) indexer_score_mma_kernel(const __grid_constant__ IndexerScoreParams p) {
  grid_dependency_sync();
  using namespace indexer_mma_detail;
  constexpr int kSteps = kHd / 16;
  constexpr int kLd = kHd + 8;
  extern __shared__ __align__(16) unsigned char idx_mma_smem[];
  __nv_bfloat16* ks = reinterpret_cast<__nv_bfloat16*>(idx_mma_smem);
  __nv_bfloat16* terms = reinterpret_cast<__nv_bfloat16*>(idx_mma_smem + size_t(kKeys) * kLd * 2);
  const int t = blockIdx.y;
  const int n = p.n_keys[t];
  if (blockIdx.x * kKeys >= n) return;
  const int nh = p.n_heads;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, q4 = lane & 3;
  const int h0 = warp * 16 + g, h1 = h0 + 8;

  // A fragments (q, heads h0 / h1, k = 16 s + 2 q4 + {0, 1, 8, 9}) for the whole kernel.
  uint32_t a[kSteps][4];
  {
    const float* __restrict__ qt = p.q + int64_t(t) * nh * kHd;
    const float* q0 = qt + int64_t(h0) * kHd;
    const float* q1 = qt + int64_t(h1) * kHd;
    const bool l0 = h0 < nh, l1 = h1 < nh;
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      const int k = 16 * s + 2 * q4;
      const float2 x00 = l0 ? *reinterpret_cast<const float2*>(q0 + k) : make_float2(0.f, 0.f);
      const float2 x10 = l1 ? *reinterpret_cast<const float2*>(q1 + k) : make_float2(0.f, 0.f);
      const float2 x01 = l0 ? *reinterpret_cast<const float2*>(q0 + k + 8) : make_float2(0.f, 0.f);
      const float2 x11 = l1 ? *reinterpret_cast<const float2*>(q1 + k + 8) : make_float2(0.f, 0.f);
      a[s][0] = pack_bf16x2(x00.x, x00.y);
      a[s][1] = pack_bf16x2(x10.x, x10.y);
      a[s][2] = pack_bf16x2(x01.x, x01.y);
      a[s][3] = pack_bf16x2(x11.x, x11.y);
    }
  }
  const float* __restrict__ wrow = p.w + int64_t(t) * nh;
  const float w0 = h0 < nh ? wrow[h0] : 0.0f, w1 = h1 < nh ? wrow[h1] : 0.0f;
  const float* const* __restrict__ row_keys = p.keys + p.key_begin[t];
  const int tiles = (n + kKeys - 1) / kKeys;
  // Key row pointers of a tile go through shared memory (thread tid: key tid of the tile), each loaded one tile
  // ahead of its use, so the key loads do not wait on a pointer load first.
  const float** kp = reinterpret_cast<const float**>(terms + kIdxMmaMaxHeads * kTermLd);
  auto key_ptr = [&](int tile) -> const float* {
    const int s = tile * kKeys + tid;
    return tile < tiles && s < n ? row_keys[s] : nullptr;
  };

  if constexpr (kPacked) {
    // The pointers of tile + gridDim.x are stored after the loop's first barrier (every read of the previous
    // ones, by raw.load one iteration earlier, precedes it) and read after the second.
    // The raw words are staged in the term matrix's space (free until the tile's mma writes it).
    IdxPackedRaw<kHd> raw;
    uint32_t* raw_s = reinterpret_cast<uint32_t*>(terms);
    static_assert(kKeys * IdxPackedRaw<kHd>::kWords * 4 <= kIdxMmaMaxHeads * kTermLd * 2);
    kp[tid] = key_ptr(blockIdx.x);
    const float* next_ptr = key_ptr(blockIdx.x + gridDim.x);
    __syncthreads();
    raw.load(kp, blockIdx.x * kKeys, n);
    for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      __syncthreads();  // the previous tile's keys, terms and pointers are consumed
      raw.stage(raw_s);
      kp[tid] = next_ptr;
      next_ptr = key_ptr(tile + 2 * gridDim.x);
      __syncthreads();
      IdxPackedRaw<kHd>::expand(raw_s, ks);
      if (tile + gridDim.x < tiles) raw.load(kp, (tile + gridDim.x) * kKeys, n);
      __syncthreads();  // keys expanded (and the staged words read) before the mma writes the terms
      indexer_mma_tile<kHd>(p, ks, terms, a, w0, w1, t, n, tile * kKeys);
    }
  } else {
    const float* next_ptr = key_ptr(blockIdx.x);
    for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int s0 = tile * kKeys;
      __syncthreads();  // the previous tile's keys, terms and pointers are consumed
      kp[tid] = next_ptr;
      __syncthreads();
      next_ptr = key_ptr(tile + gridDim.x);
      // Key tile: f32 rows -> bf16 (exact for bf16 values), kLoads float4 loads in flight per thread.
      constexpr int kVec = kHd / 4;  // float4 per key row
      constexpr int kLoads = 16;
#pragma unroll 1
      for (int i0 = tid; i0 < kKeys * kVec; i0 += kIdxMmaThreads * kLoads) {
        float4 v[kLoads];
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
          const int i = i0 + u * kIdxMmaThreads;
          const int r = i / kVec, c = i - r * kVec;
          v[u] = (i < kKeys * kVec && s0 + r < n) ? *reinterpret_cast<const float4*>(kp[r] + 4 * c)
                                                   : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
          const int i = i0 + u * kIdxMmaThreads;
          if (i >= kKeys * kVec) break;
          const int r = i / kVec, c = i - r * kVec;
          attn_detail::store_bf16x4(ks + r * kLd + 4 * c, v[u]);
        }
      }
      __syncthreads();
      indexer_mma_tile<kHd>(p, ks, terms, a, w0, w1, t, n, s0);
    }
  }
}

}  // namespace dsv4::cuda
