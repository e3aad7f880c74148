// Philox4x32-10 against the Random123 known-answer vectors (tests/kat_vectors of DEShawResearch/random123,
// the three "philox4x32 10" lines), and the uniform draw's range and mean.
#include <gtest/gtest.h>

#include <set>

#include "sampling/philox.h"

namespace dsv4::sampling {
namespace {

TEST(Philox, KnownAnswerVectors) {
  using Out = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (Out{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (Out{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (Out{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, UniformIsAPureFunctionOfSeedAndStep) {
  EXPECT_EQ(philox_uniform(7, 3), philox_uniform(7, 3));
  EXPECT_NE(philox_uniform(7, 3), philox_uniform(7, 4));
  EXPECT_NE(philox_uniform(7, 3), philox_uniform(8, 3));
  EXPECT_NE(philox_uniform(7, 3, 0), philox_uniform(7, 3, 1));
  // The high words of seed and step matter too.
  EXPECT_NE(philox_uniform(7, 3), philox_uniform(7 + (uint64_t{1} << 32), 3));
  EXPECT_NE(philox_uniform(7, 3), philox_uniform(7, 3 + (uint64_t{1} << 32)));
}

TEST(Philox, UniformRangeAndMoments) {
  const int n = 200000;
  double sum = 0.0, sum_sq = 0.0;
  std::set<double> distinct;
  for (int i = 0; i < n; ++i) {
    const double u = philox_uniform(99, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_sq += u * u;
    distinct.insert(u);
  }
  // Mean 1/2 with standard error sqrt(1/12 / n) ~ 6.5e-4; variance 1/12. Bounds at ~6 sigma.
  EXPECT_NEAR(sum / n, 0.5, 4e-3);
  EXPECT_NEAR(sum_sq / n - (sum / n) * (sum / n), 1.0 / 12.0, 3e-3);
  EXPECT_EQ(distinct.size(), static_cast<size_t>(n));
}

}  // namespace
}  // namespace dsv4::sampling
