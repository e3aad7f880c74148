// The Fp8Kv row format (core/row_blocks.h) and fp8kv_pack_row / fp8kv_unpack_row (core/numerics.h): row bytes at
// the Flash and tiny shapes, the byte layout by hand, and the lossless round trip of rows the FP8 KV rounding
// produced (bf16 rounding, then fp8_fake_quant of the no-RoPE dims in blocks of 64; spec §5.3 step 4), including
// an all-zero block, a block whose amax rounds down to 224·s (the re-derived scale is half the fake-quant's),
// tiny and subnormal values, and NaN blocks (NaN decodes to NaN).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/numerics.h"
#include "core/row_blocks.h"

namespace dsv4 {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

float p2(int e) { return std::ldexp(1.0f, e); }

// The KV cache rounding of the official numerics (CpuOps::kv_round with KvCacheDtype::Fp8) on one row.
void kv_round_fp8(std::vector<float>& x, size_t rope) {
  for (float& v : x) v = round_bf16(v);
  fp8_fake_quant(x.data(), x.size() - rope, 64);
}

// Same bits, or both NaN.
bool same_value(float a, float b) {
  return std::isnan(a) ? std::isnan(b) : std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

// Packs x into a buffer pre-filled with garbage, checks the padding was zeroed, and returns the decoded row.
std::vector<float> round_trip(const std::vector<float>& x, size_t rope, std::vector<uint8_t>* packed = nullptr) {
  const size_t dim = x.size(), nope = dim - rope;
  const auto bytes = static_cast<size_t>(fp8kv_row_bytes(static_cast<int64_t>(dim), static_cast<int64_t>(rope)));
  std::vector<uint8_t> row(bytes, 0xAB);
  fp8kv_pack_row(x.data(), dim, rope, row.data());
  for (size_t i = nope + 2 * rope + nope / 64; i < bytes; ++i) EXPECT_EQ(row[i], 0) << "pad byte " << i;
  std::vector<float> back(dim, -1.0f);
  fp8kv_unpack_row(row.data(), dim, rope, back.data());
  if (packed) *packed = row;
  return back;
}

TEST(Fp8KvRow, RowBytes) {
  EXPECT_EQ(fp8kv_row_bytes(512, 64), 584);  // 448 e4m3 + 128 B rope + 7 scales + 1 pad (spec §9.2)
  EXPECT_EQ(fp8kv_row_bytes(128, 64), 200);  // 64 e4m3 + 128 B rope + 1 scale + 7 pad
  EXPECT_EQ(row_bytes(RowFormat::Fp8Kv, 512, 64), 584);
  EXPECT_EQ(row_bytes(RowFormat::Fp8Kv, 128, 64), 200);
  EXPECT_EQ(row_bytes(RowFormat::F32, 512, 64), 2048);
  EXPECT_EQ(fp8kv_row_bytes(512, 64) % 4, 0);  // RowBlocks strides count 4-byte words
}

// The shapes that make Fp8Kv rows: the FP8 blocks of 64 must tile the no-RoPE dims.
TEST(Fp8KvRow, ShapeOk) {
  EXPECT_TRUE(fp8kv_shape_ok(512, 64));   // Flash / Pro
  EXPECT_TRUE(fp8kv_shape_ok(128, 64));   // the tiny models
  EXPECT_TRUE(fp8kv_shape_ok(96, 32));
  EXPECT_TRUE(fp8kv_shape_ok(64, 64));    // RoPE only: no FP8 block
  EXPECT_FALSE(fp8kv_shape_ok(96, 64));   // 32 no-RoPE dims
  EXPECT_FALSE(fp8kv_shape_ok(512, 80));  // 432 no-RoPE dims
  EXPECT_FALSE(fp8kv_shape_ok(64, 128));  // more RoPE than dims
  EXPECT_FALSE(fp8kv_shape_ok(128, -64));
}

// Byte layout of a 128/64 row: codes [0, 64), rope bf16 [64, 192) little-endian, scale byte 192, pad [193, 200).
TEST(Fp8KvRow, LayoutByHand) {
  std::vector<float> x(128, 0.0f);
  x[0] = 448.0f;  // amax 448: s = 1, code 448 = 0x7E
  x[1] = -0.5f;   // code 0xB0
  x[63] = 16.0f;  // code 0x58
  x[64] = 1.5f;   // bf16 0x3FC0
  x[127] = -2.0f;  // bf16 0xC000
  kv_round_fp8(x, 64);
  std::vector<uint8_t> row;
  std::vector<float> back = round_trip(x, 64, &row);
  EXPECT_EQ(row[0], 0x7E);
  EXPECT_EQ(row[1], 0xB0);
  EXPECT_EQ(row[2], 0x00);
  EXPECT_EQ(row[63], 0x58);
  EXPECT_EQ(row[64], 0xC0);
  EXPECT_EQ(row[65], 0x3F);
  EXPECT_EQ(row[190], 0x00);
  EXPECT_EQ(row[191], 0xC0);
  EXPECT_EQ(row[192], 127);  // e8m0 of s = 1
  for (size_t i = 0; i < x.size(); ++i) EXPECT_TRUE(same_value(back[i], x[i])) << i;
}

// Flash shape (512, rope 64): 7 FP8 blocks. Block 0 all zero; block 1's amax 230 rounds to 224 (s = 1), so the
// packer derives s = 1/2 from the rounded values and still decodes exactly; block 2 tiny and subnormal values
// under the 1e-4 amax floor; blocks 3-6 random magnitudes; rope random bf16 values.
TEST(Fp8KvRow, RoundTripOfKvRoundedRowsBitwise) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-30, 12);
  for (int rep = 0; rep < 50; ++rep) {
    std::vector<float> x(512);
    for (size_t b = 3; b < 7; ++b) {
      const float mag = p2(expo(rng));
      for (size_t i = 0; i < 64; ++i) x[64 * b + i] = uni(rng) * mag;
    }
    for (size_t i = 0; i < 64; ++i) {
      x[i] = 0.0f;
      x[64 + i] = uni(rng) * 200.0f;
      x[128 + i] = uni(rng) * p2(-28 + static_cast<int>(i % 8));  // 2^-28 .. 2^-21: far below the floor
      x[448 + i] = uni(rng) * p2(expo(rng));
    }
    x[64 + 17] = 230.0f;
    std::vector<float> fq = x;
    const float block1_scale = p2(0);  // ue8m0_ceil(230 / 448)
    kv_round_fp8(fq, 64);
    ASSERT_EQ(fq[64 + 17], 224.0f) << "230 / s rounds down to the e4m3 value 224";
    std::vector<uint8_t> row;
    std::vector<float> back = round_trip(fq, 64, &row);
    for (size_t i = 0; i < 512; ++i) ASSERT_TRUE(same_value(back[i], fq[i])) << "rep " << rep << " dim " << i;
    const uint8_t* scales = row.data() + 448 + 128;
    EXPECT_EQ(e8m0_to_f32(scales[1]), block1_scale / 2);  // re-derived from amax 224: 224 * fl32(1/448) = 1/2
    EXPECT_EQ(scales[2], e8m0_from_pow2(ue8m0_ceil(1e-4f * static_cast<float>(1.0 / 448.0))));  // floor scale
    for (size_t i = 0; i < 64; ++i) EXPECT_EQ(std::bit_cast<uint32_t>(back[i]), 0u) << "zero block, dim " << i;
  }
}

// Tiny shape (128, rope 64): one FP8 block of e4m3 subnormal codes of both signs next to a large value; packing
// the decoded row again reproduces the bytes.
TEST(Fp8KvRow, TinyShapeSubnormalsAndRepack) {
  std::vector<float> x(128);
  // amax just under 448·2^-9 gives s = 2^-9; the others are k·2^-18 = k·2^-9·s, the e4m3 subnormal codes.
  for (size_t i = 0; i < 64; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * p2(-18) * static_cast<float>(i % 8);
  x[5] = 448.0f * p2(-9) * 0.99f;
  for (size_t i = 64; i < 128; ++i) x[i] = static_cast<float>(i) * 0.3f - 20.0f;
  kv_round_fp8(x, 64);
  std::vector<uint8_t> row, row2;
  std::vector<float> back = round_trip(x, 64, &row);
  for (size_t i = 0; i < 128; ++i) ASSERT_TRUE(same_value(back[i], x[i])) << i;
  std::vector<float> again = round_trip(back, 64, &row2);
  EXPECT_EQ(row, row2);
}

// A NaN (or inf) in a no-RoPE block makes that block NaN (the fake-quant already did); the other blocks and the
// rope part are unchanged. A NaN rope value stays NaN.
TEST(Fp8KvRow, NanBlocksDecodeToNan) {
  std::vector<float> x(512);
  for (size_t i = 0; i < 512; ++i) x[i] = 0.01f * static_cast<float>(i % 97) - 0.4f;
  x[64 * 2 + 3] = kNaN;
  x[64 * 5 + 60] = std::numeric_limits<float>::infinity();
  x[500] = kNaN;
  std::vector<float> fq = x;
  kv_round_fp8(fq, 64);
  std::vector<uint8_t> row;
  std::vector<float> back = round_trip(fq, 64, &row);
  for (size_t i = 0; i < 512; ++i) {
    const bool nan_block = (i >= 128 && i < 192) || (i >= 320 && i < 384) || i == 500;
    EXPECT_EQ(std::isnan(back[i]), nan_block) << i;
    EXPECT_TRUE(same_value(back[i], fq[i])) << i;
  }
  EXPECT_EQ(row[448 + 128 + 2], 0xFF);
  EXPECT_EQ(row[448 + 128 + 5], 0xFF);
  // Raw NaN input, not fake-quantized first, gives the same NaN blocks.
  std::vector<float> raw = round_trip(x, 64);
  for (size_t i = 128; i < 192; ++i) EXPECT_TRUE(std::isnan(raw[i])) << i;
}

}  // namespace
}  // namespace dsv4
