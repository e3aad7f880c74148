// Bit-exact encode/decode of the float formats declared in dtype.h: bf16, f16 (decode only), OCP FP8 E4M3
// (fn variant), E8M0 scales, FP4 E2M1, and the ue8m0 power-of-two rounding of the DeepSeek-V4 reference.
// Invariants: decoders are exact (every format value is an f32); encoders round to nearest, ties to even.
// Everything works on bit patterns, so the results do not depend on the FPU rounding mode or on fast-math.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/check.h"
#include "core/dtype.h"

namespace dsv4 {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr uint32_t kSignBit = 0x80000000u;
constexpr uint32_t kMantMask = 0x007FFFFFu;

uint32_t bits_of(float x) { return std::bit_cast<uint32_t>(x); }
float from_bits(uint32_t b) { return std::bit_cast<float>(b); }

// Rounds the non-negative integer `v` right by `shift` bits, to nearest, ties to even.
uint32_t shift_rne(uint32_t v, int shift) {
  if (shift <= 0) return v << -shift;
  if (shift >= 32) return 0;
  const uint32_t q = v >> shift;
  const uint32_t rem = v & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
}

// The e2m1 magnitudes by 3-bit index, and the midpoints between neighbours.
constexpr float kE2m1Grid[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
constexpr float kE2m1Mid[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};

}  // namespace

// ---- bf16 ----

float bf16_to_f32(uint16_t bits) { return from_bits(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float x) {
  const uint32_t b = bits_of(x);
  if (std::isnan(x)) return static_cast<uint16_t>((b >> 16) | 0x0040u);  // keep sign/payload, force quiet
  // RNE on the 16 dropped bits; a carry out of the mantissa correctly bumps the exponent (and overflows to inf
  // for values above the bf16 max, as torch does).
  const uint32_t rounded = b + 0x7FFFu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

// ---- f16 ----

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return from_bits(sign | 0x7F800000u | (mant << 13));  // inf / NaN (payload kept)
  if (exp == 0) {
    // Subnormal (or zero): mant * 2^-24, exact in f32.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  return from_bits(sign | ((exp + 112u) << 23) | (mant << 13));  // rebias 15 -> 127
}

// ---- FP8 E4M3 (fn): bias 7, subnormals m*2^-9, max 448 = 0x7E, 0x7F/0xFF NaN, no inf ----

float e4m3_to_f32(uint8_t bits) {
  const uint32_t exp = (bits >> 3) & 0xFu;
  const uint32_t mant = bits & 0x7u;
  float v;
  if (exp == 0xF && mant == 0x7) {
    v = kNaN;
  } else if (exp == 0) {
    v = static_cast<float>(mant) * 0x1p-9f;
  } else {
    v = from_bits(((exp + 120u) << 23) | (mant << 20));  // rebias 7 -> 127
  }
  return (bits & 0x80u) ? -v : v;
}

uint8_t f32_to_e4m3(float x) {
  const uint32_t b = bits_of(x);
  const uint8_t sign = (b & kSignBit) ? 0x80 : 0x00;
  if (std::isnan(x)) return 0x7F;
  const float a = std::fabs(x);
  if (a >= 448.0f) return sign | 0x7E;  // saturate (also ±inf)
  const uint32_t ab = b & ~kSignBit;
  const int e = static_cast<int>(ab >> 23) - 127;  // f32 exponent (-127 for zero / f32 subnormals)
  uint32_t code;
  if (e < -6) {
    // e4m3 subnormal range: code = round(a / 2^-9) in units of 2^-9. Use the full significand with its
    // implicit bit; a carry to 8 lands exactly on the smallest normal 0x08.
    if (e < -127 + 1) return sign;  // f32 zero or f32 subnormal (< 2^-126): far below 2^-10, rounds to 0
    const uint32_t sig = (ab & kMantMask) | 0x00800000u;  // value = sig * 2^(e-23)
    // a / 2^-9 = sig * 2^(e-23+9): shift right by (14 - e) bits.
    code = shift_rne(sig, 14 - e);
  } else {
    // Normal: keep 3 mantissa bits, round the 20 dropped bits RNE; the carry propagates into the exponent.
    const uint32_t biased = static_cast<uint32_t>(e + 7);
    const uint32_t full = (biased << 23) | (ab & kMantMask);
    code = shift_rne(full, 20);
    if (code > 0x7E) code = 0x7E;  // unreachable for a < 448 (448 < a < 464 rounds to 448); kept as a guard
  }
  return sign | static_cast<uint8_t>(code);
}

// ---- E8M0 ----

float e8m0_to_f32(uint8_t bits) {
  if (bits == 0xFF) return kNaN;
  if (bits == 0) return 0x1p-127f;  // f32 subnormal, exact
  return from_bits(static_cast<uint32_t>(bits) << 23);
}

// ---- FP4 E2M1 ----

float e2m1_to_f32(uint8_t code) {
  const float v = kE2m1Grid[code & 0x7u];
  return (code & 0x8u) ? -v : v;
}

uint8_t f32_to_e2m1(float x) {
  const uint8_t sign = std::signbit(x) ? 0x8 : 0x0;
  const float a = std::fabs(x);
  // Count the midpoints below a; on an exact midpoint go to the neighbour with the even code (index k+1 is
  // even exactly when k is odd). NaN compares false everywhere and encodes as ±0: e2m1 has no NaN, and the
  // fake-quant callers propagate NaN through the block scale instead.
  uint8_t idx = 0;
  for (uint8_t k = 0; k < 7; ++k) {
    if (a > kE2m1Mid[k] || (a == kE2m1Mid[k] && (k & 1u))) idx = k + 1;
  }
  return sign | idx;
}

// ---- ue8m0 rounding (spec §2.3 step 2) ----
//
// The reference computes fast_pow2(fast_log2_ceil(t)) on the bit pattern:
//   e = ((bits(t) >> 23) & 0xFF) - 127 + (mantissa bits != 0);  s = bits_as_f32((e + 127) << 23).
// For normal t this is exactly 2^ceil(log2 t). For a subnormal t the biased exponent field is 0 and the
// mantissa is non-zero, so e = -126 and s = 2^-126 (the smallest normal), NOT the true ceiling (e.g. t = 2^-130
// gives 2^-126, not 2^-130). We reproduce the bit trick, not the mathematical ceiling. With the reference's
// amax floors (1e-4 for FP8, 6*2^-126 for FP4) t is always normal, so this only matters for direct callers.
// Other edge cases of the same rule: t = 0 gives bits 0 = 0.0f; t >= 2^127 with a non-zero mantissa (and inf)
// gives the exponent field 255 = +inf. The sign of t is ignored (the field extraction masks it). NaN: the
// reference would produce garbage (exponent field 256 overflows into the sign bit: -0.0); we return NaN.
float ue8m0_ceil(float t) {
  if (std::isnan(t)) return kNaN;
  const uint32_t b = bits_of(t);
  int e = static_cast<int>((b >> 23) & 0xFFu) - 127;
  if ((b & kMantMask) != 0) e += 1;
  return from_bits(static_cast<uint32_t>(e + 127) << 23);
}

uint8_t e8m0_from_pow2(float s) {
  if (s == 0x1p-127f) return 0;  // the only subnormal power of two that e8m0 can hold
  const uint32_t b = bits_of(s);
  check((b & kSignBit) == 0 && (b & kMantMask) == 0 && (b >> 23) >= 1 && (b >> 23) <= 254,
        "e8m0_from_pow2: scale is not a power of two in [2^-127, 2^127]");
  return static_cast<uint8_t>(b >> 23);
}

}  // namespace dsv4
