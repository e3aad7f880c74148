// act_quant_kernel: one warp per 1x128 block; each lane loads 4 bf16 (8 bytes), the block's amax is reduced with
// warp shuffles, and the scale is rounded with the ue8m0 bit trick. Bit-exact with core fp8_act_quant (checked
// by the op test): same f32 product with fl32(1/448), IEEE division by the power-of-two scale, RNE e4m3.
#pragma once
#include <cuda_bf16.h>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/gemm/params.h"

namespace dsv4::cuda {

inline constexpr int kActQuantWarps = 8;

__global__ void __launch_bounds__(kActQuantWarps * 32) act_quant_kernel(const __grid_constant__ ActQuantParams p) {
  grid_dependency_sync();
  constexpr float kInvE4m3Max = static_cast<float>(1.0 / 448.0);
  const int lane = threadIdx.x & 31;
  const int kb_count = p.K / 128;
  const int64_t block = static_cast<int64_t>(blockIdx.x) * kActQuantWarps + (threadIdx.x >> 5);
  if (block >= p.M * kb_count) return;
  const int64_t m = block / kb_count;
  const int kb = static_cast<int>(block % kb_count);
  const int64_t off = m * p.K + kb * 128 + lane * 4;

  const uint2 raw = *reinterpret_cast<const uint2*>(p.x + off);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
  const float2 f01 = __bfloat1622float2(h[0]);
  const float2 f23 = __bfloat1622float2(h[1]);
  const float v[4] = {f01.x, f01.y, f23.x, f23.y};
  float amax = 0.0f;
  bool bad = false;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    bad |= !isfinite(v[i]);
    amax = fmaxf(amax, fabsf(v[i]));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  bad = __any_sync(0xffffffffu, bad);

  uint32_t codes = 0x7F7F7F7Fu;
  float s = __uint_as_float(0x7FC00000u);
  if (!bad) {
    s = ue8m0_ceil(__fmul_rn(fmaxf(amax, 1e-4f), kInvE4m3Max));
    codes = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float c = fminf(fmaxf(__fdiv_rn(v[i], s), -448.0f), 448.0f);
      codes |= static_cast<uint32_t>(f32_to_e4m3(c)) << (8 * i);
    }
  }
  *reinterpret_cast<uint32_t*>(p.q + off) = codes;
  if (lane == 0) {
    p.scale[m * p.scale_stride_m + kb * p.scale_stride_kb] = s;
    if (p.scale_e8m0) p.scale_e8m0[m * kb_count + kb] = bad ? 0xFF : static_cast<uint8_t>(__float_as_uint(s) >> 23);
  }
}

__global__ void e8m0_to_f32_kernel(const __grid_constant__ E8m0ToF32Params p) {
  grid_dependency_sync();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(p.rows) * p.ld) return;
  const int r = static_cast<int>(i / p.ld);
  const int c = static_cast<int>(i % p.ld);
  p.out[i] = c < p.cols ? e8m0_to_f32(p.in[static_cast<int64_t>(r) * p.cols + c]) : 0.0f;
}

}  // namespace dsv4::cuda
