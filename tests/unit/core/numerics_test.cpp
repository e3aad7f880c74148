// Hand-worked checks of the activation numerics of numerics.h (spec §2.3-2.5): FP8 fake-quant and act_quant
// (scales, codes, RNE ties, the 1e-4 amax floor), FP4 fake-quant on blocks of 32 (ties to even code, the
// 6*2^-126 floor), and the Walsh-Hadamard rotation (n = 4 and 8 by hand; Sylvester order, orthonormality and
// involution at n = 128). Derivations are in the comments; the scale rule is s = 2^ceil(log2(amax * fl32(1/M))).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"
#include "core/numerics.h"
#include "core/row_blocks.h"
#include "testlib/compare.h"

namespace dsv4 {
namespace {

float p2(int e) { return std::ldexp(1.0f, e); }

// Four blocks of 4 (block size is a parameter; the math is the same as for 64/128).
//  A: amax 100 -> t = 100/448 = 0.2232 in (2^-3, 2^-2] -> s = 0.25; x/s = {4, -1.25, 400, 12.5625}
//     e4m3: 4, -1.25 exact; 400 ties 384 (m=4) / 416 (m=5) -> 384; 12.5625 in [8,16) step 1 -> 13.
//     x = q*s = {1, -0.3125, 96, 3.25}.
//  B: amax 2^-20 < 1e-4 -> floor: t = 1e-4 * fl32(1/448) = 2.232e-7 in (2^-23, 2^-22] -> s = 2^-22.
//     x/s = {4, 2^-11, -1.5*2^-9, 0}: 2^-11 < 2^-10 -> 0; -1.5*2^-9 ties codes 1/2 -> 2 -> -2^-8.
//     x = {2^-20, 0, -2^-30, 0}.
//  C: amax 448 -> t = 448 * fl32(1/448) = 1 exactly (see float_formats_test) -> s = 1; 17 ties 16 (m=0) /
//     18 (m=1) -> 16. x = {448, -448, 0.5, 16}.
//  D: amax 450 -> t = 1.0045 -> s = 2; x/s = {225, 0.5, -1.5, 1.5*2^-9}: 225 in [128,256) step 16 -> 224;
//     1.5*2^-9 ties subnormal codes 1/2 -> 2 -> 2^-8. x = {448, 1, -3, 2^-7}.
const std::vector<float> kFp8In = {1.0f, -0.3125f, 100.0f, 3.140625f,              // A
                                   p2(-20), p2(-33), -3.0f * p2(-32), 0.0f,        // B
                                   448.0f, -448.0f, 0.5f, 17.0f,                   // C
                                   450.0f, 1.0f, -3.0f, 3.0f * p2(-9)};            // D

TEST(Fp8FakeQuant, WorkedBlocks) {
  const std::vector<float> expect = {1.0f, -0.3125f, 96.0f, 3.25f,
                                     p2(-20), 0.0f, -p2(-30), 0.0f,
                                     448.0f, -448.0f, 0.5f, 16.0f,
                                     448.0f, 1.0f, -3.0f, p2(-7)};
  std::vector<float> x = kFp8In;
  fp8_fake_quant(x.data(), x.size(), 4);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], expect[i]) << i;
}

TEST(Fp8ActQuant, CodesAndScales) {
  // Scales as e8m0 bytes (127 + log2 s): A 0.25 -> 125, B 2^-22 -> 105, C 1 -> 127, D 2 -> 128.
  // Codes (s eeee mmm, bias 7): 4 = 0x48; -1.25 = 0xBA; 384 = 1.5*2^8 = 0x7C; 13 = 1.625*2^3 = 0x55;
  // 2^-11 -> 0x00; -2*2^-9 = 0x82; 448 = 0x7E; -448 = 0xFE; 0.5 = 0x30; 16 = 0x58;
  // 224 = 1.75*2^7 = 0x76; -1.5 = 0xBC; 2*2^-9 = 0x02.
  const std::vector<uint8_t> expect_q = {0x48, 0xBA, 0x7C, 0x55, 0x48, 0x00, 0x82, 0x00,
                                         0x7E, 0xFE, 0x30, 0x58, 0x76, 0x30, 0xBC, 0x02};
  const std::vector<uint8_t> expect_s = {125, 105, 127, 128};
  std::vector<uint8_t> q(16, 0xEE), s(4, 0xEE);
  fp8_act_quant(kFp8In.data(), kFp8In.size(), 4, q.data(), s.data());
  for (size_t i = 0; i < q.size(); ++i) EXPECT_EQ(q[i], expect_q[i]) << i;
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s[i], expect_s[i]) << i;
}

// A 64-wide block (the KV block size): one large value sets the scale for all of them.
TEST(Fp8FakeQuant, Block64SharedScale) {
  // amax 1000 -> t = 2.232 -> s = 4. 1.0/4 = 0.25 = 2^-2 exact; 0.01171875 (= 3*2^-8)/4 = 3*2^-10 = 1.5*2^-9
  // ties codes 1/2 -> 2 -> 2^-8 * 4 = 2^-6; 1000/4 = 250 -> 256 (see e4m3 test) -> 1024.
  std::vector<float> x(128, 1.0f);
  x[5] = 1000.0f;
  x[9] = 0.01171875f;
  x[64] = 0.01171875f;  // second block: amax 1 -> t = 0.00223 in (2^-9, 2^-8] -> s = 2^-8; x/s = 3 exact
  fp8_fake_quant(x.data(), x.size(), 64);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[5], 1024.0f);
  EXPECT_EQ(x[9], p2(-6));
  EXPECT_EQ(x[64], 0.01171875f);
  EXPECT_EQ(x[127], 1.0f);
}

TEST(Fp8FakeQuant, NonFiniteBlockBecomesNan) {
  std::vector<float> x = {1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f, 3.0f, 1.0f, 2.0f, 3.0f, 4.0f};
  fp8_fake_quant(x.data(), x.size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isnan(x[i])) << i;
  EXPECT_EQ(x[4], 1.0f);  // the next block is unaffected
  std::vector<float> y = {1.0f, std::numeric_limits<float>::infinity(), 2.0f, 3.0f};
  fp8_fake_quant(y.data(), y.size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isnan(y[i])) << i;
  std::vector<float> z = {1.0f, std::numeric_limits<float>::infinity(), 2.0f, 3.0f, 1.0f, 0.0f, 0.0f, 0.0f};
  std::vector<uint8_t> q(8, 0), s(2, 0);
  fp8_act_quant(z.data(), 8, 4, q.data(), s.data());
  EXPECT_EQ(s[0], 0xFF);  // e8m0 NaN
  for (int i = 0; i < 4; ++i) EXPECT_EQ(q[i], 0x7F) << i;
  EXPECT_EQ(s[1], 127 - 8);  // amax 1 -> t = fl32(1/448) in (2^-9, 2^-8] -> s = 2^-8
  EXPECT_EQ(q[4], 0x78);     // 1 / 2^-8 = 256 = 2^8: exponent field 15, mantissa 0
  EXPECT_THROW(fp8_fake_quant(x.data(), 6, 4), InvariantError);  // n not a multiple of block
}

// Property: fake-quant output is bf16-representable, within half an e4m3 step of the input, and a fixed point.
TEST(Fp8FakeQuant, RandomProperties) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> x(128 * 16);
  for (float& v : x) v = round_bf16(dist(rng));
  std::vector<float> y = x;
  fp8_fake_quant(y.data(), y.size(), 128);
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_EQ(round_bf16(y[i]), y[i]);
    // relative step of e4m3 normals is 2^-3, so |y-x| <= 2^-4 |x| unless x/s is subnormal (|x/s| < 2^-6).
    EXPECT_LE(std::fabs(y[i] - x[i]), std::fabs(x[i]) * 0.0625f + 1e-3f) << i;
  }
  std::vector<float> z = y;
  fp8_fake_quant(z.data(), z.size(), 128);
  EXPECT_TRUE(testlib::bitwise_equal(z.data(), y.data(), y.size()));
  EXPECT_TRUE(testlib::rel_err_within(y.data(), x.data(), x.size(), 0.05));
}

// FP4, block 1: amax 3 -> t = 3 * fl32(1/6) = 0.5 + 2^-26 -> rounds to 0.5 in f32 (fl32(1/6) = 11184811 *
// 2^-26, 3 * that = 33554433 * 2^-26; a quarter ulp above 0.5) -> s = 0.5, so x/s = 2x:
//   3 -> 6 -> 3;  0.125 -> 0.25 tie(0,0.5) -> 0;  0.375 -> 0.75 tie(0.5,1) -> 1 -> 0.5;
//   0.625 -> 1.25 tie(1,1.5) -> 1 -> 0.5;  0.875 -> 1.75 tie(1.5,2) -> 2 -> 1;  1.25 -> 2.5 tie(2,3) -> 2 -> 1;
//   1.75 -> 3.5 tie(3,4) -> 4 -> 2;  2.5 -> 5 tie(4,6) -> 4 -> 2;  2.75 -> 5.5 -> 6 -> 3;
//   0.1015625 -> 0.203125 -> 0;  0.15625 -> 0.3125 -> 0.5 -> 0.25;  -0.125 -> -0.25 -> -0.
// Block 2 (tiny): amax 5*2^-126 < 6*2^-126 -> floor: t = 2^-126 (1 + 2^-25) -> 2^-126 -> s = 2^-126:
//   2^-126 -> 1 -> 2^-126;  0.75*2^-126 -> tie -> 1 -> 2^-126;  2^-128 -> 0.25 -> 0;  2^-130 -> 0;
//   -5*2^-126 -> -5 tie(4,6) -> -4 -> -2^-124.
// Block 3: amax 7 -> t = 1.1667 -> s = 2: 7 -> 3.5 tie -> 4 -> 8;  0.5 -> 0.25 -> 0;  1.5 -> 0.75 -> 1 -> 2.
TEST(Fp4FakeQuant, WorkedBlocksOf32) {
  std::vector<float> x(96, 0.0f), expect(96, 0.0f);
  const float in1[] = {3.0f, -3.0f, 0.125f, 0.375f, 0.625f, 0.875f, 1.25f, 1.75f,
                       2.5f, -2.5f, 2.75f, 0.1015625f, 0.15625f, 1.0f, -0.5f, -0.125f};
  const float out1[] = {3.0f, -3.0f, 0.0f, 0.5f, 0.5f, 1.0f, 1.0f, 2.0f,
                        2.0f, -2.0f, 3.0f, 0.0f, 0.25f, 1.0f, -0.5f, -0.0f};
  for (int i = 0; i < 16; ++i) x[i] = in1[i], expect[i] = out1[i];
  const float in2[] = {p2(-126), 0.75f * p2(-126), p2(-128), p2(-130), -5.0f * p2(-126)};
  const float out2[] = {p2(-126), p2(-126), 0.0f, 0.0f, -p2(-124)};
  for (int i = 0; i < 5; ++i) x[32 + i] = in2[i], expect[32 + i] = out2[i];
  x[64] = 7.0f, expect[64] = 8.0f;
  x[65] = 0.5f, expect[65] = 0.0f;
  x[66] = 1.5f, expect[66] = 2.0f;
  x[95] = -7.0f, expect[95] = -8.0f;
  fp4_fake_quant(x.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], expect[i]) << i;
  EXPECT_TRUE(std::signbit(x[15]));  // -0.125 -> -0
}

TEST(Fp4FakeQuant, AmaxSixTimesPowerOfTwoKeepsScale) {
  // 6 * fl32(1/6) = 1 + 2^-25 rounds to 1.0 -> s = 1; the grid is then exactly representable.
  std::vector<float> x(32, 0.0f);
  const float grid[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (int i = 0; i < 8; ++i) x[i] = grid[i], x[8 + i] = -grid[i];
  const std::vector<float> in = x;
  fp4_fake_quant(x.data(), x.size(), 32);
  EXPECT_TRUE(testlib::bitwise_equal(x.data(), in.data(), 32));
}

// Bitwise equal, except that any NaN matches any NaN (payloads and signs of NaN are not part of the contract).
bool same_values(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::isnan(a[i]) ? !std::isnan(b[i]) : std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]))
      return false;
  return a.size() == b.size();
}

// fp4_pack / fp4_unpack: the packed form decodes to exactly what fp4_fake_quant gives, for raw rows and for rows
// that are already fake-quantized (idempotent: the engine packs FP4-rounded indexer keys), over magnitudes from
// the amax floor to 2^100, with zero, NaN and inf blocks.
TEST(Fp4Pack, UnpackEqualsFakeQuantBitwise) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-130, 100);
  const size_t n = 32 * 400;
  std::vector<float> x(n);
  for (size_t b = 0; b < n / 32; ++b) {
    const float mag = std::ldexp(1.0f, expo(rng));
    for (size_t i = 0; i < 32; ++i) x[32 * b + i] = uni(rng) * mag * (i % 7 == 0 ? 0.01f : 1.0f);
  }
  for (size_t i = 0; i < 32; ++i) x[i] = 0.0f;                          // all-zero block: floor scale
  x[32 + 5] = std::numeric_limits<float>::quiet_NaN();                  // NaN block
  x[64 + 9] = -std::numeric_limits<float>::infinity();                  // inf block
  std::vector<float> fq = x;
  fp4_fake_quant(fq.data(), n);
  std::vector<uint8_t> codes(n / 2), scales(n / 32);
  std::vector<float> got(n);
  fp4_pack(x.data(), n, codes.data(), scales.data());
  fp4_unpack(codes.data(), scales.data(), n, got.data());
  EXPECT_TRUE(same_values(got, fq));
  EXPECT_EQ(scales[1], 0xFF);
  EXPECT_EQ(scales[2], 0xFF);
  for (size_t i = 32; i < 96; ++i) EXPECT_TRUE(std::isnan(got[i])) << i;
  // Packing a fake-quantized row reproduces it.
  std::vector<uint8_t> codes2(n / 2), scales2(n / 32);
  fp4_pack(fq.data(), n, codes2.data(), scales2.data());
  fp4_unpack(codes2.data(), scales2.data(), n, got.data());
  EXPECT_TRUE(same_values(got, fq));  // (the scale may come out halved: a block whose amax rounded down)
}

// Layout by hand: element 2j in the low nibble of byte j; scale = biased exponent of s.
TEST(Fp4Pack, NibbleOrderAndScaleByte) {
  std::vector<float> x(32, 0.0f);
  x[0] = 1.0f, x[1] = -6.0f, x[2] = 0.5f, x[31] = 3.0f;  // amax 6: s = 1
  std::vector<uint8_t> codes(16), scales(1);
  fp4_pack(x.data(), 32, codes.data(), scales.data());
  EXPECT_EQ(scales[0], 127);
  EXPECT_EQ(codes[0], 0x2 | (0xF << 4));  // 1.0 = code 2, -6 = 8 | 7
  EXPECT_EQ(codes[1], 0x1);               // 0.5 = code 1, element 3 zero
  EXPECT_EQ(codes[15], 0x5 << 4);         // element 31: 3.0 = code 5
  EXPECT_EQ(mxfp4_row_bytes(128), 68);
  EXPECT_EQ(mxfp4_row_bytes(64), 36);
  // A row of 64: codes [0, 32), scales [32, 34), pad [34, 36) zeroed over whatever the buffer held.
  std::vector<float> x64(64);
  for (int i = 0; i < 64; ++i) x64[i] = 0.25f * static_cast<float>(i % 13) - 1.0f;
  std::vector<uint8_t> row(36, 0xAB);
  fp4_pack_row(x64.data(), 64, row.data());
  EXPECT_EQ(row[34], 0);
  EXPECT_EQ(row[35], 0);
  std::vector<float> back(64), fq = x64;
  fp4_unpack_row(row.data(), 64, back.data());
  fp4_fake_quant(fq.data(), 64);
  EXPECT_TRUE(same_values(back, fq));
}

// H_4 (Sylvester) rows: ++++, +-+-, ++--, +--+. H x for x = (1,2,3,4): (10, -2, -4, 0); /sqrt(4) = /2.
TEST(Hadamard, N4ByHand) {
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  hadamard_inplace(x.data(), 4, false);
  EXPECT_EQ(x, (std::vector<float>{5.0f, -1.0f, -2.0f, 0.0f}));
}

// The spec fixes the butterfly order (strides 1, 2, ..., n/2), which matters for f32 rounding. x = (1, e, -1, e),
// e = 2^-24. Stride 1: 1+e ties to 1; 1-e exact; -1+e exact; -1-e ties to -1 -> (1, 1-e, -1+e, -1).
// Stride 2: 1 + (-1+e) = e; (1-e) + (-1) = -e; 1 - (-1+e) = 2-e ties to 2; (1-e) - (-1) = 2-e -> 2.
// Times 1/2: (e/2, -e/2, 1, 1). (Strides 2 then 1 would give (e, -e, 1, 1); exact math gives (e, 0, 1, 1).)
TEST(Hadamard, N4StrideOrderFixesRounding) {
  std::vector<float> x = {1.0f, p2(-24), -1.0f, p2(-24)};
  hadamard_inplace(x.data(), 4, false);
  EXPECT_EQ(x, (std::vector<float>{p2(-25), -p2(-25), 1.0f, 1.0f}));
}

// x_j = j + 1 = 1 + b0 + 2 b1 + 4 b2 (bits of j). H_8 maps the constant 1 to 8 e_0 and bit b_k (weight w) to
// 4w e_0 - 4w e_{2^k}: H x = (8+4+8+16, -4, -8, 0, -16, 0, 0, 0) = (36, -4, -8, 0, -16, 0, 0, 0); / sqrt(8).
TEST(Hadamard, N8ByHand) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  hadamard_inplace(x.data(), 8, false);
  const double r8 = std::sqrt(8.0);
  const double expect[8] = {36 / r8, -4 / r8, -8 / r8, 0, -16 / r8, 0, 0, 0};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(x[i], expect[i], 2e-6) << i;
  // With bf16 output: 12.7279 = 1.5910 * 8 -> mantissa 0.5910*128 = 75.65 -> 76 -> 12.75;
  // 1.41421 -> 0.41421*128 = 53.02 -> 53 -> 1.4140625; 2.82843 -> 2.828125; 5.65685 -> 5.65625.
  std::vector<float> y = {1, 2, 3, 4, 5, 6, 7, 8};
  hadamard_inplace(y.data(), 8, true);
  EXPECT_EQ(y, (std::vector<float>{12.75f, -1.4140625f, -2.828125f, 0.0f, -5.65625f, 0.0f, 0.0f, 0.0f}));
}

// Column j of H_128 / sqrt(128) is ((-1)^popcount(i & j) / sqrt(128))_i (natural Sylvester order).
TEST(Hadamard, N128SylvesterOrderAndOrthonormal) {
  constexpr size_t n = 128;
  const double inv = 1.0 / std::sqrt(128.0);
  std::vector<std::vector<float>> cols(n, std::vector<float>(n, 0.0f));
  for (size_t j = 0; j < n; ++j) {
    cols[j][j] = 1.0f;
    hadamard_inplace(cols[j].data(), n, false);
    for (size_t i = 0; i < n; ++i) {
      const double sign = (std::popcount(i & j) % 2) ? -1.0 : 1.0;
      ASSERT_NEAR(cols[j][i], sign * inv, 1e-7) << i << "," << j;
    }
  }
  for (size_t a = 0; a < n; a += 7)
    for (size_t b = 0; b < n; ++b) {
      double dot = 0;
      for (size_t i = 0; i < n; ++i) dot += static_cast<double>(cols[a][i]) * cols[b][i];
      EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-6) << a << "," << b;
    }
}

TEST(Hadamard, N128InvolutionAndNorm) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(128);
  for (float& v : x) v = dist(rng);
  std::vector<float> y = x;
  hadamard_inplace(y.data(), 128, false);
  double nx = 0, ny = 0;
  for (size_t i = 0; i < 128; ++i) nx += double(x[i]) * x[i], ny += double(y[i]) * y[i];
  EXPECT_NEAR(ny / nx, 1.0, 1e-6);
  hadamard_inplace(y.data(), 128, false);  // H/sqrt(n) is symmetric orthogonal: applying it twice is identity
  EXPECT_TRUE(testlib::rel_err_within(y.data(), x.data(), 128, 1e-6));
  hadamard_inplace(y.data(), 128, true);
  for (float v : y) EXPECT_EQ(round_bf16(v), v);
  EXPECT_THROW(hadamard_inplace(y.data(), 96, false), InvariantError);
}

}  // namespace
}  // namespace dsv4
