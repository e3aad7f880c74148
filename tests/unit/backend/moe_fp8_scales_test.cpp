// fp8_scales_ok (backend/moe_fp8_scales.h): the exactness condition of the CUDA FP8 expert GEMM per (row, 128-K
// block) and its tensor references (packing, range, spread), on two experts of 128 x 128 MXFP4 weights whose e8m0
// bytes are set per case. A wrong reference moves weights that are >= 2^12 below the set's largest, too small to
// show in the GPU GEMM rows' errors, so the decision is checked here directly.
#include "backend/moe_fp8_scales.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace dsv4::backend {
namespace {

constexpr int64_t kN = 128, kK = 128, kBytes = kN * kK / 32;
// Largest byte of each weight (w1, w3, w2 of expert 0, then 1); each weight's bytes span [top - 2, top].
constexpr int kTop[6] = {120, 119, 121, 118, 122, 117};

struct Set {
  std::vector<std::vector<uint8_t>> sc = std::vector<std::vector<uint8_t>>(6, std::vector<uint8_t>(kBytes));
  std::vector<weights::ExpertWeights> ex = std::vector<weights::ExpertWeights>(2);
  explicit Set(int shift) {
    for (int e = 0; e < 2; ++e)
      for (int m = 0; m < 3; ++m) {
        weights::Weight& w = m == 0 ? ex[e].w1 : m == 1 ? ex[e].w3 : ex[e].w2;
        w.quant = weights::Quant::Mxfp4;
        w.dtype = DType::I8;
        w.shape = {kN, kK};
        w.scale_dtype = DType::F8_E8M0;
        w.scale = sc[3 * e + m].data();
        w.scale_shape = {kN, kK / 32};
        for (int64_t b = 0; b < kBytes; ++b)
          sc[3 * e + m][b] = static_cast<uint8_t>(kTop[3 * e + m] + shift - (b * 7 % 3));
      }
  }
  bool check(std::vector<uint32_t>& ref) const { return fp8_scales_ok(ex, ref); }
};

TEST(MoeFp8Scales, NarrowSpreadGivesPackedTensorReferences) {
  const Set s(0);
  std::vector<uint32_t> ref;
  EXPECT_TRUE(s.check(ref));
  // [E] gate_up words R1 | R3 << 8, then [E] down words R2.
  EXPECT_EQ(ref, (std::vector<uint32_t>{120u | 119u << 8, 118u | 122u << 8, 121u, 117u}));
}

TEST(MoeFp8Scales, WeightSpreadAbove12KeepsBlockReferences) {
  Set s(0);
  for (int i = 0; i < 4; ++i) s.sc[5][4 * 10 + i] = 117 - 13;  // row 10 of expert 1's w2: one block 13 below
  std::vector<uint32_t> ref;
  EXPECT_TRUE(s.check(ref));
  EXPECT_TRUE(ref.empty());
  s.sc[5][4 * 10] = 117;  // that block now spans 13 itself: not exact at all
  EXPECT_FALSE(s.check(ref));
}

TEST(MoeFp8Scales, RejectsE8m0Nan) {
  Set s(0);
  s.sc[1][17] = 255;
  std::vector<uint32_t> ref;
  EXPECT_FALSE(s.check(ref));
}

TEST(MoeFp8Scales, TensorReferencesOnlyFrom64To196) {
  std::vector<uint32_t> ref;
  EXPECT_TRUE(Set(-60).check(ref));  // largest 57..62: block references in range, tensor references not
  EXPECT_TRUE(ref.empty());
  EXPECT_TRUE(Set(76).check(ref));  // largest 193..198
  EXPECT_TRUE(ref.empty());
  EXPECT_TRUE(Set(74).check(ref));  // largest 191..196
  EXPECT_EQ(ref, (std::vector<uint32_t>{194u | 193u << 8, 192u | 196u << 8, 195u, 191u}));
}

TEST(MoeFp8Scales, RejectsOtherFormats) {
  Set s(0);
  s.ex[1].w3.quant = weights::Quant::Fp8Block128;
  std::vector<uint32_t> ref;
  EXPECT_FALSE(s.check(ref));
}

}  // namespace
}  // namespace dsv4::backend
