// Lightning-indexer selection (spec §5.8 steps 6-7) in two kernels.
// indexer_score_kernel: one CTA per (query row, tile of 128 keys), one thread per key; the query's heads sit in
// shared memory, the key tile transposed (stride 129, conflict-free). Each dot product uses the CPU reference's
// summation order (8 interleaved partial sums combined pairwise, separate multiply and add: the reference is
// built without FMA contraction) and the same bf16 rounding points, so the scores are bit-identical to CpuOps
// and the selection matches exactly, ties included. Any head_dim / n_heads whose q and key tile fit in shared
// memory. CUDA-core f32: about 2·n_heads·head_dim FLOP per (query, key).
// topk_kernel: one CTA per row; a 4-pass 8-bit radix select finds the k-th largest score (order-preserving
// uint32 keys), entries above it are collected, entries equal to it are taken lowest index first (ordered
// compaction), and a bitonic sort of (score desc, index asc) over at most kTopkMaxK entries orders the result.
#pragma once
#include <cuda_bf16.h>

#include <climits>
#include <cstdint>

#include <cub/block/block_radix_sort.cuh>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/warp.cuh"
#include "backend/cuda/attention/params.h"
#include "backend/cuda/attention/plan.h"

namespace dsv4::cuda {
namespace indexer_detail {

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// Order-preserving map of f32 scores to uint32 (larger score -> larger key; -0 counts as +0).
__device__ __forceinline__ uint32_t order_key(float f) {
  uint32_t b = __float_as_uint(f);
  if (b == 0x80000000u) b = 0;
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

}  // namespace indexer_detail

namespace topk_detail {

// Bitonic sort of cand[0, k) ascending, padded to a power of two with ~0 (every thread of the CTA calls it;
// cand in shared memory). The strides >= 64 of a merge stage sweep the block with a barrier each; the strides
// below stay inside 64-element chunks, so one warp finishes a chunk with warp barriers only (6 block barriers
// for 512 candidates instead of 45; the same compare-exchanges in the same order per element, so the same result).
template <int kThreads>
__device__ __forceinline__ void sort_candidates(unsigned long long* cand, int k) {
  constexpr int kWarps = kThreads / 32;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int size = 1;
  while (size < k) size <<= 1;
  for (int i = k + tid; i < size; i += kThreads) cand[i] = ~0ull;
  __syncthreads();
  auto exchange = [&](int i, int j, int len) {  // i < j
    const bool up = (i & len) == 0;
    const unsigned long long a = cand[i], b = cand[j];
    if ((a > b) == up) {
      cand[i] = b;
      cand[j] = a;
    }
  };
  const int chunk = min(size, 64);
  for (int len = 2; len <= size; len <<= 1) {
    int stride = len >> 1;
    for (; stride >= 64; stride >>= 1) {
      for (int i = tid; i < size; i += kThreads)
        if ((i ^ stride) > i) exchange(i, i ^ stride, len);
      __syncthreads();
    }
    for (int c0 = warp * chunk; c0 < size; c0 += kWarps * chunk) {
      for (int st = stride; st > 0; st >>= 1) {
        if (lane < chunk / 2) {  // pair `lane` of the chunk: i has bit log2(st) clear, j = i + st
          const int lg = __ffs(st) - 1;
          const int i = c0 + (((lane >> lg) << (lg + 1)) | (lane & (st - 1)));
          exchange(i, i + st, len);
        }
        __syncwarp();
      }
    }
    __syncthreads();
  }
}

}  // namespace topk_detail

__global__ void __launch_bounds__(kIndexerKeyTile) indexer_score_kernel(const __grid_constant__ IndexerScoreParams p) {
  grid_dependency_sync();
  using namespace indexer_detail;
  constexpr int kLd = kIndexerKeyTile + 1;
  extern __shared__ float score_smem[];
  const int t = blockIdx.y;
  const int n = p.n_keys[t];
  const int s0 = blockIdx.x * kIndexerKeyTile;
  if (s0 >= n) return;
  const int nh = p.n_heads, hd = p.head_dim;
  float* qs = score_smem;            // [nh * hd]
  float* ks = score_smem + nh * hd;  // [hd][kLd]: ks[c * kLd + key]
  const float* __restrict__ q = p.q + int64_t(t) * nh * hd;
  const float* const* __restrict__ row_keys = p.keys + p.key_begin[t];
  for (int i = threadIdx.x; i < nh * hd; i += kIndexerKeyTile) qs[i] = q[i];
  for (int i = threadIdx.x; i < kIndexerKeyTile * hd; i += kIndexerKeyTile) {
    const int r = i / hd, c = i % hd;
    ks[c * kLd + r] = s0 + r < n ? row_keys[s0 + r][c] : 0.0f;
  }
  __syncthreads();
  const float* __restrict__ w = p.w + int64_t(t) * nh;
  const float* kc = ks + threadIdx.x;
  float total = 0.0f;
  for (int h = 0; h < nh; ++h) {
    const float* qh = qs + h * hd;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    int i = 0;
    for (; i + 8 <= hd; i += 8) {
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[j] = __fadd_rn(acc[j], __fmul_rn(qh[i + j], kc[(i + j) * kLd]));
    }
#pragma unroll
    for (int j = 0; j < 8; ++j)  // the reference's tail: element i + j into partial sum j
      if (i + j < hd) acc[j] = __fadd_rn(acc[j], __fmul_rn(qh[i + j], kc[(i + j) * kLd]));
    float d = __fadd_rn(__fadd_rn(__fadd_rn(acc[0], acc[4]), __fadd_rn(acc[1], acc[5])),
                        __fadd_rn(__fadd_rn(acc[2], acc[6]), __fadd_rn(acc[3], acc[7])));
    if (p.round_bf16) d = round_bf16(d);
    const float r = d > 0.0f ? d : 0.0f;
    float term = __fmul_rn(w[h], r);
    if (p.round_bf16) term = round_bf16(term);
    total = __fadd_rn(total, term);
    if (p.round_bf16) total = round_bf16(total);
  }
  const int s = s0 + threadIdx.x;
  if (s < n) p.scores[int64_t(t) * p.ld + s] = total;
}

__global__ void __launch_bounds__(kTopkThreads) topk_kernel(const __grid_constant__ TopkParams p) {
  grid_dependency_sync();
  using namespace indexer_detail;
  constexpr int kWarps = kTopkThreads / 32;
  __shared__ uint32_t hist[256];
  __shared__ unsigned long long cand[kTopkMaxK];
  __shared__ uint32_t sh_prefix, sh_need, sh_count;
  __shared__ int warp_cnt[kWarps];
  const int t = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const float* __restrict__ row = p.scores + int64_t(t) * p.ld;
  const int n = p.n_keys[t];
  const int k = min(p.top_k, n);
  int32_t* __restrict__ out = p.out + int64_t(t) * p.top_k;
  for (int j = k + tid; j < p.top_k; j += kTopkThreads) out[j] = -1;
  if (k <= 0) return;

  if (n <= k) {
    for (int i = tid; i < n; i += kTopkThreads)
      cand[i] = (static_cast<unsigned long long>(~order_key(row[i])) << 32) | static_cast<uint32_t>(i);
  } else {
    uint32_t prefix = 0, mask = 0;
    uint32_t need = static_cast<uint32_t>(k);  // entries still to take at or below the current prefix
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = tid; i < 256; i += kTopkThreads) hist[i] = 0;
      __syncthreads();
      for (int i = tid; i < n; i += kTopkThreads) {
        const uint32_t u = order_key(row[i]);
        if ((u & mask) == prefix) atomicAdd(&hist[(u >> shift) & 255u], 1u);
      }
      __syncthreads();
      if (tid == 0) {
        uint32_t cum = 0;
        int d = 255;
        for (; d > 0; --d) {
          if (cum + hist[d] >= need) break;
          cum += hist[d];
        }
        sh_prefix = prefix | (static_cast<uint32_t>(d) << shift);
        sh_need = need - cum;
      }
      __syncthreads();
      prefix = sh_prefix;
      need = sh_need;
      mask |= 255u << shift;
      __syncthreads();
    }
    // prefix = key of the k-th largest score; `need` entries equal to it are taken (lowest indices first).
    const uint32_t thr = prefix;
    const uint32_t n_gt = static_cast<uint32_t>(k) - need;
    if (tid == 0) sh_count = 0;
    __syncthreads();
    for (int i = tid; i < n; i += kTopkThreads) {
      const uint32_t u = order_key(row[i]);
      if (u > thr) cand[atomicAdd(&sh_count, 1u)] = (static_cast<unsigned long long>(~u) << 32) | uint32_t(i);
    }
    uint32_t taken = 0;
    for (int base = 0; base < n && taken < need; base += kTopkThreads) {
      const int i = base + tid;
      const bool eq = i < n && order_key(row[i]) == thr;
      const uint32_t bal = __ballot_sync(0xffffffffu, eq);
      if (lane == 0) warp_cnt[warp] = __popc(bal);
      __syncthreads();
      uint32_t before = 0, total = 0;
      for (int w = 0; w < kWarps; ++w) {
        if (w < warp) before += warp_cnt[w];
        total += warp_cnt[w];
      }
      const uint32_t rank = taken + before + __popc(bal & ((1u << lane) - 1u));
      if (eq && rank < need) cand[n_gt + rank] = (static_cast<unsigned long long>(~thr) << 32) | uint32_t(i);
      taken += total;
      __syncthreads();
    }
  }
  // Bitonic sort of cand[0, k) ascending (score desc, index asc), padded to a power of two.
  topk_detail::sort_candidates<kTopkThreads>(cand, k);
  for (int j = tid; j < k; j += kTopkThreads) out[j] = static_cast<int32_t>(cand[j] & 0xffffffffu);
}

// Tiled score kernel: one CTA per (row t, key slice blockIdx.x), looping over 32-key tiles tile = blockIdx.x,
// blockIdx.x + gridDim.x, ... of row t's list. Warp g owns heads [8g, 8g + 8), lane l key l of the tile: the
// key tile sits transposed in shared memory (stride 33, conflict-free), the query's heads row-major (float4
// broadcast reads), so each key value loaded feeds 8 heads. Every (head, key) dot product keeps the reference
// order (8 interleaved partial sums in ascending element order, combined pairwise; separate multiply and add)
// and rounding points; the per-head terms go through shared memory and warp 0 sums them over heads in
// ascending order as the reference does, so the scores are bit-identical to CpuOps. head_dim % 8 == 0,
// n_heads <= 8 x kIdxMaxHeadGroups.
__global__ void __launch_bounds__(kIdxMaxHeadGroups * 32, 2)
    indexer_score_tiled_kernel(const __grid_constant__ IndexerScoreParams p) {
  grid_dependency_sync();
  using namespace indexer_detail;
  constexpr int kH = kIdxHeadsPerThread;
  constexpr int kLd = kIdxTileKeys + 1;
  extern __shared__ __align__(16) float tiled_smem[];
  const int t = blockIdx.y;
  const int n = p.n_keys[t];
  if (blockIdx.x * kIdxTileKeys >= n) return;
  const int nh = p.n_heads, hd = p.head_dim;
  const int groups = blockDim.x >> 5;
  const int heads = groups * kH;
  const int tid = threadIdx.x, lane = tid & 31, g = tid >> 5;
  float* qs = tiled_smem;              // [heads][hd]
  float* ks = qs + heads * hd;         // [hd][kLd]
  float* terms = ks + hd * kLd;        // [heads][kLd]
  const float* __restrict__ q = p.q + int64_t(t) * nh * hd;
  for (int i = tid; i < heads * hd; i += blockDim.x) qs[i] = i < nh * hd ? q[i] : 0.0f;
  const float* __restrict__ wrow = p.w + int64_t(t) * nh;
  float wv[kH];
#pragma unroll
  for (int j = 0; j < kH; ++j) wv[j] = g * kH + j < nh ? wrow[g * kH + j] : 0.0f;
  const float* const* __restrict__ row_keys = p.keys + p.key_begin[t];
  const int tiles = (n + kIdxTileKeys - 1) / kIdxTileKeys;
  const int hd4 = hd >> 2;
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int s0 = tile * kIdxTileKeys;
    __syncthreads();  // the previous tile's ks / terms are consumed (and qs written, first time)
    if (p.vec4) {
      for (int i = tid; i < kIdxTileKeys * hd4; i += blockDim.x) {
        const int r = i / hd4, c = (i - r * hd4) * 4;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (s0 + r < n) v = *reinterpret_cast<const float4*>(row_keys[s0 + r] + c);
        ks[(c + 0) * kLd + r] = v.x;
        ks[(c + 1) * kLd + r] = v.y;
        ks[(c + 2) * kLd + r] = v.z;
        ks[(c + 3) * kLd + r] = v.w;
      }
    } else {
      for (int i = tid; i < kIdxTileKeys * hd; i += blockDim.x) {
        const int r = i / hd, c = i - r * hd;
        ks[c * kLd + r] = s0 + r < n ? row_keys[s0 + r][c] : 0.0f;
      }
    }
    __syncthreads();
    float acc[kH][8];
#pragma unroll
    for (int h = 0; h < kH; ++h)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[h][j] = 0.0f;
    const float* kc = ks + lane;
    const float* qg = qs + g * kH * hd;
#pragma unroll 1
    for (int i = 0; i < hd; i += 8) {
      float kv[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) kv[j] = kc[(i + j) * kLd];
#pragma unroll
      for (int h = 0; h < kH; ++h) {
        const float4 qa = *reinterpret_cast<const float4*>(qg + h * hd + i);
        const float4 qb = *reinterpret_cast<const float4*>(qg + h * hd + i + 4);
        acc[h][0] = __fadd_rn(acc[h][0], __fmul_rn(qa.x, kv[0]));
        acc[h][1] = __fadd_rn(acc[h][1], __fmul_rn(qa.y, kv[1]));
        acc[h][2] = __fadd_rn(acc[h][2], __fmul_rn(qa.z, kv[2]));
        acc[h][3] = __fadd_rn(acc[h][3], __fmul_rn(qa.w, kv[3]));
        acc[h][4] = __fadd_rn(acc[h][4], __fmul_rn(qb.x, kv[4]));
        acc[h][5] = __fadd_rn(acc[h][5], __fmul_rn(qb.y, kv[5]));
        acc[h][6] = __fadd_rn(acc[h][6], __fmul_rn(qb.z, kv[6]));
        acc[h][7] = __fadd_rn(acc[h][7], __fmul_rn(qb.w, kv[7]));
      }
    }
#pragma unroll
    for (int h = 0; h < kH; ++h) {
      float d = __fadd_rn(__fadd_rn(__fadd_rn(acc[h][0], acc[h][4]), __fadd_rn(acc[h][1], acc[h][5])),
                          __fadd_rn(__fadd_rn(acc[h][2], acc[h][6]), __fadd_rn(acc[h][3], acc[h][7])));
      if (p.round_bf16) d = round_bf16(d);
      const float r = d > 0.0f ? d : 0.0f;
      float term = __fmul_rn(wv[h], r);
      if (p.round_bf16) term = round_bf16(term);
      terms[(g * kH + h) * kLd + lane] = term;
    }
    __syncthreads();
    if (g == 0) {
      float total = 0.0f;
      const float* tc = terms + lane;
      for (int h = 0; h < nh; ++h) {
        total = __fadd_rn(total, tc[h * kLd]);
        if (p.round_bf16) total = round_bf16(total);
      }
      if (s0 + lane < n) p.scores[int64_t(t) * p.ld + s0 + lane] = total;
    }
  }
}

namespace indexer_detail {

// One step of a block-wide ordered compaction (every thread calls it; warp_cnt: kThreads / 32 ints): the rank of
// this thread's entry among the flagged entries so far in (warp, lane) order, `taken` plus the flagged entries
// before it (meaningful when flag); adds the step's flagged count to `taken` (the same in every thread).
template <int kThreads>
__device__ __forceinline__ uint32_t ordered_rank(bool flag, uint32_t& taken, int* warp_cnt) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const uint32_t bal = __ballot_sync(0xffffffffu, flag);
  if (lane == 0) warp_cnt[warp] = __popc(bal);
  __syncthreads();
  uint32_t before = 0, total = 0;
  for (int w = 0; w < kThreads / 32; ++w) {
    if (w < warp) before += warp_cnt[w];
    total += warp_cnt[w];
  }
  const uint32_t rank = taken + before + __popc(bal & ((1u << lane) - 1u));
  taken += total;
  __syncthreads();
  return rank;
}

// The top k of a row of n <= kTopkMaxK order keys in shared memory, in row order (index idx_base + i), into
// cand[0, k) as block_topk leaves them: ascending (~key << 32 | index). A stable radix sort of the keys, descending,
// with the index as the value (cub::BlockRadixSort: equal keys keep their row order, i.e. ascending index, so the
// order is the same as sorting the composite keys). bf16_scores: every key's bits 15..0 follow from its sign bit
// (TopkSegParams::bf16_scores), so bits 31..16 order them: four 4-bit passes instead of eight. The keys are read
// into registers first; their shared memory then holds the sort's storage. Why: the bitonic sort of the 64-bit
// composites (sort_candidates) takes ~20 K cycles for a 4K-context row of 1024 keys in its one CTA (H200 run 234,
// ncu: 16 warps, 1.48 instructions per cycle, ~31 K warp instructions), on the CSA layer's indexer chain. Run 235
// (kernel-only): Flash B=1 4K 11.2 -> 7.2 us; the op test's indexer_topk at 64 rows of 1024 keys 41.0 -> 34.7 us.
template <int kThreads>
__device__ __forceinline__ void sort_row_topk(uint32_t* keys, int idx_base, int n, int k, bool bf16_scores,
                                              unsigned long long* cand) {
  constexpr int kItems = kTopkMaxK / kThreads;
  static_assert(kItems == 4, "one 16-byte shared-memory read of keys per thread");
  using Sort = cub::BlockRadixSort<uint32_t, kThreads, kItems, int32_t>;
  static_assert(sizeof(typename Sort::TempStorage) <= kTopkSegment * 4, "the sort's storage fits the key array");
  const int i0 = static_cast<int>(threadIdx.x) * kItems;
  const uint4 v = *reinterpret_cast<const uint4*>(keys + i0);
  uint32_t key[kItems] = {v.x, v.y, v.z, v.w};
  int32_t val[kItems];
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const bool in = i0 + j < n;
    key[j] = in ? key[j] : 0u;  // after every real key: last in row order, and a stable sort keeps it there
    val[j] = in ? idx_base + i0 + j : INT_MAX;
  }
  __syncthreads();  // every key read before the array becomes the sort's storage
  Sort(*reinterpret_cast<typename Sort::TempStorage*>(keys)).SortDescending(key, val, bf16_scores ? 16 : 0, 32);
#pragma unroll
  for (int j = 0; j < kItems; ++j)
    if (i0 + j < k) cand[i0 + j] = (static_cast<unsigned long long>(~key[j]) << 32) | static_cast<uint32_t>(val[j]);
  __syncthreads();
}

// Block-wide exact top-k: the k largest of keys[0, n) (order keys: larger first, ties to the lower position),
// k <= min(n, kTopkMaxK) unless n <= k (then all n), sorted into cand[0, k) ascending by (~key << 32 | index),
// index = idx ? idx[i] : idx_base + i. For equal keys the indices must ascend with the position (true for a
// row and for concatenated sorted segment candidates). keys / idx: shared or global memory. Returns the count.
// Rows of at most kTopkMaxK keys are sorted whole (run 81: 11.4 vs 11.9 µs under ncu for 1024 keys; a row of one
// segment takes sort_row_topk instead, TopkSegParams::sort_rows); longer
// ones take a radix select: 4 passes of 8 bits; the histogram is warp-aggregated (__match_any_sync), so a pass
// costs one shared atomic per distinct digit per warp, not per key (scores share their top bits).
template <int kThreads>
__device__ int block_topk(const uint32_t* keys, const int32_t* idx, int idx_base, int n, int k,
                          unsigned long long* cand, uint32_t* hist, uint32_t* sh, int* warp_cnt) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  k = min(k, n);
  if (k <= 0) return 0;
  auto index_of = [&](int i) -> uint32_t { return idx ? static_cast<uint32_t>(idx[i]) : uint32_t(idx_base + i); };
  if (n <= k) {
    for (int i = tid; i < n; i += kThreads)
      cand[i] = (static_cast<unsigned long long>(~keys[i]) << 32) | index_of(i);
  } else if (n <= kTopkMaxK) {
    // Short rows (e.g. the 1024 compressed keys of a 4K context): every key sorted, the first k kept. The same
    // selection and order as the radix select below (ascending (~key, index), equal keys' indices ascending with
    // their positions), without its four histogram passes and their barriers.
    for (int i = tid; i < n; i += kThreads)
      cand[i] = (static_cast<unsigned long long>(~keys[i]) << 32) | index_of(i);
    topk_detail::sort_candidates<kThreads>(cand, n);
    return k;
  } else {
    uint32_t prefix = 0, mask = 0, need = static_cast<uint32_t>(k);
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = tid; i < 256; i += kThreads) hist[i] = 0;
      __syncthreads();
      for (int i0 = 0; i0 < n; i0 += kThreads) {
        const int i = i0 + tid;
        const uint32_t u = i < n ? keys[i] : 0u;
        const bool in = i < n && (u & mask) == prefix;
        const uint32_t active = __ballot_sync(0xffffffffu, in);
        if (in) {
          const uint32_t digit = (u >> shift) & 255u;
          const uint32_t peers = __match_any_sync(active, digit);
          if (lane == __ffs(peers) - 1) atomicAdd(&hist[digit], static_cast<uint32_t>(__popc(peers)));
        }
      }
      __syncthreads();
      if (warp == 0) {  // digits descending: lane l holds 255 - 8l - j, j < 8
        uint32_t c[8], sum = 0;
#pragma unroll
        for (int j = 0; j < 8; ++j) sum += (c[j] = hist[255 - (lane * 8 + j)]);
        const uint32_t incl = warp_inclusive_sum(sum);
        const uint32_t excl = incl - sum;
        if (excl < need && incl >= need) {
          uint32_t cum = excl;
          int d = 255 - lane * 8 - 7;
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            if (cum + c[j] >= need) {
              d = 255 - (lane * 8 + j);
              break;
            }
            cum += c[j];
          }
          sh[0] = prefix | (static_cast<uint32_t>(d) << shift);
          sh[1] = need - cum;
        }
      }
      __syncthreads();
      prefix = sh[0];
      need = sh[1];
      mask |= 255u << shift;
      __syncthreads();
    }
    const uint32_t thr = prefix;
    const uint32_t n_gt = static_cast<uint32_t>(k) - need;
    if (tid == 0) sh[2] = 0;
    __syncthreads();
    for (int i = tid; i < n; i += kThreads) {
      const uint32_t u = keys[i];
      if (u > thr) cand[atomicAdd(&sh[2], 1u)] = (static_cast<unsigned long long>(~u) << 32) | index_of(i);
    }
    uint32_t taken = 0;
    for (int base = 0; base < n && taken < need; base += kThreads) {
      const int i = base + tid;
      const bool eq = i < n && keys[i] == thr;
      const uint32_t rank = ordered_rank<kThreads>(eq, taken, warp_cnt);
      if (eq && rank < need) cand[n_gt + rank] = (static_cast<unsigned long long>(~thr) << 32) | index_of(i);
    }
  }
  topk_detail::sort_candidates<kThreads>(cand, k);
  return k;
}

// Shared memory of the segmented top-k kernels: [keys kTopkSegment u32][cand kTopkMaxK u64][hist 256][sh 4]
// [warp_cnt kTopkThreads / 32].
inline constexpr size_t kTopkSegSmem = size_t(kTopkSegment) * 4 + size_t(kTopkMaxK) * 8 + 256 * 4 + 4 * 4 +
                                       (kTopkThreads / 32) * 4;

// block_topk's scratch in that layout (the merge kernels leave the key array unused).
struct TopkScratch {
  unsigned long long* cand;
  uint32_t* keys;
  uint32_t* hist;
  uint32_t* sh;
  int* warp_cnt;
};
__device__ __forceinline__ TopkScratch topk_scratch(unsigned char* smem) {
  TopkScratch s;
  s.cand = reinterpret_cast<unsigned long long*>(smem);
  s.keys = reinterpret_cast<uint32_t*>(s.cand + kTopkMaxK);
  s.hist = s.keys + kTopkSegment;
  s.sh = s.hist + 256;
  s.warp_cnt = reinterpret_cast<int*>(s.sh + 4);
  return s;
}

// The top-k of m candidates (order keys + row indices, equal keys in ascending index order) into s.cand.
__device__ __forceinline__ int merge_topk(const TopkScratch& s, const uint32_t* keys, const int32_t* idx, int m,
                                          int top_k) {
  return block_topk<kTopkThreads>(keys, idx, 0, m, top_k, s.cand, s.hist, s.sh, s.warp_cnt);
}

// The first k of cand as a row's selections (-1 after, up to top_k) / as candidates (order key, row index).
__device__ __forceinline__ void write_selection(const unsigned long long* cand, int k, int top_k, int32_t* out) {
  for (int j = threadIdx.x; j < top_k; j += kTopkThreads)
    out[j] = j < k ? static_cast<int32_t>(cand[j] & 0xffffffffu) : -1;
}
__device__ __forceinline__ void write_candidates(const unsigned long long* cand, int k, uint32_t* key,
                                                 int32_t* idx) {
  for (int j = threadIdx.x; j < k; j += kTopkThreads) {
    key[j] = ~static_cast<uint32_t>(cand[j] >> 32);
    idx[j] = static_cast<int32_t>(cand[j] & 0xffffffffu);
  }
}

// Candidates segment s of a row with nseg segments and `last` keys in its last segment contributes.
__device__ __forceinline__ int topk_seg_count(int s, int nseg, int last, int top_k) {
  return s == nseg - 1 ? min(top_k, last) : top_k;
}

}  // namespace indexer_detail

// Segmented top-k, stage 1: CTA (segment j, row t) selects the top-k of keys [j·S, min(n, (j+1)·S)) of row t
// (S = kTopkSegment), held in shared memory as order keys. A row of one segment writes its final result;
// otherwise the segment's sorted candidates go to cand_*[t][j·top_k, ...).
// The body of that CTA (topk_radix_pass_kernel<1> runs it for the rows of one segment); topk_smem: kTopkSegSmem.
__device__ __forceinline__ void topk_segment_cta(const TopkSegParams& p, unsigned char* topk_smem) {
  using namespace indexer_detail;
  const TopkScratch sc = topk_scratch(topk_smem);
  uint32_t* keys = sc.keys;
  const int t = blockIdx.y, seg = blockIdx.x, tid = threadIdx.x;
  const int n = p.n_keys[t];
  const int nseg = max(1, (n + kTopkSegment - 1) / kTopkSegment);
  if (seg >= nseg) return;
  const int s0 = seg * kTopkSegment;
  const int len = max(0, min(kTopkSegment, n - s0));
  const float* __restrict__ row = p.scores + int64_t(t) * p.ld + s0;
  for (int i = tid; i < len; i += kTopkThreads) keys[i] = order_key(row[i]);
  __syncthreads();
  int k = 0;
  if (p.sort_rows && len > p.top_k && len <= kTopkMaxK) {  // block_topk's short-row case, as one radix sort
    k = p.top_k;
    sort_row_topk<kTopkThreads>(keys, s0, len, k, p.bf16_scores, sc.cand);
  } else {
    k = block_topk<kTopkThreads>(keys, nullptr, s0, len, p.top_k, sc.cand, sc.hist, sc.sh, sc.warp_cnt);
  }
  if (nseg == 1) {
    write_selection(sc.cand, k, p.top_k, p.out + int64_t(t) * p.top_k);
  } else {
    const int64_t base = int64_t(t) * p.cand_ld + int64_t(seg) * p.top_k;
    write_candidates(sc.cand, k, p.cand_key + base, p.cand_idx + base);
  }
}

__global__ void __launch_bounds__(kTopkThreads) topk_segment_kernel(const __grid_constant__ TopkSegParams p) {
  grid_dependency_sync();
  extern __shared__ __align__(16) unsigned char topk_smem[];
  topk_segment_cta(p, topk_smem);
}

// Segmented top-k, stage 2: one CTA per row of more than one segment merges its segment candidates (segments
// 0..nseg-2 give top_k each, the last min(top_k, its length)); equal scores keep ascending row indices in
// candidate order, so the tie rule carries over.
__global__ void __launch_bounds__(kTopkThreads) topk_merge_kernel(const __grid_constant__ TopkSegParams p) {
  grid_dependency_sync();
  using namespace indexer_detail;
  extern __shared__ __align__(16) unsigned char topk_smem[];
  const TopkScratch sc = topk_scratch(topk_smem);
  const int t = blockIdx.x;
  const int n = p.n_keys[t];
  const int nseg = max(1, (n + kTopkSegment - 1) / kTopkSegment);
  if (nseg == 1 || (p.cand2_ld > 0 && nseg > kTopkMergeGroup)) return;  // the two-level kernels take those rows
  const int last = n - (nseg - 1) * kTopkSegment;
  const int m = (nseg - 1) * p.top_k + min(p.top_k, last);
  const int64_t base = int64_t(t) * p.cand_ld;
  const int k = merge_topk(sc, p.cand_key + base, p.cand_idx + base, m, p.top_k);
  write_selection(sc.cand, k, p.top_k, p.out + int64_t(t) * p.top_k);
}

// Two-level merge, stage 2a (rows of more than kTopkMergeGroup segments): CTA (group g, row t) merges the
// candidates of segments [g·G, min(nseg, (g+1)·G)) (G = kTopkMergeGroup) into cand2[t][g·top_k, ...), sorted
// like a segment's candidates (descending score, ties to the lower index). One merge CTA over all 32 segments of a
// 1M-context row took 60 us (H200, ncu); groups of 8 run side by side and leave 4 x top_k for stage 2b.
__global__ void __launch_bounds__(kTopkThreads) topk_group_merge_kernel(const __grid_constant__ TopkSegParams p) {
  grid_dependency_sync();
  using namespace indexer_detail;
  extern __shared__ __align__(16) unsigned char topk_smem[];
  const TopkScratch sc = topk_scratch(topk_smem);
  const int t = blockIdx.y, g = blockIdx.x;
  const int n = p.n_keys[t];
  const int nseg = max(1, (n + kTopkSegment - 1) / kTopkSegment);
  if (nseg <= kTopkMergeGroup || g * kTopkMergeGroup >= nseg) return;
  const int last = n - (nseg - 1) * kTopkSegment;
  const int s0 = g * kTopkMergeGroup, s1 = min(nseg, s0 + kTopkMergeGroup);
  int m = 0;
  for (int s = s0; s < s1; ++s) m += topk_seg_count(s, nseg, last, p.top_k);
  const int64_t base = int64_t(t) * p.cand_ld + int64_t(s0) * p.top_k;
  const int k = merge_topk(sc, p.cand_key + base, p.cand_idx + base, m, p.top_k);
  const int64_t dst = int64_t(t) * p.cand2_ld + int64_t(g) * p.top_k;
  write_candidates(sc.cand, k, p.cand2_key + dst, p.cand2_idx + dst);
}

// Two-level merge, stage 2b: one CTA per row of more than kTopkMergeGroup segments merges its groups' candidates.
__global__ void __launch_bounds__(kTopkThreads) topk_group_final_kernel(const __grid_constant__ TopkSegParams p) {
  grid_dependency_sync();
  using namespace indexer_detail;
  extern __shared__ __align__(16) unsigned char topk_smem[];
  const TopkScratch sc = topk_scratch(topk_smem);
  const int t = blockIdx.x;
  const int n = p.n_keys[t];
  const int nseg = max(1, (n + kTopkSegment - 1) / kTopkSegment);
  if (nseg <= kTopkMergeGroup) return;
  const int last = n - (nseg - 1) * kTopkSegment;
  const int ng = (nseg + kTopkMergeGroup - 1) / kTopkMergeGroup;
  int m_last = 0;  // candidates of the last group, of which it kept min(top_k, m_last)
  for (int s = (ng - 1) * kTopkMergeGroup; s < nseg; ++s) m_last += topk_seg_count(s, nseg, last, p.top_k);
  const int m = (ng - 1) * p.top_k + min(p.top_k, m_last);
  const int64_t base = int64_t(t) * p.cand2_ld;
  const int k = merge_topk(sc, p.cand2_key + base, p.cand2_idx + base, m, p.top_k);
  write_selection(sc.cand, k, p.top_k, p.out + int64_t(t) * p.top_k);
}

}  // namespace dsv4::cuda
