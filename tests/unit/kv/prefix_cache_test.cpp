// HybridKvManager's prefix cache: entries keyed by (parent, page tokens), attaching shares the pages and pins
// the snapshot, LRU eviction takes leaves before parents and frees what only the cache held, allocation counts
// evictable pages as available, and check_integrity() catches a cache reference gone wrong.
#include <gtest/gtest.h>

#include "kv/hybrid_kv_manager.h"
#include "kv_test_shapes.h"

namespace dsv4::kv {
namespace {

void expect_ok(const Status& s) { EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.message()); }

std::vector<int32_t> ids(int64_t n, int32_t base = 1000) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = base + static_cast<int32_t>(i);
  return v;
}

std::span<const int32_t> head(const std::vector<int32_t>& v, int64_t n) { return {v.data(), static_cast<size_t>(n)}; }

struct Cache {
  HybridKvManager kv;
  explicit Cache(int64_t window = 16, int64_t compressed = 16, int64_t state = 8)
      : kv(test::layout_of(test::small_shape()),
           PoolSizes{.n_window_pages = window, .n_compressed_pages = compressed, .n_state_slots = state}) {
    expect_ok(kv.enable_prefix_cache(true));
  }
  // Sequence `seq` computes `tokens` in one chunk and caches every whole page it ends on, as the scheduler does
  // with page-bounded chunks.
  void compute_and_cache(SeqId seq, const std::vector<int32_t>& tokens) {
    const int64_t p = kv.layout().page_tokens();
    for (int64_t end = p; end <= static_cast<int64_t>(tokens.size()); end += p) {
      expect_ok(kv.allocate(seq, end - kv.n_tokens(seq)));
      const PageId snap = kv.take_snapshot_slot();
      ASSERT_NE(snap, kNoPage);
      kv.add_prefix(seq, head(tokens, end), snap);
      kv.trim_window(seq);
    }
    expect_ok(kv.check_integrity());
  }
};

TEST(PrefixCache, LookupMatchesWholePagesByTokens) {
  Cache c;
  const auto a = ids(600);
  c.compute_and_cache(1, a);
  EXPECT_EQ(c.kv.prefix_stats().entries, 2);
  EXPECT_EQ(c.kv.cached_prefix(a, 599), 512);
  EXPECT_EQ(c.kv.cached_prefix(a, 511), 256);  // at most max_tokens
  auto b = a;
  b[300] = 7;  // differs in page 1
  EXPECT_EQ(c.kv.cached_prefix(b, 599), 256);
  b[3] = 7;  // and in page 0
  EXPECT_EQ(c.kv.cached_prefix(b, 599), 0);
  EXPECT_TRUE(c.kv.is_cached(head(a, 512)));
  EXPECT_FALSE(c.kv.is_cached(head(b, 256)));
}

TEST(PrefixCache, AttachSharesPagesAndPinsTheSnapshot) {
  Cache c;
  const auto a = ids(600);
  c.compute_and_cache(1, a);
  const SeqPages owner = c.kv.pages(1);
  auto snap = c.kv.attach_prefix(2, a, 512);
  ASSERT_TRUE(snap.ok()) << snap.message();
  const SeqPages& s = c.kv.pages(2);
  EXPECT_EQ(s.n_tokens, 512);
  EXPECT_EQ(s.compressed, std::vector<PageId>(owner.compressed.begin(), owner.compressed.begin() + 2));
  EXPECT_EQ(s.window.back(), owner.window[1]);
  EXPECT_NE(s.state, owner.state);
  EXPECT_NE(s.state, *snap);
  EXPECT_EQ(c.kv.n_pins(), 1);
  EXPECT_EQ(c.kv.pool(PoolKind::Compressed).refcount(s.compressed[0]), 3);  // seq 1, seq 2, the entry
  expect_ok(c.kv.check_integrity(true));
  expect_ok(c.kv.allocate(2, 40));  // continues in pages of its own
  EXPECT_NE(c.kv.pages(2).window[2], owner.window[2]);
  c.kv.unpin(*snap);
  EXPECT_TRUE(c.kv.free(1));
  EXPECT_TRUE(c.kv.free(2));
  expect_ok(c.kv.check_integrity(true));
  EXPECT_EQ(c.kv.reclaimable(PoolKind::Compressed), 2);  // held by the cache alone now
  c.kv.clear_prefix_cache();
  for (PoolKind k : {PoolKind::Window, PoolKind::Compressed, PoolKind::State})
    EXPECT_EQ(c.kv.pool(k).n_used(), 0) << to_string(k);
}

TEST(PrefixCache, EvictionTakesLeastRecentLeavesFirst) {
  Cache c(16, 6, 8);
  const auto a = ids(512), b = ids(512, 5000);
  c.compute_and_cache(1, a);
  c.compute_and_cache(2, b);
  EXPECT_TRUE(c.kv.free(1));
  EXPECT_TRUE(c.kv.free(2));
  EXPECT_EQ(c.kv.cached_prefix(a, 512), 512);  // a lookup does not count as a use
  EXPECT_EQ(c.kv.pool(PoolKind::Compressed).n_free(), 2);
  EXPECT_TRUE(c.kv.can_allocate(3, 5 * 256));  // 2 free + 4 evictable
  EXPECT_FALSE(c.kv.can_allocate(3, 6 * 256 + 4));
  expect_ok(c.kv.allocate(3, 3 * 256));  // needs one eviction: a's leaf (the least recent)
  EXPECT_EQ(c.kv.prefix_stats().evictions, 1);
  EXPECT_EQ(c.kv.cached_prefix(a, 512), 256);
  EXPECT_EQ(c.kv.cached_prefix(b, 512), 512);
  expect_ok(c.kv.check_integrity());
}

TEST(PrefixCache, AnEntryNeedsItsParent) {
  Cache c;
  const auto a = ids(512);
  expect_ok(c.kv.allocate(1, 512));
  const PageId snap = c.kv.take_snapshot_slot();
  c.kv.add_prefix(1, head(a, 512), snap);  // page 0 is not cached: nothing added, the pin dropped
  EXPECT_EQ(c.kv.prefix_stats().entries, 0);
  EXPECT_EQ(c.kv.n_pins(), 0);
  expect_ok(c.kv.check_integrity());
}

TEST(PrefixCache, LinkEntriesArePassedThroughAndGainTheirState) {
  Cache c;
  const auto a = ids(800);
  expect_ok(c.kv.allocate(1, 768));  // one chunk over three boundaries: links at 256 and 512, state at 768
  c.kv.add_prefix(1, head(a, 256), kNoPage);
  c.kv.add_prefix(1, head(a, 512), kNoPage);
  const PageId snap = c.kv.take_snapshot_slot();
  c.kv.add_prefix(1, head(a, 768), snap);
  expect_ok(c.kv.check_integrity());
  EXPECT_EQ(c.kv.prefix_stats().entries, 3);
  EXPECT_EQ(c.kv.cached_prefix(a, 799), 768);
  EXPECT_EQ(c.kv.cached_prefix(a, 700), 0) << "no resumable entry below 768";
  EXPECT_FALSE(c.kv.is_cached(head(a, 512)));
  EXPECT_FALSE(c.kv.attach_prefix(2, a, 512).ok());
  EXPECT_EQ(c.kv.pool(PoolKind::State).n_used(), 2);  // seq 1 and the snapshot
  const PageId snap2 = c.kv.take_snapshot_slot();  // another pass ends a chunk at 512
  c.kv.add_prefix(1, head(a, 512), snap2);
  EXPECT_EQ(c.kv.prefix_stats().entries, 3);
  EXPECT_TRUE(c.kv.is_cached(head(a, 512)));
  EXPECT_EQ(c.kv.cached_prefix(a, 700), 512);
  EXPECT_EQ(c.kv.n_pins(), 0);
  expect_ok(c.kv.check_integrity());
}

TEST(PrefixCache, IntegrityCatchesACacheReferenceGoneWrong) {
  Cache c;
  const auto a = ids(300);
  c.compute_and_cache(1, a);
  EXPECT_TRUE(c.kv.free(1));
  const PageId page = 0;  // the first compressed page handed out: the entry's
  ASSERT_EQ(c.kv.pool(PoolKind::Compressed).refcount(page), 1);
  c.kv.pool_for_test(PoolKind::Compressed).release(page);
  EXPECT_FALSE(c.kv.check_integrity().ok());
}

TEST(PrefixCache, NeedsTheWindowInsideAPage) {
  auto shape = test::small_shape();
  shape.window = 2 * shape.page_tokens;
  HybridKvManager kv(test::layout_of(shape), PoolSizes{.n_window_pages = 8, .n_compressed_pages = 8, .n_state_slots = 2});
  EXPECT_FALSE(kv.enable_prefix_cache(true).ok());
  EXPECT_FALSE(kv.prefix_cache_enabled());
}

}  // namespace
}  // namespace dsv4::kv
