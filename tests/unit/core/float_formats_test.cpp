// Hand-worked checks of the float formats of dtype.h: bf16 (RNE, ties, NaN), f16 decode, FP8 E4M3 fn
// (table, subnormals, RNE ties, saturation, NaN), E8M0, FP4 E2M1 (all 16 codes, ties to even code) and the
// ue8m0 bit-trick rounding of spec §2.3 step 2. Every expected value is derived in the comment next to it.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/check.h"
#include "core/dtype.h"

namespace dsv4 {
namespace {

uint32_t bits(float x) { return std::bit_cast<uint32_t>(x); }
float from_bits(uint32_t b) { return std::bit_cast<float>(b); }
float p2(int e) { return std::ldexp(1.0f, e); }
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---------------- bf16 ----------------

TEST(Bf16, DecodeIsUpperHalfOfF32) {
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);   // f32 1.0 = 0x3F800000
  EXPECT_EQ(bf16_to_f32(0xC040), -3.0f);  // f32 -3.0 = 0xC0400000
  EXPECT_EQ(bf16_to_f32(0x0001), p2(-133));  // smallest subnormal: 2^-126 * 2^-7
  EXPECT_EQ(bf16_to_f32(0x7F80), kInf);
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7FC0)));
}

TEST(Bf16, EncodeRoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(-1.5f), 0xBFC0);
  // 1 + 2^-8 is exactly half-way between 1.0 (0x3F80) and 1 + 2^-7 (0x3F81): tie -> even mantissa 0x3F80.
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808000)), 0x3F80);
  // 1 + 3*2^-8 is half-way between 0x3F81 and 0x3F82: tie -> even 0x3F82.
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F818000)), 0x3F82);
  // One f32 ulp above the tie rounds up; one below rounds down.
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808001)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F817FFF)), 0x3F81);
  // Carry out of the mantissa bumps the exponent: 0x3FFFFFFF (just below 2) -> 2.0 = 0x4000.
  EXPECT_EQ(f32_to_bf16(from_bits(0x3FFFFFFF)), 0x4000);
  // f32 max (0x7F7FFFFF) is above the bf16 max 0x7F7F by more than half an ulp -> +inf (as torch does).
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-kInf), 0xFF80);
  EXPECT_EQ(round_bf16(3.14159265f), 3.140625f);  // pi = 1.5707963*2; 0.5707963*128 = 73.06 -> 73/128
}

TEST(Bf16, NanStaysNan) {
  // A signaling NaN whose payload lives only in the low 16 bits: plain rounding would truncate it to +inf.
  const uint16_t h = f32_to_bf16(from_bits(0x7F800001));
  EXPECT_EQ(h & 0x7F80, 0x7F80);
  EXPECT_NE(h & 0x007F, 0);
  EXPECT_TRUE(std::isnan(bf16_to_f32(h)));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(kNaN))));
  EXPECT_TRUE(std::isnan(round_bf16(-kNaN)));
}

// ---------------- f16 ----------------

TEST(F16, Decode) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);       // exp 15 (bias 15), mantissa 0
  EXPECT_EQ(f16_to_f32(0xC200), -3.0f);      // exp 16, mantissa 0x200 = 0.5 -> -1.5 * 2
  EXPECT_EQ(f16_to_f32(0x3800), 0.5f);
  EXPECT_EQ(f16_to_f32(0x0001), p2(-24));    // smallest subnormal: 2^-14 * 2^-10
  EXPECT_EQ(f16_to_f32(0x03FF), 1023.0f * p2(-24));
  EXPECT_EQ(f16_to_f32(0x0400), p2(-14));    // smallest normal
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);   // max: (2 - 2^-10) * 2^15
  EXPECT_EQ(f16_to_f32(0x7C00), kInf);
  EXPECT_EQ(f16_to_f32(0xFC00), -kInf);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_EQ(bits(f16_to_f32(0x8000)), 0x80000000u);  // -0
}

// ---------------- FP8 E4M3 (fn) ----------------

TEST(E4m3, DecodeSpotChecks) {
  EXPECT_EQ(e4m3_to_f32(0x00), 0.0f);
  EXPECT_EQ(bits(e4m3_to_f32(0x80)), 0x80000000u);  // -0
  EXPECT_EQ(e4m3_to_f32(0x01), p2(-9));              // subnormal: 1/8 * 2^-6
  EXPECT_EQ(e4m3_to_f32(0x07), 7.0f * p2(-9));       // largest subnormal 0.013671875
  EXPECT_EQ(e4m3_to_f32(0x08), p2(-6));              // smallest normal 0.015625
  EXPECT_EQ(e4m3_to_f32(0x09), 1.125f * p2(-6));
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);                // exp field 7 = bias
  EXPECT_EQ(e4m3_to_f32(0x3F), 1.875f);
  EXPECT_EQ(e4m3_to_f32(0x40), 2.0f);
  EXPECT_EQ(e4m3_to_f32(0x78), 256.0f);              // exp field 15, mantissa 0: 2^8
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);              // 1.75 * 2^8, the max
  EXPECT_EQ(e4m3_to_f32(0xB8), -1.0f);
  EXPECT_EQ(e4m3_to_f32(0xFE), -448.0f);
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0xFF)));
}

// Every code against the OCP formula written independently: s eeee mmm, bias 7,
// e == 0: (m/8) * 2^-6, else (1 + m/8) * 2^(e-7); 0x7F/0xFF NaN. Then encode(decode(c)) == c.
TEST(E4m3, FullTableAndRoundTrip) {
  for (int c = 0; c < 256; ++c) {
    const int s = c >> 7, e = (c >> 3) & 0xF, m = c & 7;
    const float v = e4m3_to_f32(static_cast<uint8_t>(c));
    if (e == 15 && m == 7) {
      EXPECT_TRUE(std::isnan(v)) << c;
      continue;
    }
    const double mag = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
    EXPECT_EQ(static_cast<double>(v), s ? -mag : mag) << "code " << c;
    EXPECT_EQ(f32_to_e4m3(v), c) << "code " << c;
  }
}

TEST(E4m3, EncodeRoundsToNearestEven) {
  // In [1,2) the step is 1/8. 1.0625 is half-way between 1.0 (0x38, m=0) and 1.125 (0x39, m=1): even -> 0x38.
  EXPECT_EQ(f32_to_e4m3(1.0625f), 0x38);
  EXPECT_EQ(f32_to_e4m3(std::nextafter(1.0625f, 2.0f)), 0x39);
  // 1.1875 is half-way between 1.125 (0x39) and 1.25 (0x3A): even -> 0x3A.
  EXPECT_EQ(f32_to_e4m3(1.1875f), 0x3A);
  EXPECT_EQ(f32_to_e4m3(std::nextafter(1.1875f, 0.0f)), 0x39);
  // 1.9375 is half-way between 1.875 (0x3F, m=7) and 2.0 (0x40, m=0): even -> 0x40 (carry into the exponent).
  EXPECT_EQ(f32_to_e4m3(1.9375f), 0x40);
  // In [256, 448] the step is 32: 400 is half-way between 384 (0x7C, m=4) and 416 (0x7D, m=5) -> 0x7C.
  EXPECT_EQ(f32_to_e4m3(400.0f), 0x7C);
  // 250 lies between 240 (0x77 = 1.875*128) and 256 (0x78); the midpoint is 248 -> 0x78.
  EXPECT_EQ(f32_to_e4m3(250.0f), 0x78);
  EXPECT_EQ(f32_to_e4m3(-1.0625f), 0xB8);
}

TEST(E4m3, EncodeSubnormalsAndTies) {
  // Subnormal step 2^-9. 2^-10 is half-way between 0 and 0x01: even -> 0x00.
  EXPECT_EQ(f32_to_e4m3(p2(-10)), 0x00);
  EXPECT_EQ(f32_to_e4m3(std::nextafter(p2(-10), 1.0f)), 0x01);
  // 1.5 * 2^-9 is half-way between 0x01 and 0x02: even -> 0x02.
  EXPECT_EQ(f32_to_e4m3(1.5f * p2(-9)), 0x02);
  // 2.5 * 2^-9 between 0x02 and 0x03: even -> 0x02.
  EXPECT_EQ(f32_to_e4m3(2.5f * p2(-9)), 0x02);
  // 7.5 * 2^-9 between 0x07 (largest subnormal) and 0x08 (2^-6): even -> 0x08.
  EXPECT_EQ(f32_to_e4m3(7.5f * p2(-9)), 0x08);
  EXPECT_EQ(f32_to_e4m3(-3.0f * p2(-9)), 0x83);
  EXPECT_EQ(f32_to_e4m3(1e-10f), 0x00);
  EXPECT_EQ(f32_to_e4m3(-1e-10f), 0x80);
  EXPECT_EQ(f32_to_e4m3(p2(-140)), 0x00);  // f32 subnormal input
  EXPECT_EQ(f32_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
}

TEST(E4m3, SaturatesAndNan) {
  EXPECT_EQ(f32_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(460.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(464.0f), 0x7E);  // the tie with the (NaN) code 0x7F must not produce NaN
  EXPECT_EQ(f32_to_e4m3(1000.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-500.0f), 0xFE);
  EXPECT_EQ(f32_to_e4m3(kInf), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-kInf), 0xFE);
  EXPECT_EQ(f32_to_e4m3(kNaN), 0x7F);
}

// ---------------- E8M0 ----------------

TEST(E8m0, Table) {
  EXPECT_EQ(e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_to_f32(128), 2.0f);
  EXPECT_EQ(e8m0_to_f32(126), 0.5f);
  EXPECT_EQ(e8m0_to_f32(120), p2(-7));
  EXPECT_EQ(e8m0_to_f32(1), p2(-126));
  EXPECT_EQ(e8m0_to_f32(0), p2(-127));  // an f32 subnormal
  EXPECT_EQ(e8m0_to_f32(254), p2(127));
  EXPECT_TRUE(std::isnan(e8m0_to_f32(0xFF)));
  for (int b = 0; b < 255; ++b) EXPECT_EQ(e8m0_to_f32(static_cast<uint8_t>(b)), std::ldexp(1.0f, b - 127)) << b;
}

TEST(E8m0, FromPow2) {
  EXPECT_EQ(e8m0_from_pow2(1.0f), 127);
  EXPECT_EQ(e8m0_from_pow2(0.5f), 126);
  EXPECT_EQ(e8m0_from_pow2(0.25f), 125);
  EXPECT_EQ(e8m0_from_pow2(p2(-22)), 105);
  EXPECT_EQ(e8m0_from_pow2(p2(-126)), 1);
  EXPECT_EQ(e8m0_from_pow2(p2(-127)), 0);
  EXPECT_EQ(e8m0_from_pow2(p2(127)), 254);
  EXPECT_THROW(e8m0_from_pow2(3.0f), InvariantError);
  EXPECT_THROW(e8m0_from_pow2(-2.0f), InvariantError);
  EXPECT_THROW(e8m0_from_pow2(0.0f), InvariantError);
}

// ---------------- FP4 E2M1 ----------------

TEST(E2m1, AllSixteenCodes) {
  const float expect[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                            -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  for (int c = 0; c < 16; ++c) {
    EXPECT_EQ(e2m1_to_f32(static_cast<uint8_t>(c)), expect[c]) << c;
    EXPECT_EQ(f32_to_e2m1(expect[c]), c) << c;  // exact grid values round-trip (incl. -0 -> code 8)
  }
  EXPECT_TRUE(std::signbit(e2m1_to_f32(8)));
  EXPECT_EQ(e2m1_to_f32(8), 0.0f);  // -0 == 0
}

TEST(E2m1, TiesGoToEvenCode) {
  // Midpoints of the grid {0,.5,1,1.5,2,3,4,6} (code in parentheses); the even code wins.
  EXPECT_EQ(f32_to_e2m1(0.25f), 0);  // 0 (0) vs 0.5 (1)
  EXPECT_EQ(f32_to_e2m1(0.75f), 2);  // 0.5 (1) vs 1 (2)
  EXPECT_EQ(f32_to_e2m1(1.25f), 2);  // 1 (2) vs 1.5 (3)
  EXPECT_EQ(f32_to_e2m1(1.75f), 4);  // 1.5 (3) vs 2 (4)
  EXPECT_EQ(f32_to_e2m1(2.5f), 4);   // 2 (4) vs 3 (5)
  EXPECT_EQ(f32_to_e2m1(3.5f), 6);   // 3 (5) vs 4 (6)
  EXPECT_EQ(f32_to_e2m1(5.0f), 6);   // 4 (6) vs 6 (7)
  EXPECT_EQ(f32_to_e2m1(-0.75f), 0xA);
  EXPECT_EQ(f32_to_e2m1(-5.0f), 0xE);
  EXPECT_EQ(f32_to_e2m1(-0.25f), 0x8);  // -0
}

TEST(E2m1, NearestAndSaturation) {
  EXPECT_EQ(f32_to_e2m1(0.1f), 0);
  EXPECT_EQ(f32_to_e2m1(0.26f), 1);
  EXPECT_EQ(f32_to_e2m1(0.74f), 1);
  EXPECT_EQ(f32_to_e2m1(2.6f), 5);
  EXPECT_EQ(f32_to_e2m1(4.9f), 6);
  EXPECT_EQ(f32_to_e2m1(5.01f), 7);
  EXPECT_EQ(f32_to_e2m1(7.0f), 7);
  EXPECT_EQ(f32_to_e2m1(100.0f), 7);
  EXPECT_EQ(f32_to_e2m1(kInf), 7);
  EXPECT_EQ(f32_to_e2m1(-kInf), 0xF);
}

// ---------------- ue8m0 rounding ----------------

TEST(Ue8m0, ExactPowersOfTwoStay) {
  EXPECT_EQ(ue8m0_ceil(1.0f), 1.0f);
  EXPECT_EQ(ue8m0_ceil(p2(-10)), p2(-10));
  EXPECT_EQ(ue8m0_ceil(p2(100)), p2(100));
  EXPECT_EQ(ue8m0_ceil(p2(-126)), p2(-126));
}

TEST(Ue8m0, NonPowersRoundUp) {
  EXPECT_EQ(ue8m0_ceil(1.0000001f), 2.0f);  // = 1 + 2^-23 in f32: mantissa non-zero -> exponent + 1
  EXPECT_EQ(ue8m0_ceil(0.75f), 1.0f);
  EXPECT_EQ(ue8m0_ceil(3.0f), 4.0f);
  EXPECT_EQ(ue8m0_ceil(std::nextafter(2.0f, 0.0f)), 2.0f);
  EXPECT_EQ(ue8m0_ceil(448.0f), 512.0f);  // 1.75 * 2^8
  EXPECT_EQ(ue8m0_ceil(1.5f * p2(-126)), p2(-125));
  EXPECT_EQ(ue8m0_ceil(-3.0f), 4.0f);     // the exponent-field extraction ignores the sign
}

// The scale the reference computes for amax = 448 * 2^k: fl32(1/448) = 9586981 * 2^-32 (2^32/448 =
// 9586980.57 rounds up), so 448 * fl32(1/448) = 1 + 192 * 2^-32 = 1 + 4.5e-8, below half an ulp of 1
// (2^-24 = 6e-8): the f32 product is exactly 1.0 and the scale stays 2^k. 449 gives 1.0022 -> 2^(k+1).
TEST(Ue8m0, AmaxAt448TimesPowerOfTwo) {
  const float inv448 = static_cast<float>(1.0 / 448.0);
  EXPECT_EQ(bits(inv448), 0x3B124925u);  // exponent -9 (biased 118), mantissa 9586981 - 2^23 = 0x124925
  for (int k = -20; k <= 20; ++k) {
    EXPECT_EQ(ue8m0_ceil(448.0f * p2(k) * inv448), p2(k)) << k;
    EXPECT_EQ(ue8m0_ceil(449.0f * p2(k) * inv448), p2(k + 1)) << k;
  }
}

// Subnormal t: the bit trick sees biased exponent 0 and a non-zero mantissa, so e = 0 - 127 + 1 = -126 and the
// result is 2^-126 for every subnormal, not the mathematical ceiling (2^-130 stays 2^-130 mathematically).
TEST(Ue8m0, SubnormalFollowsTheBitTrick) {
  EXPECT_EQ(ue8m0_ceil(p2(-127)), p2(-126));
  EXPECT_EQ(ue8m0_ceil(p2(-130)), p2(-126));
  EXPECT_EQ(ue8m0_ceil(p2(-149)), p2(-126));
  EXPECT_EQ(ue8m0_ceil(0.0f), 0.0f);                    // field 0, mantissa 0: bits (-127+127)<<23 = 0
  EXPECT_EQ(ue8m0_ceil(1.5f * p2(127)), kInf);          // e = 128 -> exponent field 255
  EXPECT_TRUE(std::isnan(ue8m0_ceil(kNaN)));
}

}  // namespace
}  // namespace dsv4
