// Dequantization of hand-built weights (spec §7.2): FP8 e4m3 with 128x128 e8m0 block scales (broadcast over
// row and column blocks, partial last blocks), FP8 with an HF f32 scale_inv multiplier, MXFP4 with explicit
// nibbles (low nibble = even element), plain BF16/F16/F32 rows and vectors, and read_int. Expected values are
// the code values of the e4m3/e2m1/e8m0 tables times the block scale, worked out in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "weights/quant/dequant.h"

namespace dsv4::weights {
namespace {

float p2(int e) { return std::ldexp(1.0f, e); }

Weight make_fp8(const char* name, const std::vector<uint8_t>& data, Shape shape, const void* scale,
                DType scale_dtype, Shape scale_shape) {
  Weight w;
  w.name = name;
  w.quant = Quant::Fp8Block128;
  w.dtype = DType::F8_E4M3;
  w.shape = std::move(shape);
  w.data = data.data();
  w.scale = scale;
  w.scale_dtype = scale_dtype;
  w.scale_shape = std::move(scale_shape);
  return w;
}

// [3, 200]: one row block, two column blocks (0..127 and 128..199, the second one partial).
// Scales e8m0 {127, 125} = {1, 0.25}. Codes: 0x38 = 1.0 everywhere in block 0, 0x40 = 2.0 in block 1,
// except [0][0] = 0x7E (448), [1][127] = 0xB8 (-1), [2][128] = 0x01 (2^-9), [2][199] = 0xFE (-448).
TEST(DequantFp8, ThreeBy200TwoColumnBlocks) {
  std::vector<uint8_t> data(3 * 200);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 200; ++c) data[r * 200 + c] = c < 128 ? 0x38 : 0x40;
  data[0 * 200 + 0] = 0x7E;
  data[1 * 200 + 127] = 0xB8;
  data[2 * 200 + 128] = 0x01;
  data[2 * 200 + 199] = 0xFE;
  const std::vector<uint8_t> scale = {127, 125};
  const Weight w = make_fp8("t.fp8", data, {3, 200}, scale.data(), DType::F8_E8M0, {1, 2});
  const std::vector<float> out = dequant_all(w);
  ASSERT_EQ(out.size(), 600u);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 200; ++c) {
      float expect = c < 128 ? 1.0f : 0.5f;  // 1.0 * 1 and 2.0 * 0.25
      if (r == 0 && c == 0) expect = 448.0f;
      if (r == 1 && c == 127) expect = -1.0f;
      if (r == 2 && c == 128) expect = p2(-11);  // 2^-9 * 0.25
      if (r == 2 && c == 199) expect = -112.0f;  // -448 * 0.25
      ASSERT_EQ(out[r * 200 + c], expect) << r << "," << c;
    }
}

// [130, 200]: scale [2, 2] = e8m0 {{127, 129}, {125, 120}} = {{1, 4}, {0.25, 2^-7}}; rows 0..127 share
// scale row 0, rows 128..129 scale row 1. All codes 0x38 (1.0) except a few marked ones.
TEST(DequantFp8, BlockScaleBroadcast130By200) {
  constexpr int R = 130, C = 200;
  std::vector<uint8_t> data(R * C, 0x38);
  data[0 * C + 0] = 0x7E;      // 448 * 1
  data[0 * C + 199] = 0xB8;    // -1 * 4
  data[127 * C + 127] = 0xFE;  // -448 * 1
  data[128 * C + 0] = 0x3F;    // 1.875 * 0.25 = 0.46875
  data[129 * C + 128] = 0x01;  // 2^-9 * 2^-7 = 2^-16
  const std::vector<uint8_t> scale = {127, 129, 125, 120};
  const Weight w = make_fp8("t.big", data, {R, C}, scale.data(), DType::F8_E8M0, {2, 2});
  const std::vector<float> out = dequant_all(w);
  auto at = [&](int r, int c) { return out[r * C + c]; };
  const float block[2][2] = {{1.0f, 4.0f}, {0.25f, p2(-7)}};
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      if ((r == 0 && (c == 0 || c == 199)) || (r == 127 && c == 127) || (r == 128 && c == 0) ||
          (r == 129 && c == 128))
        continue;
      ASSERT_EQ(at(r, c), block[r / 128][c / 128]) << r << "," << c;
    }
  EXPECT_EQ(at(0, 0), 448.0f);
  EXPECT_EQ(at(0, 199), -4.0f);
  EXPECT_EQ(at(127, 127), -448.0f);
  EXPECT_EQ(at(127, 128), 4.0f);
  EXPECT_EQ(at(128, 0), 0.46875f);
  EXPECT_EQ(at(128, 127), 0.25f);
  EXPECT_EQ(at(128, 128), p2(-7));
  EXPECT_EQ(at(129, 128), p2(-16));

  // A row range crossing the row-block boundary gives the same rows.
  std::vector<float> part(4 * C, -99.0f);
  dequant_rows(w, 126, 130, part.data());
  for (int i = 0; i < 4 * C; ++i) ASSERT_EQ(part[i], out[126 * C + i]) << i;
  EXPECT_THROW(dequant_rows(w, 129, 131, part.data()), InvariantError);
}

// HF checkpoints store weight_scale_inv as f32 multipliers (not necessarily powers of two).
// [3, 200] with scale {0.5, 3.0}: 0x3C = 1.5 -> 0.75 in block 0 and 4.5 in block 1; 0xC4 = -3 -> -9.
TEST(DequantFp8, F32ScaleInv) {
  std::vector<uint8_t> data(3 * 200, 0x3C);
  data[1 * 200 + 150] = 0xC4;
  const std::vector<float> scale = {0.5f, 3.0f};
  const Weight w = make_fp8("t.hf", data, {3, 200}, scale.data(), DType::F32, {1, 2});
  std::vector<float> out(200);
  dequant_rows(w, 1, 2, out.data());
  EXPECT_EQ(out[0], 0.75f);
  EXPECT_EQ(out[127], 0.75f);
  EXPECT_EQ(out[128], 4.5f);
  EXPECT_EQ(out[150], -9.0f);
  EXPECT_EQ(out[199], 4.5f);
}

TEST(DequantFp8, ScaleShapeMismatchIsReported) {
  std::vector<uint8_t> data(3 * 200, 0x38);
  const std::vector<uint8_t> scale = {127};
  const Weight w = make_fp8("t.bad", data, {3, 200}, scale.data(), DType::F8_E8M0, {1, 1});
  std::vector<float> out(600);
  EXPECT_THROW(dequant_rows(w, 0, 3, out.data()), InvariantError);
}

// MXFP4 [2, 64]: bytes [2, 32], scale [2, 2]. Byte k holds element 2k in the low nibble, 2k+1 in the high one.
// Nibble codes: 1 = 0.5, 2 = 1, 3 = 1.5, 4 = 2, 5 = 3, 6 = 4, 7 = 6, 8 = -0, 9 = -0.5, A = -1, C = -2,
// E = -4, F = -6.
TEST(DequantMxfp4, ExplicitNibbles) {
  std::vector<uint8_t> data(2 * 32, 0x00);
  // Row 0, scales {127, 130} = {1, 8}.
  data[0] = 0x21;   // e0 = code 1 (0.5), e1 = code 2 (1.0)
  data[1] = 0xF7;   // e2 = code 7 (6), e3 = code F (-6)
  data[2] = 0x8A;   // e4 = code A (-1), e5 = code 8 (-0)
  data[16] = 0x53;  // e32 = code 3 (1.5 * 8 = 12), e33 = code 5 (3 * 8 = 24)
  data[31] = 0xC4;  // e62 = code 4 (2 * 8 = 16), e63 = code C (-2 * 8 = -16)
  // Row 1, scales {128, 124} = {2, 1/8}.
  data[32 + 0] = 0x6E;   // e0 = code E (-4 * 2 = -8), e1 = code 6 (4 * 2 = 8)
  data[32 + 17] = 0x19;  // e34 = code 9 (-0.5 / 8 = -0.0625), e35 = code 1 (0.5 / 8 = 0.0625)
  const std::vector<uint8_t> scale = {127, 130, 128, 124};
  Weight w;
  w.name = "t.mxfp4";
  w.quant = Quant::Mxfp4;
  w.dtype = DType::I8;
  w.shape = {2, 64};
  w.data = data.data();
  w.scale = scale.data();
  w.scale_dtype = DType::F8_E8M0;
  w.scale_shape = {2, 2};
  const std::vector<float> out = dequant_all(w);
  ASSERT_EQ(out.size(), 128u);
  std::vector<float> expect(128, 0.0f);
  expect[0] = 0.5f, expect[1] = 1.0f, expect[2] = 6.0f, expect[3] = -6.0f, expect[4] = -1.0f;
  expect[32] = 12.0f, expect[33] = 24.0f, expect[62] = 16.0f, expect[63] = -16.0f;
  expect[64 + 0] = -8.0f, expect[64 + 1] = 8.0f, expect[64 + 34] = -0.0625f, expect[64 + 35] = 0.0625f;
  for (int i = 0; i < 128; ++i) EXPECT_EQ(out[i], expect[i]) << i;
  EXPECT_TRUE(std::signbit(out[5]));  // code 8 decodes to -0 (== 0)

  std::vector<float> row1(64);
  dequant_rows(w, 1, 2, row1.data());
  EXPECT_EQ(row1[0], -8.0f);
  EXPECT_EQ(row1[35], 0.0625f);
}

TEST(DequantPlain, Bf16F16F32Rows) {
  // bf16: 0x3F80 = 1, 0xC040 = -3, 0x0000 = 0, 0x3F00 = 0.5.
  const std::vector<uint16_t> bf = {0x3F80, 0xC040, 0x0000, 0x3F00};
  Weight wb;
  wb.name = "t.bf16";
  wb.dtype = DType::BF16;
  wb.shape = {2, 2};
  wb.data = bf.data();
  std::vector<float> out(2);
  dequant_rows(wb, 1, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{0.0f, 0.5f}));
  EXPECT_EQ(dequant_all(wb), (std::vector<float>{1.0f, -3.0f, 0.0f, 0.5f}));

  // f16: 0x3C00 = 1, 0xC200 = -3, 0x3800 = 0.5, 0x0001 = 2^-24.
  const std::vector<uint16_t> hf = {0x3C00, 0xC200, 0x3800, 0x0001};
  Weight wh = wb;
  wh.name = "t.f16";
  wh.dtype = DType::F16;
  wh.data = hf.data();
  EXPECT_EQ(dequant_all(wh), (std::vector<float>{1.0f, -3.0f, 0.5f, p2(-24)}));

  // 1-D f32 vector: rows are single elements.
  const std::vector<float> v = {1.0f, 2.0f, 3.0f};
  Weight wv;
  wv.name = "t.vec";
  wv.dtype = DType::F32;
  wv.shape = {3};
  wv.data = v.data();
  std::vector<float> tail(2);
  dequant_rows(wv, 1, 3, tail.data());
  EXPECT_EQ(tail, (std::vector<float>{2.0f, 3.0f}));
  EXPECT_EQ(dequant_all(wv), v);

  // 1-D bf16 vector (norm weights).
  Weight wbv = wb;
  wbv.shape = {4};
  EXPECT_EQ(dequant_all(wbv), (std::vector<float>{1.0f, -3.0f, 0.0f, 0.5f}));
}

TEST(ReadInt, I64AndI32) {
  const std::vector<int64_t> a = {5, -1, 7, 1LL << 40};
  Weight w;
  w.name = "t.tid2eid";
  w.dtype = DType::I64;
  w.shape = {2, 2};
  w.data = a.data();
  EXPECT_EQ(read_int(w, 0), 5);
  EXPECT_EQ(read_int(w, 1), -1);
  EXPECT_EQ(read_int(w, 3), 1LL << 40);
  EXPECT_THROW(read_int(w, 4), InvariantError);
  const std::vector<int32_t> b = {3, -4};
  Weight w32;
  w32.name = "t.i32";
  w32.dtype = DType::I32;
  w32.shape = {2};
  w32.data = b.data();
  EXPECT_EQ(read_int(w32, 1), -4);
  Weight wf = w32;
  wf.dtype = DType::F32;
  EXPECT_THROW(read_int(wf, 0), InvariantError);
}

}  // namespace
}  // namespace dsv4::weights
