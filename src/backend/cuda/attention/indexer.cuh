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

#include <cstdint>

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

__global__ void __launch_bounds__(kIndexerKeyTile) indexer_score_kernel(const __grid_constant__ IndexerScoreParams p) {
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
  for (int i = threadIdx.x; i < nh * hd; i += kIndexerKeyTile) qs[i] = q[i];
  for (int i = threadIdx.x; i < kIndexerKeyTile * hd; i += kIndexerKeyTile) {
    const int r = i / hd, c = i % hd;
    ks[c * kLd + r] = s0 + r < n ? p.keys[s0 + r][c] : 0.0f;
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
  int size = 1;
  while (size < k) size <<= 1;
  for (int i = k + tid; i < size; i += kTopkThreads) cand[i] = ~0ull;
  __syncthreads();
  for (int len = 2; len <= size; len <<= 1) {
    for (int stride = len >> 1; stride > 0; stride >>= 1) {
      for (int i = tid; i < size; i += kTopkThreads) {
        const int j = i ^ stride;
        if (j > i) {
          const bool up = (i & len) == 0;
          const unsigned long long a = cand[i], b = cand[j];
          if ((a > b) == up) {
            cand[i] = b;
            cand[j] = a;
          }
        }
      }
      __syncthreads();
    }
  }
  for (int j = tid; j < k; j += kTopkThreads) out[j] = static_cast<int32_t>(cand[j] & 0xffffffffu);
}

}  // namespace dsv4::cuda
