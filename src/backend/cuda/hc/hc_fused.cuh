// hc_fused_kernel: hc_pre / hc_head at small T (decode) in one launch, bitwise equal to hc_mix_kernel followed by
// hc_finish_kernel (the same K splits, lane layout and summation orders; see params.h HcFusedParams).
// CTA = kHcFusedGroups groups of kHcFusedLanes threads (group g: K split blockIdx.y * kHcFusedGroups + g of
// the tile's kTpt tokens, through hc_mix_warp_sums) + kTpt tail warps (idle while mixing). After writing its
// partials the CTA takes a ticket (threadfence + atomicAdd on counters[tile]); the last CTA of the tile:
//   1. stages the tile's partials in shared memory (all loads in flight at once; L2 reads, __ldcg),
//   2. tail warp tt sums token tt's partials in split order (lane o: mu[o]; lane 0: the f64 sum of squares),
//      computes rho and the pre weights (hc_finish_kernel's arithmetic) into shared memory,
//   3. then the tail warps run the Sinkhorn and write post / comb (hc_pre) while the mix warps collapse the
//      streams of the tile's tokens over all of D (kU vectors per thread in flight).
// The last CTA resets its counter, so the counters are zero again when the kernel ends (stream order makes
// the next launch see it). Supports hc = kHc <= 4, T <= kHcFusedMaxT; kVec = 4 needs width and D % 4 == 0
// and 16-byte aligned x, fn, y. With out_norm (hc_pre_norm) the mix threads then RMS-normalize the tile's rows
// (hc_fused_out_norm, bitwise rms_norm_f32_kernel).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/hc/hc_finish.cuh"
#include "backend/cuda/hc/hc_mix.cuh"
#include "backend/cuda/hc/params.h"
#include "backend/cuda/hc/plan.h"

namespace dsv4::cuda {

template <int kTpt>
inline constexpr int kHcFusedThreads = kHcFusedGroups * kHcFusedLanes + 32 * kTpt;
// float4 chunks per mix thread in hc_fused_collapse_norm: rows up to D = 4 * 256 * 4 = 4096.
inline constexpr int kHcCollapseNormChunks = 4;

// The norm of one row whose float4 chunks c = tid + 256 i (i < kChunks, those below n4) thread tid holds in v with
// the f64 sum of their squares ss (absent chunks as zeros): warp xor-shuffle, the 8 warp sums in order, scale,
// weight and bf16 rounding as rms_scale, stored to row. Named barrier 1 over the 256 mix threads.
template <int kChunks>
__device__ __forceinline__ void hc_fused_norm_store(const HcFusedParams& p, float4* row, const float4 (&v)[kChunks],
                                                    double ss, int tid) {
  constexpr int kThreads = kHcFusedGroups * kHcFusedLanes;
  static_assert(kThreads == 256, "the norm replicates rms_norm_f32_kernel<256, *>");
  __shared__ double s_wsum[kThreads / 32];
  const int lane = tid % 32, warp = tid / 32, n4 = p.D / 4;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (lane == 0) s_wsum[warp] = ss;
  asm volatile("bar.sync 1, %0;" ::"r"(kThreads) : "memory");
  ss = 0.0;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) ss += s_wsum[w];
  const float inv = 1.0f / sqrtf(static_cast<float>(ss / static_cast<double>(p.D)) + p.out_norm_eps);
  auto scale = [&](float x, int i) {
    float y = __fmul_rn(x, inv);
    y = __fmul_rn(y, p.out_norm_w[i]);
    return p.round_bf16 ? hc_round(y, true) : y;
  };
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = tid + i * kThreads;
    if (c < n4)
      row[c] = make_float4(scale(v[i].x, 4 * c + 0), scale(v[i].y, 4 * c + 1), scale(v[i].z, 4 * c + 2),
                           scale(v[i].w, 4 * c + 3));
  }
  asm volatile("bar.sync 1, %0;" ::"r"(kThreads) : "memory");  // s_wsum is reused by the next row
}

// The out_norm epilogue: the kMixThreads (= 256) mix threads normalize each collapsed row of the tile in place
// with rms_norm_f32_kernel<256, kChunks>'s arithmetic: thread tid sums the squares of float4 c = tid + 256 i in
// f64 (absent chunks add exact zeros, so any kChunks gives the same sum), warp xor-shuffle, then the 8 warp sums
// in order; scale, weight and bf16 rounding as rms_scale. Named barrier 1: the tail warps have returned.
__device__ __forceinline__ void hc_fused_out_norm(const HcFusedParams& p, int64_t t0, int n_tok, int tid) {
  constexpr int kThreads = kHcFusedGroups * kHcFusedLanes;
  constexpr int kMaxChunks = 8;
  const int n4 = p.D / 4;
  asm volatile("bar.sync 1, %0;" ::"r"(kThreads) : "memory");  // the collapsed rows are written
  for (int tk = 0; tk < n_tok; ++tk) {
    float4* row = reinterpret_cast<float4*>(p.y + (t0 + tk) * p.D);
    float4 v[kMaxChunks];
    double ss = 0.0;
#pragma unroll
    for (int i = 0; i < kMaxChunks; ++i) {
      const int c = tid + i * kThreads;
      v[i] = c < n4 ? row[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      ss = fma_sq4(v[i], ss);
    }
    hc_fused_norm_store<kMaxChunks>(p, row, v, ss, tid);
  }
}

// Collapse and out_norm together (kVec = 4, D <= 4 * 256 * 4): thread tid collapses exactly the float4 chunks
// c = tid + 256 i of each row that the norm gives it, so the norm takes them from registers instead of writing the
// collapsed row and reading it back (one global round trip and one row write fewer per token). The same arithmetic
// in the same order as the collapse loop followed by hc_fused_out_norm: bitwise equal.
template <int kHc>
__device__ __forceinline__ void hc_fused_collapse_norm(const HcFusedParams& p, int64_t t0, int n_tok, int tid,
                                                       const float (*s_pre)[kHc]) {
  constexpr int kThreads = kHcFusedGroups * kHcFusedLanes;
  constexpr int kC = kHcCollapseNormChunks;
  const int n4 = p.D / 4;
  for (int tk = 0; tk < n_tok; ++tk) {
    const float* xr = p.x + (t0 + tk) * kHc * p.D;
    float xin[kC][kHc][4];
#pragma unroll
    for (int i = 0; i < kC; ++i) {
      const int c = tid + i * kThreads;
      if (c < n4) {
#pragma unroll
        for (int jj = 0; jj < kHc; ++jj) hc_load<4>(xr + jj * p.D + 4 * c, xin[i][jj]);
      }
    }
    float4 v[kC];
    double ss = 0.0;
#pragma unroll
    for (int i = 0; i < kC; ++i) {
      const int c = tid + i * kThreads;
      float out[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (c < n4) {
#pragma unroll
        for (int jj = 0; jj < kHc; ++jj) {
          const float pj = s_pre[tk][jj];
#pragma unroll
          for (int e = 0; e < 4; ++e) out[e] = __fadd_rn(out[e], __fmul_rn(pj, xin[i][jj][e]));
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) out[e] = hc_round(out[e], p.round_bf16);
      }
      v[i] = make_float4(out[0], out[1], out[2], out[3]);
      ss = fma_sq4(v[i], ss);  // absent chunks add exact zeros, as in hc_fused_out_norm
    }
    hc_fused_norm_store<kC>(p, reinterpret_cast<float4*>(p.y + (t0 + tk) * p.D), v, ss, tid);
  }
}

template <int kHc, bool kPre, int kTpt, int kVec>
__global__ void __launch_bounds__(kHcFusedThreads<kTpt>) hc_fused_kernel(const __grid_constant__ HcFusedParams p) {
  constexpr int kMix = kPre ? (2 + kHc) * kHc : kHc;
  static_assert(kMix <= 32 && kHc * kHc <= 32, "one warp holds mu and C");
  constexpr int kLanes = kHcFusedLanes, kGroups = kHcFusedGroups;
  constexpr int kMixThreads = kLanes * kGroups, kMixWarps = kMixThreads / 32, kWarpsPerGroup = kLanes / 32;
  constexpr int kThreads = kHcFusedThreads<kTpt>;
  constexpr int kStage = kHcFusedStageSplits;
  constexpr int kU = 4;  // collapse vectors per thread in flight
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTpt;
  const int n_tok = static_cast<int>(min(static_cast<int64_t>(kTpt), p.T - t0));
  // A mix thread's K split (group) and lane within it; its K range [k_begin, k_end) is empty past the last split.
  const int group = tid / kLanes, lane_k = tid % kLanes;
  const int k_begin = (static_cast<int>(blockIdx.y) * kGroups + group) * p.k_slice;
  const int k_end = min(p.width, k_begin + p.k_slice);

  // fn is a weight (no kernel writes it): the mix threads' fn vectors go to L2 while the previous kernel still
  // runs (common/pdl.cuh), so the mix after the wait reads them from L2 rather than HBM.
  if (tid < kMixThreads) {
    for (int k = k_begin + lane_k * kVec; k < k_end; k += kLanes * kVec)
#pragma unroll
      for (int o = 0; o < kMix; ++o)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(p.fn + static_cast<int64_t>(o) * p.width + k));
  }
  grid_dependency_sync();

  __shared__ float red[kMixWarps][kTpt][kMix];
  __shared__ double red_ss[kMixWarps][kTpt];
  __shared__ float s_part[kStage * kTpt * kMix];  // [split][token][mix]
  __shared__ double s_pss[kStage * kTpt];         // [split][token]
  __shared__ float s_pre[kTpt][kHc];
  __shared__ unsigned s_ticket;

  // Partials of this CTA's K splits (hc_mix_kernel's arithmetic).
  if (tid < kMixThreads) {
    float acc[kTpt][kMix];
    double ss[kTpt];
    hc_mix_warp_sums<kMix, kTpt, kLanes, kVec>(p.x, p.fn, p.T, p.width, kMix, t0, k_begin, k_end, lane_k, acc, ss);
    if (lane == 0) {
#pragma unroll
      for (int i = 0; i < kTpt; ++i) {
        red_ss[warp][i] = ss[i];
#pragma unroll
        for (int o = 0; o < kMix; ++o) red[warp][i][o] = acc[i][o];
      }
    }
  }
  __syncthreads();
  for (int idx = tid; idx < kGroups * kTpt * (kMix + 1); idx += kThreads) {
    const int g = idx / (kTpt * (kMix + 1)), r = idx % (kTpt * (kMix + 1));
    const int i = r / (kMix + 1), o = r % (kMix + 1);
    const int split = static_cast<int>(blockIdx.y) * kGroups + g;
    const int64_t t = t0 + i;
    if (split >= p.splits || t >= p.T) continue;
    if (o < kMix) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarpsPerGroup; ++w) s += red[g * kWarpsPerGroup + w][i][o];
      p.part_mu[(static_cast<int64_t>(split) * p.T + t) * kMix + o] = s;
    } else {
      double s = 0.0;
#pragma unroll
      for (int w = 0; w < kWarpsPerGroup; ++w) s += red_ss[g * kWarpsPerGroup + w][i];
      p.part_ss[static_cast<int64_t>(split) * p.T + t] = s;
    }
  }

  // Ticket: the last CTA of the tile continues.
  __threadfence();
  __syncthreads();
  if (tid == 0) s_ticket = atomicAdd(p.counters + blockIdx.x, 1u);
  __syncthreads();
  if (s_ticket != gridDim.y - 1) return;
  __threadfence();
  if (tid == 0) p.counters[blockIdx.x] = 0u;

  const bool staged = p.splits <= kStage;
  if (staged) {
    // Every load of a thread issued before its first store (a loop of load-store pairs waited for one L2 round
    // trip per iteration).
    constexpr int kMuIters = (kStage * kTpt * kMix + kThreads - 1) / kThreads;
    constexpr int kSsIters = (kStage * kTpt + kThreads - 1) / kThreads;
    const int per_split = n_tok * kMix;  // the tile's partials of one split are contiguous
    const int n_mu = p.splits * per_split, n_ss = p.splits * n_tok;
    float v[kMuIters];
    double w[kSsIters];
#pragma unroll
    for (int j = 0; j < kMuIters; ++j) {
      const int i = tid + j * kThreads, s = i / per_split, r = i % per_split;
      if (i < n_mu) v[j] = __ldcg(p.part_mu + (static_cast<int64_t>(s) * p.T + t0) * kMix + r);
    }
#pragma unroll
    for (int j = 0; j < kSsIters; ++j) {
      const int i = tid + j * kThreads, s = i / n_tok, tt = i % n_tok;
      if (i < n_ss) w[j] = __ldcg(p.part_ss + static_cast<int64_t>(s) * p.T + t0 + tt);
    }
#pragma unroll
    for (int j = 0; j < kMuIters; ++j) {
      const int i = tid + j * kThreads, s = i / per_split, r = i % per_split;
      if (i < n_mu) s_part[s * kTpt * kMix + r] = v[j];
    }
#pragma unroll
    for (int j = 0; j < kSsIters; ++j) {
      const int i = tid + j * kThreads, s = i / n_tok, tt = i % n_tok;
      if (i < n_ss) s_pss[s * kTpt + tt] = w[j];
    }
  }
  __syncthreads();

  // Tail warp tt: token t0 + tt (hc_finish_kernel's warp-0 arithmetic).
  const bool tail = warp >= kMixWarps;
  const int tt = warp - kMixWarps;
  const bool tail_tok = tail && tt < n_tok;
  float mu = 0.0f;
  if (tail_tok) {
    const int64_t t = t0 + tt;
    double ss = 0.0;
    if (staged) {  // in split order; unrolled so that the shared-memory loads run ahead of the adds
      if (lane < kMix) {
#pragma unroll 8
        for (int s = 0; s < p.splits; ++s) mu += s_part[(s * kTpt + tt) * kMix + lane];
      }
      if (lane == 0) {
#pragma unroll 8
        for (int s = 0; s < p.splits; ++s) ss += s_pss[s * kTpt + tt];
      }
    } else {
      if (lane < kMix)
        for (int s = 0; s < p.splits; ++s) mu += __ldcg(p.part_mu + (static_cast<int64_t>(s) * p.T + t) * kMix + lane);
      if (lane == 0)
        for (int s = 0; s < p.splits; ++s) ss += __ldcg(p.part_ss + static_cast<int64_t>(s) * p.T + t);
    }
    ss = __shfl_sync(0xffffffffu, ss, 0);
    const double width = static_cast<double>(kHc) * p.D;
    const float rho = 1.0f / sqrtf(static_cast<float>(ss / width) + p.norm_eps);
    mu = __fmul_rn(mu, rho);
    const float mu_pre = __shfl_sync(0xffffffffu, mu, lane % kHc);
    if (lane < kHc)
      s_pre[tt][lane] = __fadd_rn(hc_sigmoid(__fadd_rn(__fmul_rn(mu_pre, p.scale[0]), p.base[lane])), p.hc_eps);
  }
  __syncthreads();

  if (tail) {
    if constexpr (kPre) {
      if (tail_tok) {
        const int64_t t = t0 + tt;
        const int j = lane % kHc;
        const float mu_post = __shfl_sync(0xffffffffu, mu, kHc + j);
        const float mu_comb = __shfl_sync(0xffffffffu, mu, min(2 * kHc + lane, 31));
        const float z = lane < kHc * kHc ? __fadd_rn(__fmul_rn(mu_comb, p.scale[2]), p.base[2 * kHc + lane]) : 0.0f;
        const float c = hc_sinkhorn<kHc>(z, lane, p.sinkhorn_iters, p.hc_eps);
        if (lane < kHc)
          p.post[t * kHc + lane] = 2.0f * hc_sigmoid(__fadd_rn(__fmul_rn(mu_post, p.scale[1]), p.base[kHc + lane]));
        if (lane < kHc * kHc) p.comb[t * kHc * kHc + lane] = c;
      }
    }
    return;
  }

  // Collapse (mix warps): y[t, c] = round(Σ_j pre_j · x[t, j, c]), j ascending, separate multiply and add.
  const int nv = p.D / kVec;
  if constexpr (kVec == 4) {
    if (p.out_norm && p.collapse_norm && nv <= kHcCollapseNormChunks * kMixThreads) {
      hc_fused_collapse_norm<kHc>(p, t0, n_tok, tid, s_pre);
      return;
    }
  }
  const int total = n_tok * nv;
  for (int v0 = tid; v0 < total; v0 += kMixThreads * kU) {
    float xin[kU][kHc][kVec];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int v = v0 + u * kMixThreads;
      if (v < total) {
        const int tk = v / nv, c = (v % nv) * kVec;
        const float* xr = p.x + (t0 + tk) * kHc * p.D + c;
#pragma unroll
        for (int jj = 0; jj < kHc; ++jj) hc_load<kVec>(xr + jj * p.D, xin[u][jj]);
      }
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int v = v0 + u * kMixThreads;
      if (v >= total) continue;
      const int tk = v / nv, c = (v % nv) * kVec;
      float out[kVec];
#pragma unroll
      for (int e = 0; e < kVec; ++e) out[e] = 0.0f;
#pragma unroll
      for (int jj = 0; jj < kHc; ++jj) {
        const float pj = s_pre[tk][jj];
#pragma unroll
        for (int e = 0; e < kVec; ++e) out[e] = __fadd_rn(out[e], __fmul_rn(pj, xin[u][jj][e]));
      }
#pragma unroll
      for (int e = 0; e < kVec; ++e) out[e] = hc_round(out[e], p.round_bf16);
      float* y = p.y + (t0 + tk) * p.D + c;
      if constexpr (kVec == 4) {
        *reinterpret_cast<float4*>(y) = make_float4(out[0], out[1], out[2], out[3]);
      } else {
        y[0] = out[0];
      }
    }
  }
  if constexpr (kVec == 4) {
    if (p.out_norm) hc_fused_out_norm(p, t0, n_tok, tid);
  }
}

}  // namespace dsv4::cuda
