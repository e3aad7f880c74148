// Device-side exact format helpers shared by the kernels: the ue8m0 scale rounding of spec §2.3 (bit trick on
// the f32 pattern, identical to core/dtype.h ue8m0_ceil), e8m0 and e2m1 decoding (spec §7.2), and OCP e4m3
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

// f32 -> e4m3 (fn) byte, RNE, |x| >= 448 saturates to ±448.
__device__ __forceinline__ uint8_t f32_to_e4m3(float x) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
}

// e4m3 byte -> f32 (exact).
__device__ __forceinline__ float e4m3_to_f32(uint8_t b) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E4M3);
  return __half2float(__half(h));
}

// ss + v.x² + v.y² + v.z² + v.w² in f64, in that order (the RMSNorm kernels' per-thread sum of squares).
__device__ __forceinline__ double fma_sq4(float4 v, double ss) {
  ss = fma(static_cast<double>(v.x), static_cast<double>(v.x), ss);
  ss = fma(static_cast<double>(v.y), static_cast<double>(v.y), ss);
  ss = fma(static_cast<double>(v.z), static_cast<double>(v.z), ss);
  return fma(static_cast<double>(v.w), static_cast<double>(v.w), ss);
}

}  // namespace dsv4::cuda
