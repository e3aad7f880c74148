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

template <int kMix, int kTpt, int kLanes, int kGroups, int kVec>
__global__ void __launch_bounds__(kLanes * kGroups) hc_mix_kernel(const __grid_constant__ HcMixParams p) {
  grid_dependency_sync();
  static_assert(kLanes % 32 == 0, "a group is whole warps");
  constexpr int kThreads = kLanes * kGroups, kWarps = kThreads / 32, kWarpsPerGroup = kLanes / 32;
  constexpr int kTokens = kTpt * kGroups;
  const int lane_k = threadIdx.x % kLanes, group = threadIdx.x / kLanes;
  const int64_t tile_t0 = static_cast<int64_t>(blockIdx.x) * kTokens;
  const int64_t t0 = tile_t0 + static_cast<int64_t>(group) * kTpt;
  const int k_begin = blockIdx.y * p.k_slice;
  const int k_end = min(p.width, k_begin + p.k_slice);

  float acc[kTpt][kMix];
  double ss[kTpt];
  hc_mix_warp_sums<kMix, kTpt, kLanes, kVec>(p.x, p.fn, p.T, p.width, p.n_mix, t0, k_begin, k_end, lane_k, acc, ss);
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

}  // namespace dsv4::cuda
