// rms_norm_kernel: one CTA per row, 16-byte loads and stores, the row held in registers between the f32 sum
// of squares (warp shuffles, then one shared-memory step across warps) and the write. Memory bound: a row is
// read once and written once. Numerics follow the CPU reference: inv = 1 / sqrt(mean + eps) in IEEE f32,
// y = bf16((x * inv) * w), rounded once; only the order of the sum of squares differs.
#pragma once
#include <cuda_bf16.h>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/elementwise/params.h"

namespace dsv4::cuda {

template <int kThreads, int kChunks>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(const __grid_constant__ RmsNormParams p) {
  grid_dependency_sync();
  const int64_t row = blockIdx.x;
  const int n_chunks = p.dim / 8;
  const uint4* xr = reinterpret_cast<const uint4*>(p.x + row * p.dim);
  uint4 v[kChunks];
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = threadIdx.x + i * kThreads;
    v[i] = c < n_chunks ? xr[c] : make_uint4(0, 0, 0, 0);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v[i]);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(h[j]);
      ss = fmaf(f.x, f.x, ss);
      ss = fmaf(f.y, f.y, ss);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  __shared__ float warp_ss[kThreads / 32];
  if ((threadIdx.x & 31) == 0) warp_ss[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total += warp_ss[w];
  const float inv = 1.0f / sqrtf(total / static_cast<float>(p.dim) + p.eps);

  uint4* yr = reinterpret_cast<uint4*>(p.y + row * p.dim);
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = threadIdx.x + i * kThreads;
    if (c >= n_chunks) continue;
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v[i]);
    float w[8];
    if (p.weight) {
      const float4 w0 = reinterpret_cast<const float4*>(p.weight)[2 * c];
      const float4 w1 = reinterpret_cast<const float4*>(p.weight)[2 * c + 1];
      w[0] = w0.x, w[1] = w0.y, w[2] = w0.z, w[3] = w0.w, w[4] = w1.x, w[5] = w1.y, w[6] = w1.z, w[7] = w1.w;
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) w[j] = 1.0f;
    }
    uint4 out;
    __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(&out);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(h[j]);
      o[j] = __floats2bfloat162_rn((f.x * inv) * w[2 * j], (f.y * inv) * w[2 * j + 1]);
    }
    yr[c] = out;
  }
}

}  // namespace dsv4::cuda
