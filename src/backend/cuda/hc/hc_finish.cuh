// hc_finish_kernel: the per-token tail of hc_pre / hc_head (spec §4.1 steps 2-5, §4.4) after hc_mix_kernel.
// The CTA stages the K-split partials of its token in shared memory (splits <= kHcFinishStageSplits; else
// warp 0 reads them directly), warp 0 sums them in split order, computes rho = 1 / sqrt(f32(ss / width) + norm_eps) as the
// CPU reference does (f64 sum of squares, IEEE sqrt and division), then lane o holds mu[o]. The sigmoids and
// the Sinkhorn iterations run one matrix element per lane (lane = j * hc + k): row and column sums are read
// through shuffles in ascending index order, so every sum, division and eps has the reference's order; only
// expf differs from the host libm by an ulp or two. Then the CTA collapses its D chunk of the streams:
// y[c] = round(Σ_j pre_j · x[j][c]) with separate f32 multiply and add, j ascending (the reference's order).
// Supports hc = kHc <= 4 (hc * hc <= 32 lanes), any D (kVec = 4 needs D % 4 == 0, aligned rows).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/hc/params.h"
#include "backend/cuda/hc/plan.h"

namespace dsv4::cuda {

__device__ __forceinline__ float hc_sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

__device__ __forceinline__ float hc_round(float v, bool round) {
  return round ? __bfloat162float(__float2bfloat16_rn(v)) : v;
}

// Sinkhorn of spec §4.1 step 4 on the lane's element c = C[j][k] (lane = j * kHc + k, lanes >= kHc² idle but
// participating in the shuffles).
template <int kHc>
__device__ __forceinline__ float hc_sinkhorn(float c, int lane, int iters, float eps) {
  const int j = lane / kHc, k = lane % kHc;
  const int row0 = min(j, kHc - 1) * kHc;
  float mx = __shfl_sync(0xffffffffu, c, row0);
#pragma unroll
  for (int kk = 1; kk < kHc; ++kk) mx = fmaxf(mx, __shfl_sync(0xffffffffu, c, row0 + kk));
  const float e = expf(c - mx);
  float sum = 0.0f;
#pragma unroll
  for (int kk = 0; kk < kHc; ++kk) sum = __fadd_rn(sum, __shfl_sync(0xffffffffu, e, row0 + kk));
  c = __fadd_rn(e / sum, eps);
  auto col_norm = [&] {
    float s = 0.0f;
#pragma unroll
    for (int jj = 0; jj < kHc; ++jj) s = __fadd_rn(s, __shfl_sync(0xffffffffu, c, jj * kHc + k));
    c = c / __fadd_rn(s, eps);
  };
  col_norm();
  for (int it = 1; it < iters; ++it) {
    float s = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kHc; ++kk) s = __fadd_rn(s, __shfl_sync(0xffffffffu, c, row0 + kk));
    c = c / __fadd_rn(s, eps);
    col_norm();
  }
  return c;
}

template <int kHc, int kVec, bool kPre>
__global__ void __launch_bounds__(256) hc_finish_kernel(const __grid_constant__ HcFinishParams p) {
  grid_dependency_sync();
  constexpr int kMix = kPre ? (2 + kHc) * kHc : kHc;
  static_assert(kMix <= 32 && kHc * kHc <= 32, "one warp holds mu and C");
  const int64_t t = blockIdx.x;
  __shared__ float s_pre[kHc];
  // The K-split partials of token t, loaded by the whole CTA at once (all loads in flight together), then
  // summed by warp 0 in split order from shared memory (the same order as the direct loop below).
  __shared__ float s_mu[kHcFinishStageSplits * kMix];
  __shared__ double s_ss[kHcFinishStageSplits];
  const bool staged = p.splits <= kHcFinishStageSplits;
  if (staged) {
    for (int i = threadIdx.x; i < p.splits * kMix; i += blockDim.x) {
      const int s = i / kMix, o = i % kMix;
      s_mu[i] = p.part_mu[(static_cast<int64_t>(s) * p.T + t) * kMix + o];
    }
    for (int s = threadIdx.x; s < p.splits; s += blockDim.x) s_ss[s] = p.part_ss[static_cast<int64_t>(s) * p.T + t];
    __syncthreads();
  }
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    float mu = 0.0f;
    double ss = 0.0;
    if (staged) {
      if (lane < kMix)
        for (int s = 0; s < p.splits; ++s) mu += s_mu[s * kMix + lane];
      if (lane == 0)
        for (int s = 0; s < p.splits; ++s) ss += s_ss[s];
    } else {
      if (lane < kMix)
        for (int s = 0; s < p.splits; ++s) mu += p.part_mu[(static_cast<int64_t>(s) * p.T + t) * kMix + lane];
      if (lane == 0)
        for (int s = 0; s < p.splits; ++s) ss += p.part_ss[static_cast<int64_t>(s) * p.T + t];
    }
    ss = __shfl_sync(0xffffffffu, ss, 0);
    const double width = static_cast<double>(kHc) * p.D;
    const float rho = 1.0f / sqrtf(static_cast<float>(ss / width) + p.norm_eps);
    mu = __fmul_rn(mu, rho);
    const int j = lane % kHc;
    const float mu_pre = __shfl_sync(0xffffffffu, mu, j);
    if (lane < kHc)
      s_pre[lane] = __fadd_rn(hc_sigmoid(__fadd_rn(__fmul_rn(mu_pre, p.scale[0]), p.base[lane])), p.hc_eps);
    if constexpr (kPre) {
      const float mu_post = __shfl_sync(0xffffffffu, mu, kHc + j);
      const float mu_comb = __shfl_sync(0xffffffffu, mu, min(2 * kHc + lane, 31));
      const float z = lane < kHc * kHc ? __fadd_rn(__fmul_rn(mu_comb, p.scale[2]), p.base[2 * kHc + lane]) : 0.0f;
      const float c = hc_sinkhorn<kHc>(z, lane, p.sinkhorn_iters, p.hc_eps);
      if (blockIdx.y == 0) {
        if (lane < kHc)
          p.post[t * kHc + lane] =
              2.0f * hc_sigmoid(__fadd_rn(__fmul_rn(mu_post, p.scale[1]), p.base[kHc + lane]));
        if (lane < kHc * kHc) p.comb[t * kHc * kHc + lane] = c;
      }
    }
  }
  __syncthreads();
  float pre[kHc];
#pragma unroll
  for (int jj = 0; jj < kHc; ++jj) pre[jj] = s_pre[jj];
  const int c0 = blockIdx.y * p.d_chunk;
  const int c1 = min(p.D, c0 + p.d_chunk);
  const float* x = p.x + t * kHc * p.D;
  float* y = p.y + t * p.D;
  for (int c = c0 + threadIdx.x * kVec; c < c1; c += blockDim.x * kVec) {
    float out[kVec];
#pragma unroll
    for (int e = 0; e < kVec; ++e) out[e] = 0.0f;
#pragma unroll
    for (int jj = 0; jj < kHc; ++jj) {
      float v[kVec];
      if constexpr (kVec == 4) {
        const float4 f = *reinterpret_cast<const float4*>(x + jj * p.D + c);
        v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
      } else {
        v[0] = x[jj * p.D + c];
      }
#pragma unroll
      for (int e = 0; e < kVec; ++e) out[e] = __fadd_rn(out[e], __fmul_rn(pre[jj], v[e]));
    }
#pragma unroll
    for (int e = 0; e < kVec; ++e) out[e] = hc_round(out[e], p.round_bf16);
    if constexpr (kVec == 4) {
      *reinterpret_cast<float4*>(y + c) = make_float4(out[0], out[1], out[2], out[3]);
    } else {
      y[c] = out[0];
    }
  }
}

}  // namespace dsv4::cuda
