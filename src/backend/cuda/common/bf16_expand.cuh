// Exact expansion of FP4 (e2m1) and FP8 (e4m3) codes with an e8m0 scale to bf16, shared by the kernels that turn
// block-scaled storage into bf16 tensor-core operands (MoE expert weights, the indexer's Mxfp4 key rows).
// Codes are placed in bf16 bit fields without their exponent bias: an e2m1 nibble s|e|m as s<<15 | e<<7 | m<<6
// reads as code·2^-126 (also for e = 0: a bf16 subnormal), an e4m3 byte s|e|m as s<<15 | e<<7 | m<<4 as
// code·2^-120. Multiplying by 2^bias·2^(x-127) (x the e8m0 byte; 2^-127 for x = 0, NaN for 255, as e8m0_to_f32)
// gives code·scale exactly, as the f32 product rounded to bf16 does (mul.rn.bf16x2 keeps subnormals). f1·f2 is
// that factor: one bf16 power of two when it is a bf16 normal, else 2^bias and the scale.
#pragma once
#include <cstdint>

namespace dsv4::cuda {

inline constexpr uint32_t kBf16x2One = 0x3F803F80u;  // f2 when one factor suffices

__device__ __forceinline__ uint32_t bf16x2_mul(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("mul.rn.bf16x2 %0, %1, %2;\n" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

// The factors for e8m0 byte x and code bias (126: e2m1, 120: e4m3), both halves of each word.
__device__ __forceinline__ void e8m0_factors(uint32_t x, uint32_t bias, uint32_t& f1, uint32_t& f2) {
  uint32_t a, b;
  if (x + bias <= 254) {
    a = (x + bias) << 7;
    b = 0x3F80u;  // 1.0
  } else {
    a = (bias + 127) << 7;
    b = x == 255 ? 0x7FC0u : x << 7;
  }
  f1 = a | (a << 16);
  f2 = b | (b << 16);
}

// kTwo: both factors (else f2 == 1). 8 e2m1 nibbles (element 2j in the low nibble of byte j) -> 8 bf16.
template <bool kTwo>
__device__ __forceinline__ uint4 fp4x8_to_bf16(uint32_t w, uint32_t f1, uint32_t f2) {
  const uint32_t hi = w >> 4;
  uint32_t o[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    // halves: low nibble = element 2j (byte j of w), element 2j + 1 (byte j of w >> 4)
    const uint32_t x = __byte_perm(w, hi, j | (j << 4) | ((4 + j) << 8) | ((4 + j) << 12));
    const uint32_t r = ((x << 6) & 0x01C001C0u) | ((x << 12) & 0x80008000u);
    o[j] = kTwo ? bf16x2_mul(bf16x2_mul(r, f1), f2) : bf16x2_mul(r, f1);
  }
  return make_uint4(o[0], o[1], o[2], o[3]);
}

// 2 e4m3 codes, in bytes 1 and 3 of x (bytes 0 and 2 are ignored) -> 2 bf16 (byte 1 in the low half).
template <bool kTwo>
__device__ __forceinline__ uint32_t fp8x2_to_bf16(uint32_t x, uint32_t f1, uint32_t f2) {
  const uint32_t r = (x & 0x80008000u) | ((x >> 4) & 0x07F007F0u);
  return kTwo ? bf16x2_mul(bf16x2_mul(r, f1), f2) : bf16x2_mul(r, f1);
}

// 8 e4m3 bytes -> 8 bf16.
template <bool kTwo>
__device__ __forceinline__ uint4 fp8x8_to_bf16(uint32_t w0, uint32_t w1, uint32_t f1, uint32_t f2) {
  uint32_t o[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int b = 2 * (j & 1);
    // halves: byte << 8 of elements 2j, 2j + 1
    const uint32_t x = __byte_perm(j < 2 ? w0 : w1, 0u, 4 | (b << 4) | (4 << 8) | ((b + 1) << 12));
    o[j] = fp8x2_to_bf16<kTwo>(x, f1, f2);
  }
  return make_uint4(o[0], o[1], o[2], o[3]);
}

}  // namespace dsv4::cuda
