// fp8_gemv_kernel: decode FP8 GEMV with an f32 input that is NOT act-quantized (CpuOps::grouped_linear, wo_a;
// params.h Fp8GemvParams). y[m, n] = Σ_k x[m, g(n)·x_group_stride + k] · w[n, k]·s, f32 FMAs.
//
// Work split: a CTA of 256 threads owns kFp8GemvRows (8) consecutive weight rows of one group (and of one 128-row
// scale block) and the whole K: thread t the 16 K-elements [16t, 16t+16) of every row. All 8 rows' 16-byte weight
// loads are issued first (128 bytes in flight per thread, 32 KB per CTA), then the thread's x slice (kTok tokens x
// 16 f32, L2/L1 hits) and its block scale. Per row: e4m3 pairs -> f16x2 (exact) -> f32, 16 FMAs per token in k
// order, the partial times the block scale (w·s exact for the e8m0 power-of-two scales). Reduction in a fixed order
// (bitwise deterministic): partials -> shared [8·kTok, 256] -> one warp per output sums its 256 partials (8 per lane
// in order, then a xor tree), bf16 rounding if asked.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/gemm/fp8_gemm_limits.h"
#include "backend/cuda/gemm/params.h"

namespace dsv4::cuda {

// 4 e4m3 codes (one 32-bit word) -> 4 exact f32 values.
__device__ __forceinline__ void e4m3x4_to_f32(uint32_t w, float* out) {
  const __half2_raw lo = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w & 0xFFFFu), __NV_E4M3);
  const __half2_raw hi = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(w >> 16), __NV_E4M3);
  const float2 a = __half22float2(__half2(lo));
  const float2 b = __half22float2(__half2(hi));
  out[0] = a.x;
  out[1] = a.y;
  out[2] = b.x;
  out[3] = b.y;
}

template <int kTok>
__global__ void __launch_bounds__(kFp8GemvThreads) fp8_gemv_kernel(const __grid_constant__ Fp8GemvParams p) {
  constexpr int kR = kFp8GemvRows;
  __shared__ float red[kR * kTok][kFp8GemvThreads];
  const int tid = threadIdx.x;
  const int n0 = blockIdx.x * kR;
  const int grp = n0 / p.rows_per_group;
  const int m0 = blockIdx.y * kTok;
  const int ntok = min(kTok, p.M - m0);
  const bool act = tid * 16 < p.K;
  const int k = tid * 16;

  uint4 wv[kR];
  if (act) {
    const uint8_t* wp = p.w + static_cast<int64_t>(n0) * p.K + k;
#pragma unroll
    for (int r = 0; r < kR; ++r) wv[r] = __ldg(reinterpret_cast<const uint4*>(wp + static_cast<int64_t>(r) * p.K));
  }
  grid_dependency_sync();  // after the weight loads (common/pdl.cuh): nothing above touches kernel outputs
  float acc[kR][kTok];
#pragma unroll
  for (int r = 0; r < kR; ++r)
#pragma unroll
    for (int j = 0; j < kTok; ++j) acc[r][j] = 0.0f;
  if (act) {
    const float s = __ldg(p.w_scale + static_cast<int64_t>(n0 / 128) * p.w_scale_ld + k / 128);
    float xv[kTok][16];
#pragma unroll
    for (int j = 0; j < kTok; ++j) {
      if (j < ntok) {
        const float4* xr = reinterpret_cast<const float4*>(p.x + static_cast<int64_t>(m0 + j) * p.x_ld +
                                                           static_cast<int64_t>(grp) * p.x_group_stride + k);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const float4 f = ldg_x4(xr + q, p.round_x);
          xv[j][4 * q] = f.x;
          xv[j][4 * q + 1] = f.y;
          xv[j][4 * q + 2] = f.z;
          xv[j][4 * q + 3] = f.w;
        }
      } else {
#pragma unroll
        for (int i = 0; i < 16; ++i) xv[j][i] = 0.0f;
      }
    }
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      float wf[16];
      e4m3x4_to_f32(wv[r].x, wf);
      e4m3x4_to_f32(wv[r].y, wf + 4);
      e4m3x4_to_f32(wv[r].z, wf + 8);
      e4m3x4_to_f32(wv[r].w, wf + 12);
#pragma unroll
      for (int j = 0; j < kTok; ++j) {
        float a = 0.0f;
#pragma unroll
        for (int i = 0; i < 16; ++i) a = fmaf(xv[j][i], wf[i], a);
        acc[r][j] = a * s;
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kR; ++r)
#pragma unroll
    for (int j = 0; j < kTok; ++j) red[r * kTok + j][tid] = acc[r][j];
  __syncthreads();
  const int lane = tid & 31;
  for (int o = tid >> 5; o < kR * kTok; o += kFp8GemvThreads / 32) {
    const int r = o / kTok, j = o - r * kTok;
    float v = 0.0f;
#pragma unroll
    for (int i = 0; i < kFp8GemvThreads / 32; ++i) v += red[o][lane + 32 * i];
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    if (lane == 0 && j < ntok && n0 + r < p.N)
      p.y[static_cast<int64_t>(m0 + j) * p.y_ld + n0 + r] = p.round_bf16 ? __bfloat162float(__float2bfloat16_rn(v)) : v;
  }
}

}  // namespace dsv4::cuda
