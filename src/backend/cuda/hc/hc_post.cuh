// hc_post_kernel (spec §4.2): out[t, k, c] = round(post[t, k] · a[t, c] + Σ_j comb[t, j, k] · R[t, j, c]).
// Elementwise over (t, c): a thread loads a[t, c..c+kVec) and the hc residual streams once and writes the hc
// output streams; post and comb of the token are read by every thread (L1 broadcast). Separate f32 multiply
// and add in the reference's order (j ascending), rounded once, so results match the CPU bit for bit.
// Memory bound: (1 + 2 hc) · D f32 values per token. Supports hc = kHc <= 4, any D (kVec = 4: D % 4 == 0).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/hc/params.h"

namespace dsv4::cuda {

template <int kHc, int kVec>
__global__ void __launch_bounds__(256) hc_post_kernel(const __grid_constant__ HcPostParams p) {
  grid_dependency_sync();
  const int64_t t = blockIdx.x;
  float post[kHc], C[kHc * kHc];
#pragma unroll
  for (int k = 0; k < kHc; ++k) post[k] = p.post[t * kHc + k];
#pragma unroll
  for (int i = 0; i < kHc * kHc; ++i) C[i] = p.comb[t * kHc * kHc + i];
  const int c0 = blockIdx.y * p.d_chunk;
  const int c1 = min(p.D, c0 + p.d_chunk);
  const float* a = p.a + t * p.D;
  const float* R = p.R + t * kHc * p.D;
  float* out = p.out + t * kHc * p.D;
  for (int c = c0 + threadIdx.x * kVec; c < c1; c += blockDim.x * kVec) {
    float av[kVec], r[kHc][kVec];
    if constexpr (kVec == 4) {
      const float4 f = *reinterpret_cast<const float4*>(a + c);
      av[0] = f.x, av[1] = f.y, av[2] = f.z, av[3] = f.w;
#pragma unroll
      for (int j = 0; j < kHc; ++j) {
        const float4 g = *reinterpret_cast<const float4*>(R + j * p.D + c);
        r[j][0] = g.x, r[j][1] = g.y, r[j][2] = g.z, r[j][3] = g.w;
      }
    } else {
      av[0] = a[c];
#pragma unroll
      for (int j = 0; j < kHc; ++j) r[j][0] = R[j * p.D + c];
    }
#pragma unroll
    for (int k = 0; k < kHc; ++k) {
      float o[kVec];
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        float s = __fmul_rn(post[k], av[e]);
#pragma unroll
        for (int j = 0; j < kHc; ++j) s = __fadd_rn(s, __fmul_rn(C[j * kHc + k], r[j][e]));
        o[e] = p.round_bf16 ? __bfloat162float(__float2bfloat16_rn(s)) : s;
      }
      if constexpr (kVec == 4) {
        *reinterpret_cast<float4*>(out + k * p.D + c) = make_float4(o[0], o[1], o[2], o[3]);
      } else {
        out[k * p.D + c] = o[0];
      }
    }
  }
}

}  // namespace dsv4::cuda
