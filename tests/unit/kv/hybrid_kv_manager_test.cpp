// HybridKvManager: page tables per pool, window trimming, all-or-nothing allocation, release, and that
// check_integrity() catches corrupted state.
#include "kv/hybrid_kv_manager.h"

#include <gtest/gtest.h>

#include "core/check.h"
#include "kv_test_shapes.h"

namespace dsv4::kv {
namespace {

HybridKvManager make(int64_t window, int64_t compressed, int64_t state) {
  return HybridKvManager(test::layout_of(test::small_shape()),
                         PoolSizes{.n_window_pages = window, .n_compressed_pages = compressed, .n_state_slots = state});
}

void expect_ok(const Status& s) { EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.message()); }

int64_t held_window_pages(const SeqPages& s) {
  int64_t n = 0;
  for (PageId p : s.window) n += p != kNoPage;
  return n;
}

TEST(HybridKvManager, FirstAllocationRegistersWithStateSlot) {
  HybridKvManager kv = make(8, 8, 2);
  EXPECT_FALSE(kv.contains(7));
  EXPECT_EQ(kv.demand(7, 3).state, 1);
  EXPECT_EQ(kv.demand(7, 3).compressed, 0);  // no entry emitted before token 3 is processed
  expect_ok(kv.allocate(7, 3));
  const SeqPages& s = kv.pages(7);
  EXPECT_EQ(s.n_tokens, 3);
  EXPECT_NE(s.state, kNoPage);
  EXPECT_EQ(s.window.size(), 1u);
  EXPECT_TRUE(s.compressed.empty());
  expect_ok(kv.allocate(7, 1));  // token 3 emits CSA entry 0
  EXPECT_EQ(kv.pages(7).compressed.size(), 1u);
  EXPECT_EQ(kv.pool(PoolKind::State).n_used(), 1);
  expect_ok(kv.check_integrity());
}

TEST(HybridKvManager, CompressedPagesGrowEvery256Tokens) {
  HybridKvManager kv = make(16, 8, 1);
  expect_ok(kv.allocate(1, 259));
  EXPECT_EQ(kv.pages(1).compressed.size(), 1u);
  EXPECT_EQ(kv.demand(1, 1).compressed, 1);  // n = 260 emits entry 64, the first of page 1
  expect_ok(kv.allocate(1, 1));
  EXPECT_EQ(kv.pages(1).compressed.size(), 2u);
  expect_ok(kv.check_integrity());
}

TEST(HybridKvManager, WindowKeepsOnlyTheLastWindowAfterTrim) {
  HybridKvManager kv = make(16, 16, 1);
  expect_ok(kv.allocate(1, 300));  // chunk over pages 0, 1
  EXPECT_EQ(held_window_pages(kv.pages(1)), 2);
  kv.trim_window(1);  // window [172, 300) still touches page 0
  EXPECT_EQ(kv.pages(1).window_lo, 172);
  EXPECT_EQ(held_window_pages(kv.pages(1)), 2);
  expect_ok(kv.allocate(1, 100));
  kv.trim_window(1);  // window [272, 400): page 0 released
  EXPECT_EQ(kv.pages(1).window[0], kNoPage);
  EXPECT_EQ(held_window_pages(kv.pages(1)), 1);
  expect_ok(kv.check_integrity(/*require_trimmed=*/true));
  for (int i = 0; i < 1000; ++i) {  // decode across several page boundaries
    expect_ok(kv.allocate(1, 1));
    EXPECT_LE(held_window_pages(kv.pages(1)), 2);
    kv.trim_window(1);
    ASSERT_LE(held_window_pages(kv.pages(1)), 2);
  }
  EXPECT_EQ(kv.pool(PoolKind::Window).n_used(), held_window_pages(kv.pages(1)));
  expect_ok(kv.check_integrity(true));
}

TEST(HybridKvManager, LongChunkHoldsItsPagesUntilTrimmed) {
  HybridKvManager kv = make(16, 16, 1);
  expect_ok(kv.allocate(1, 1000));  // the step writes all 1000 rows
  EXPECT_EQ(held_window_pages(kv.pages(1)), 4);
  auto before = kv.check_integrity(true);
  EXPECT_FALSE(before.ok());  // not yet trimmed
  kv.trim_window(1);  // [872, 1000) lies in page 3
  EXPECT_EQ(held_window_pages(kv.pages(1)), 1);
  expect_ok(kv.check_integrity(true));
}

TEST(HybridKvManager, AllocationIsAllOrNothing) {
  HybridKvManager kv = make(16, 2, 2);
  expect_ok(kv.allocate(1, 300));  // 2 compressed pages: the pool is full
  EXPECT_FALSE(kv.can_allocate(2, 4));
  EXPECT_TRUE(kv.can_allocate(2, 3));  // no entry yet
  const int64_t window_used = kv.pool(PoolKind::Window).n_used();
  Status s = kv.allocate(2, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("compressed"), std::string::npos) << s.message();
  EXPECT_FALSE(kv.contains(2));
  EXPECT_EQ(kv.pool(PoolKind::Window).n_used(), window_used);
  EXPECT_EQ(kv.pool(PoolKind::State).n_used(), 1);
  expect_ok(kv.check_integrity());
}

TEST(HybridKvManager, MaxAllocatableFindsTheLargestChunk) {
  HybridKvManager kv = make(16, 2, 1);
  // compressed_pages(n) <= 2  <=>  n <= 4 + 2 * 256 - 1 = 515
  EXPECT_EQ(kv.max_allocatable(1, 100000), 515);
  EXPECT_EQ(kv.max_allocatable(1, 10), 10);
  EXPECT_EQ(kv.max_allocatable(1, 0), 0);
  expect_ok(kv.allocate(1, 515));
  EXPECT_EQ(kv.max_allocatable(1, 5), 0);
  EXPECT_EQ(kv.max_allocatable(2, 5), 0);  // no state slot left
}

TEST(HybridKvManager, FreeReleasesEverything) {
  HybridKvManager kv = make(16, 16, 2);
  expect_ok(kv.allocate(1, 700));
  expect_ok(kv.allocate(2, 10));
  EXPECT_TRUE(kv.free(1));
  EXPECT_FALSE(kv.free(1));
  EXPECT_FALSE(kv.contains(1));
  EXPECT_EQ(kv.n_tokens(1), 0);
  EXPECT_EQ(kv.pool(PoolKind::Compressed).n_used(), 1);
  EXPECT_EQ(kv.pool(PoolKind::State).n_used(), 1);
  EXPECT_TRUE(kv.free(2));
  for (PoolKind k : {PoolKind::Window, PoolKind::Compressed, PoolKind::State}) EXPECT_EQ(kv.pool(k).n_used(), 0);
  expect_ok(kv.check_integrity(true));
}

TEST(HybridKvManager, FitsAlone) {
  HybridKvManager kv = make(3, 2, 1);
  EXPECT_TRUE(kv.fits_alone(515, 256));
  EXPECT_FALSE(kv.fits_alone(516, 256));   // 3 compressed pages
  EXPECT_TRUE(kv.fits_alone(515, 258));    // window span 128 + 258 -> 3 pages
  EXPECT_FALSE(kv.fits_alone(515, 400));   // window span 528 -> 4 pages
  EXPECT_THROW((void)kv.pages(9), InvariantError);
}

TEST(HybridKvManager, IntegrityCatchesExtraReference) {
  HybridKvManager kv = make(8, 8, 2);
  expect_ok(kv.allocate(1, 10));
  kv.pool_for_test(PoolKind::Compressed).retain(kv.pages(1).compressed[0]);
  Status s = kv.check_integrity();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("refcount 2 but 1"), std::string::npos) << s.message();
}

TEST(HybridKvManager, IntegrityCatchesPageFreedUnderAnOwner) {
  HybridKvManager kv = make(8, 8, 2);
  expect_ok(kv.allocate(1, 10));
  kv.pool_for_test(PoolKind::Window).release(kv.pages(1).window[0]);
  Status s = kv.check_integrity();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("window page 0 has refcount 0 but 1"), std::string::npos) << s.message();
}

TEST(HybridKvManager, IntegrityCatchesLeakedPage) {
  HybridKvManager kv = make(8, 8, 2);
  (void)kv.pool_for_test(PoolKind::State).allocate();  // owned by no sequence
  Status s = kv.check_integrity();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("state page 0 has refcount 1 but 0"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace dsv4::kv
