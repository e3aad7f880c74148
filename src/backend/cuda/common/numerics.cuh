// Device-side exact format helpers shared by the kernels: the ue8m0 scale rounding of spec §2.3 (bit trick on
// the f32 pattern, identical to core/dtype.h ue8m0_ceil), e8m0 decoding, e2m1 decoding and encoding (spec §7.2), and OCP e4m3
// encoding (RNE, saturating to ±448, as core f32_to_e4m3). Checked bit for bit against core/ by the act_quant
// op test. Device code only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace dsv4::cuda {

// s = 2^ceil(log2(t)) on the bit pattern of t (t > 0 finite): exponent - 127, +1 when any mantissa bit is set.
__device__ __forceinline__ float ue8m0_ceil(float t) {
  const uint32_t b = __float_as_uint(t);
  int e = static_cast<int>((b >> 23) & 0xFFu) - 127;
  if ((b & 0x7FFFFFu) != 0) e += 1;
  return __uint_as_float(static_cast<uint32_t>(e + 127) << 23);
}

// e8m0 byte -> f32: 2^(byte-127); 0 is the subnormal 2^-127; 0xFF is NaN.
__device__ __forceinline__ float e8m0_to_f32(uint8_t b) {
  if (b == 0xFF) return __uint_as_float(0x7FC00000u);
  if (b == 0) return __uint_as_float(0x00400000u);
  return __uint_as_float(static_cast<uint32_t>(b) << 23);
}

// e2m1 code (bits 3..0; higher bits ignored) -> f32: grid {0, 0.5, 1, 1.5, 2, 3, 4, 6}, exponent field e = bits 2..1,
// mantissa bit 0 (e == 0: subnormal 0.5·m), sign bit 3.
__device__ __forceinline__ float e2m1_to_f32(uint32_t code) {
  const uint32_t e = (code >> 1) & 3u, m = code & 1u;
  const float v = e == 0 ? 0.5f * static_cast<float>(m)
                         : (1.0f + 0.5f * static_cast<float>(m)) * static_cast<float>(1u << (e - 1));
  return (code & 8u) ? -v : v;
}

// f32 -> e2m1 code: the grid value nearest to |x| (RNE, ties to the even code), x's sign in bit 3; NaN -> ±0
// (core f32_to_e2m1).
__device__ __forceinline__ uint32_t f32_to_e2m1(float x) {
  const float a = fabsf(x);
  const float mid[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  uint32_t idx = 0;
#pragma unroll
  for (int k = 0; k < 7; ++k)
    if (a > mid[k] || (a == mid[k] && (k & 1))) idx = k + 1;
  return idx | (signbit(x) ? 8u : 0u);
}

// f32 -> e4m3 (fn) byte, RNE, |x| >= 448 saturates to ±448.
__device__ __forceinline__ uint8_t f32_to_e4m3(float x) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
}

// e4m3 byte -> f32 (exact).
__device__ __forceinline__ float e4m3_to_f32(uint8_t b) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E4M3);
  return __half2float(__half(h));
}

// Four activations through the read-only path, rounded to bf16 (RNE) when `round` (the GEMVs' round_x).
__device__ __forceinline__ float4 ldg_x4(const float4* p, bool round) {
  float4 v = __ldg(p);
  if (round) {
    v.x = __bfloat162float(__float2bfloat16_rn(v.x));
    v.y = __bfloat162float(__float2bfloat16_rn(v.y));
    v.z = __bfloat162float(__float2bfloat16_rn(v.z));
    v.w = __bfloat162float(__float2bfloat16_rn(v.w));
  }
  return v;
}

// The clamped SwiGLU of spec §6.2 as CpuOps::expert_ffn computes it: silu(min(g, L)) · clamp(u, ±L) (limit <= 0:
// no clamp; std::clamp / std::min semantics, so NaN passes through). The caller applies the routing weight and the
// bf16 rounding.
__device__ __forceinline__ void swiglu_clamp(float& g, float& u, float limit) {
  if (limit > 0.0f) {
    u = u < -limit ? -limit : (limit < u ? limit : u);
    g = limit < g ? limit : g;
  }
}
__device__ __forceinline__ float clamped_swiglu(float g, float u, float limit) {
  swiglu_clamp(g, u, limit);
  return g / (1.0f + expf(-g)) * u;
}
// The same with the MUFU exponential and division (__expf, __fdividef: a few f32 ulp from expf and the IEEE
// quotient, below a bf16 rounding that follows; no slow-path branch, so unrolled elements interleave).
__device__ __forceinline__ float clamped_swiglu_fast(float g, float u, float limit) {
  swiglu_clamp(g, u, limit);
  return __fdividef(g, 1.0f + __expf(-g)) * u;
}

// ss + v.x² + v.y² + v.z² + v.w² in f64, in that order (the RMSNorm kernels' per-thread sum of squares).
__device__ __forceinline__ double fma_sq4(float4 v, double ss) {
  ss = fma(static_cast<double>(v.x), static_cast<double>(v.x), ss);
  ss = fma(static_cast<double>(v.y), static_cast<double>(v.y), ss);
  ss = fma(static_cast<double>(v.z), static_cast<double>(v.z), ss);
  return fma(static_cast<double>(v.w), static_cast<double>(v.w), ss);
}

}  // namespace dsv4::cuda
