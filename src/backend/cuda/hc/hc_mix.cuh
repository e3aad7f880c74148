// hc_mix_kernel: the mixing GEMV of hc_pre / hc_head (spec §4.1 steps 1-3 without the final scaling):
// part_mu[s, t, :] = fn[:, K_s] · x[t, K_s] and part_ss[s, t] = Σ x[t, K_s]² over the K slice K_s of split s.
// Thread layout (plan.h): kGroups groups of kLanes threads; a group owns kTpt consecutive tokens, each lane a
// kVec-wide column of every K step. x is read exactly once (coalesced: a warp covers 32 * kVec consecutive
// values of a row), fn through L1/L2 (shared by the groups of the CTA). Accumulation: f32 FMA per lane for the
// dot products, f64 for the sum of squares (the CPU reference sums squares in f64); lanes are combined by warp
// shuffles, then warps of a group in ascending order through shared memory. Supports any T, any width
// (kVec = 4 needs width % 4 == 0 and 16-byte aligned rows), n_mix <= kMix.
#pragma once
#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/hc/params.h"

namespace dsv4::cuda {

template <int kVec>
__device__ __forceinline__ void hc_load(const float* __restrict__ p, float (&v)[kVec]) {
  if constexpr (kVec == 4) {
    const float4 f = *reinterpret_cast<const float4*>(p);
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else {
#pragma unroll
    for (int e = 0; e < kVec; ++e) v[e] = p[e];
  }
}

// Every lane's sums of its warp (xor shuffles, the order both mix kernels use).
template <int kMix, int kTpt>
__device__ __forceinline__ void hc_mix_warp_reduce(float (&acc)[kTpt][kMix], double (&ss)[kTpt]) {
#pragma unroll
  for (int i = 0; i < kTpt; ++i) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) ss[i] += __shfl_xor_sync(0xffffffffu, ss[i], off);
#pragma unroll
    for (int o = 0; o < kMix; ++o)
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) acc[i][o] += __shfl_xor_sync(0xffffffffu, acc[i][o], off);
  }
}

// The per-lane dot products of kTpt tokens (from t0) over the K range [k_begin, k_end), then the warp
// reduction (xor shuffles): every lane returns its warp's sums. Shared by hc_mix_kernel and hc_fused_kernel,
// so both produce the same partials bit for bit.
template <int kMix, int kTpt, int kLanes, int kVec>
__device__ __forceinline__ void hc_mix_warp_sums(const float* __restrict__ x, const float* __restrict__ fn,
                                                 int64_t T, int width, int n_mix, int64_t t0, int k_begin,
                                                 int k_end, int lane_k, float (&acc)[kTpt][kMix],
                                                 double (&ss)[kTpt]) {
#pragma unroll
  for (int i = 0; i < kTpt; ++i) {
    ss[i] = 0.0;
#pragma unroll
    for (int o = 0; o < kMix; ++o) acc[i][o] = 0.0f;
  }

  for (int k = k_begin + lane_k * kVec; k < k_end; k += kLanes * kVec) {
    float xv[kTpt][kVec];
#pragma unroll
    for (int i = 0; i < kTpt; ++i) {
      if (t0 + i < T) {
        hc_load<kVec>(x + (t0 + i) * width + k, xv[i]);
      } else {
#pragma unroll
        for (int e = 0; e < kVec; ++e) xv[i][e] = 0.0f;
      }
#pragma unroll
      for (int e = 0; e < kVec; ++e) ss[i] = fma(static_cast<double>(xv[i][e]), static_cast<double>(xv[i][e]), ss[i]);
    }
#pragma unroll
    for (int o = 0; o < kMix; ++o) {
      if (o >= n_mix) break;
      float wv[kVec];
      hc_load<kVec>(fn + static_cast<int64_t>(o) * width + k, wv);
#pragma unroll
      for (int i = 0; i < kTpt; ++i)
#pragma unroll
        for (int e = 0; e < kVec; ++e) acc[i][o] = fmaf(wv[e], xv[i][e], acc[i][o]);
    }
  }

  hc_mix_warp_reduce(acc, ss);
}

// The CTA's partials from every warp's sums (lane 0 of each warp holds them): warps of a group added in
// ascending order through shared memory, then part_mu / part_ss of the CTA's tokens and K split.
template <int kMix, int kTpt, int kLanes, int kGroups>
__device__ __forceinline__ void hc_mix_store(const HcMixParams& p, int64_t tile_t0, const float (&acc)[kTpt][kMix],
                                             const double (&ss)[kTpt]) {
  constexpr int kThreads = kLanes * kGroups, kWarps = kThreads / 32, kWarpsPerGroup = kLanes / 32;
  constexpr int kTokens = kTpt * kGroups;
  __shared__ float red[kWarps][kTpt][kMix];
  __shared__ double red_ss[kWarps][kTpt];
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) {
#pragma unroll
    for (int i = 0; i < kTpt; ++i) {
      red_ss[warp][i] = ss[i];
#pragma unroll
      for (int o = 0; o < kMix; ++o) red[warp][i][o] = acc[i][o];
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kTokens * (kMix + 1); idx += kThreads) {
    const int tt = idx / (kMix + 1), o = idx % (kMix + 1);
    const int g = tt / kTpt, i = tt % kTpt;
    const int64_t t = tile_t0 + tt;
    if (t >= p.T) continue;
    if (o < kMix) {
      if (o >= p.n_mix) continue;
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarpsPerGroup; ++w) s += red[g * kWarpsPerGroup + w][i][o];
      p.part_mu[(static_cast<int64_t>(blockIdx.y) * p.T + t) * p.n_mix + o] = s;
    } else {
      double s = 0.0;
#pragma unroll
      for (int w = 0; w < kWarpsPerGroup; ++w) s += red_ss[g * kWarpsPerGroup + w][i];
      p.part_ss[static_cast<int64_t>(blockIdx.y) * p.T + t] = s;
    }
  }
}

template <int kMix, int kTpt, int kLanes, int kGroups, int kVec>
__global__ void __launch_bounds__(kLanes * kGroups) hc_mix_kernel(const __grid_constant__ HcMixParams p) {
  grid_dependency_sync();
  static_assert(kLanes % 32 == 0, "a group is whole warps");
  constexpr int kTokens = kTpt * kGroups;
  const int lane_k = threadIdx.x % kLanes, group = threadIdx.x / kLanes;
  const int64_t tile_t0 = static_cast<int64_t>(blockIdx.x) * kTokens;
  const int64_t t0 = tile_t0 + static_cast<int64_t>(group) * kTpt;
  const int k_begin = blockIdx.y * p.k_slice;
  const int k_end = min(p.width, k_begin + p.k_slice);

  float acc[kTpt][kMix];
  double ss[kTpt];
  hc_mix_warp_sums<kMix, kTpt, kLanes, kVec>(p.x, p.fn, p.T, p.width, p.n_mix, t0, k_begin, k_end, lane_k, acc, ss);
  hc_mix_store<kMix, kTpt, kLanes, kGroups>(p, tile_t0, acc, ss);
}

// hc_mix_staged_kernel: the Large configuration (one warp per group of kTpt tokens, float4 columns) with fn's K
// step staged in shared memory and x prefetched a step ahead. hc_mix_kernel there read fn through L1 with its
// loads behind a data-dependent loop exit, so every step waited on ~28 dependent loads: H200 run 97 (ncu,
// T = 8192, width 16384, n_mix 24): 2.56 ms, 24.5 cycles per issued instruction of which 21.8 on L1TEX, 8 % of
// issue slots used. Here a step's fn tile [kMix][128] is read from global memory into registers while the
// previous tile is used (double-buffered, one barrier per step), and x of the next step is in flight while this
// one is used. Per lane the products and sums are hc_mix_warp_sums' (same k per lane, same order over steps, o,
// tokens and elements; fn rows o >= n_mix are zeros whose sums are never stored), so the partials are bitwise
// those of hc_mix_kernel<kMix, kTpt, 32, kGroups, 4>.
template <int kMix, int kTpt, int kGroups>
__global__ void __launch_bounds__(32 * kGroups, 1) hc_mix_staged_kernel(const __grid_constant__ HcMixParams p) {
  grid_dependency_sync();
  constexpr int kThreads = 32 * kGroups, kTokens = kTpt * kGroups, kStep = 128;
  constexpr int kFnVecs = kMix * kStep / 4, kFnPer = (kFnVecs + kThreads - 1) / kThreads;
  __shared__ __align__(16) float fs[2][kMix][kStep];
  const int lane = threadIdx.x & 31, group = threadIdx.x >> 5;
  const int64_t tile_t0 = static_cast<int64_t>(blockIdx.x) * kTokens;
  const int64_t t0 = tile_t0 + static_cast<int64_t>(group) * kTpt;
  const int k_begin = blockIdx.y * p.k_slice;
  const int k_end = min(p.width, k_begin + p.k_slice);
  const int n_steps = (k_end - k_begin + kStep - 1) / kStep;

  float4 fn_next[kFnPer];
  auto fetch_fn = [&](int s) {
#pragma unroll
    for (int j = 0; j < kFnPer; ++j) {
      const int f = threadIdx.x + j * kThreads, o = f / (kStep / 4), k = k_begin + s * kStep + 4 * (f % (kStep / 4));
      fn_next[j] = f < kFnVecs && o < p.n_mix && k < k_end
                       ? *reinterpret_cast<const float4*>(p.fn + static_cast<int64_t>(o) * p.width + k)
                       : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
  };
  auto stage_fn = [&](int buf) {
#pragma unroll
    for (int j = 0; j < kFnPer; ++j) {
      const int f = threadIdx.x + j * kThreads;
      if (f < kFnVecs) *reinterpret_cast<float4*>(&fs[buf][f / (kStep / 4)][4 * (f % (kStep / 4))]) = fn_next[j];
    }
  };
  float4 x_next[kTpt];
  auto fetch_x = [&](int s) {
    const int k = k_begin + s * kStep + 4 * lane;
#pragma unroll
    for (int i = 0; i < kTpt; ++i)
      x_next[i] = t0 + i < p.T && k < k_end ? *reinterpret_cast<const float4*>(p.x + (t0 + i) * p.width + k)
                                            : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  };

  float acc[kTpt][kMix];
  double ss[kTpt];
#pragma unroll
  for (int i = 0; i < kTpt; ++i) {
    ss[i] = 0.0;
#pragma unroll
    for (int o = 0; o < kMix; ++o) acc[i][o] = 0.0f;
  }
  fetch_fn(0);
  stage_fn(0);
  fetch_x(0);
  for (int s = 0; s < n_steps; ++s) {
    __syncthreads();  // fs[s & 1] staged; every warp is done with fs[(s + 1) & 1] (step s - 1)
    float xv[kTpt][4];
#pragma unroll
    for (int i = 0; i < kTpt; ++i) {
      xv[i][0] = x_next[i].x, xv[i][1] = x_next[i].y;
      xv[i][2] = x_next[i].z, xv[i][3] = x_next[i].w;
    }
    if (s + 1 < n_steps) {
      fetch_fn(s + 1);
      fetch_x(s + 1);
    }
    if (k_begin + s * kStep + 4 * lane < k_end) {  // hc_mix_warp_sums' K loop bound, per lane
#pragma unroll
      for (int i = 0; i < kTpt; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) ss[i] = fma(static_cast<double>(xv[i][e]), static_cast<double>(xv[i][e]), ss[i]);
#pragma unroll
      for (int o = 0; o < kMix; ++o) {
        const float4 w4 = *reinterpret_cast<const float4*>(&fs[s & 1][o][4 * lane]);
        const float wv[4] = {w4.x, w4.y, w4.z, w4.w};
#pragma unroll
        for (int i = 0; i < kTpt; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[i][o] = fmaf(wv[e], xv[i][e], acc[i][o]);
      }
    }
    if (s + 1 < n_steps) stage_fn((s + 1) & 1);
  }
  hc_mix_warp_reduce(acc, ss);
  hc_mix_store<kMix, kTpt, 32, kGroups>(p, tile_t0, acc, ss);
}

}  // namespace dsv4::cuda
