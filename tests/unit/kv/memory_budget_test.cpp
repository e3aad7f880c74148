// Budget → pool sizes, worked by hand for V4-Flash with FP8 rows (see memory_budget.h for the formulas).
#include "kv/memory_budget.h"

#include <gtest/gtest.h>

#include "kv_test_shapes.h"

namespace dsv4::kv {
namespace {

using test::flash_shape;
using test::layout_of;

TEST(MemoryBudget, FlashEightyGiB) {
  const CacheLayout l = layout_of(flash_shape());
  const Concurrency c{.max_seqs = 64, .max_step_tokens = 8192};
  const int64_t budget = int64_t{80} << 30;
  auto r = size_pools(l, budget, c);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->n_state_slots, 64);
  EXPECT_EQ(r->n_window_pages, 64 * 3 + 8192 / 256);  // 224
  // 85,899,345,920 - 224 x 6,578,176 - 64 x 12,206,080 = 83,644,645,376 B; / 985,664 = 84,861 pages.
  EXPECT_EQ(r->n_compressed_pages, 84861);
  EXPECT_EQ(tokens_that_fit(l, *r), 84861 * 256);
  EXPECT_LE(pool_bytes(l, *r), budget);
  EXPECT_GT(pool_bytes(l, *r) + l.compressed_page_bytes, budget);  // the remainder is less than a page
  auto t = tokens_that_fit(l, budget, c);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, 21724416);  // ~20.7M tokens of context
}

TEST(MemoryBudget, WindowPagesRoundUpStepTokens) {
  const CacheLayout l = layout_of(flash_shape());
  auto r = size_pools(l, int64_t{80} << 30, Concurrency{.max_seqs = 1, .max_step_tokens = 257});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->n_window_pages, 3 + 2);
}

TEST(MemoryBudget, TooSmallBudgetNamesTheBytes) {
  const CacheLayout l = layout_of(flash_shape());
  const Concurrency c{.max_seqs = 64, .max_step_tokens = 8192};
  const int64_t fixed = 224 * l.window_page_bytes + 64 * l.state_slot_bytes;
  auto r = size_pools(l, fixed + l.compressed_page_bytes - 1, c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("too small"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find(std::to_string(fixed + l.compressed_page_bytes)), std::string::npos) << r.message();
  auto ok = size_pools(l, fixed + l.compressed_page_bytes, c);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->n_compressed_pages, 1);
}

TEST(MemoryBudget, ResolveBytesAndFraction) {
  EXPECT_EQ(resolve_budget(BudgetBytes{12345}, 0).value(), 12345);
  EXPECT_EQ(resolve_budget(BudgetFraction{0.5}, 1000).value(), 500);
  EXPECT_EQ(resolve_budget(BudgetFraction{1.0}, 1000).value(), 1000);
  EXPECT_FALSE(resolve_budget(BudgetFraction{0.0}, 1000).ok());
  EXPECT_FALSE(resolve_budget(BudgetFraction{1.5}, 1000).ok());
  EXPECT_FALSE(resolve_budget(BudgetFraction{0.9}, 0).ok());
  EXPECT_FALSE(resolve_budget(BudgetBytes{0}, 1000).ok());
}

TEST(MemoryBudget, NoCompressorLayersMeansUnlimitedTokens) {
  CacheShape s = flash_shape();
  s.n_csa_layers = s.n_hca_layers = 0;
  s.state_bytes = 0;
  const CacheLayout l = layout_of(s);
  auto r = size_pools(l, int64_t{1} << 30, Concurrency{.max_seqs = 4, .max_step_tokens = 256});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->n_compressed_pages, 0);
  EXPECT_EQ(tokens_that_fit(l, *r), kUnlimitedTokens);
}

TEST(MemoryBudget, DescribeReportsTokensThatFit) {
  const CacheLayout l = layout_of(flash_shape());
  const Concurrency c{.max_seqs = 64, .max_step_tokens = 8192};
  auto r = size_pools(l, int64_t{80} << 30, c);
  ASSERT_TRUE(r.ok());
  const std::string d = describe(l, *r, c);
  EXPECT_NE(d.find("tokens that fit: 21724416"), std::string::npos) << d;
  EXPECT_NE(d.find("compressed 84861 pages"), std::string::npos) << d;
}

}  // namespace
}  // namespace dsv4::kv
