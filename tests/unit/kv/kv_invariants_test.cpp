// Randomized KV simulations (seeded): steps of chunked allocations over at most max_seqs sequences and
// max_step_tokens tokens, random frees, window trimming after every step. check_integrity() runs after
// every operation; pool usage is compared with counts recomputed from the sequence lengths alone; and the
// window pool, sized by the memory_budget.h formula, must never be the pool that runs out.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "kv/hybrid_kv_manager.h"
#include "kv_test_shapes.h"

namespace dsv4::kv {
namespace {

struct Sim {
  CacheLayout layout;
  Concurrency conc;
  HybridKvManager kv;
  std::map<SeqId, int64_t> len;  // the model: length of every live sequence
  std::mt19937_64 rng;
  SeqId next_id = 0;

  Sim(const CacheLayout& l, const Concurrency& c, int64_t n_compressed, uint64_t seed)
      : layout(l), conc(c), kv(l, with_compressed(l, c, n_compressed)), rng(seed) {}

  static PoolSizes with_compressed(const CacheLayout& l, const Concurrency& c, int64_t n_compressed) {
    auto r = size_pools(l, int64_t{1} << 40, c);
    EXPECT_TRUE(r.ok());
    PoolSizes s = r.value();
    s.n_compressed_pages = n_compressed;
    return s;
  }
  int64_t uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

  // Pages the pools should have in use, from the lengths alone (all sequences trimmed).
  void expect_usage() {
    int64_t window = 0, compressed = 0, seqs = 0;
    const int64_t p = layout.page_tokens();
    for (auto [id, n] : len) {
      if (n == 0) continue;  // created, but its first allocation failed: not registered
      ++seqs;
      const int64_t lo = std::max<int64_t>(0, n - layout.shape.window);
      window += layout.pages_covering(n) - lo / p;
      compressed += layout.compressed_pages(n);
    }
    EXPECT_EQ(kv.pool(PoolKind::Window).n_used(), window);
    EXPECT_EQ(kv.pool(PoolKind::Compressed).n_used(), compressed);
    EXPECT_EQ(kv.pool(PoolKind::State).n_used(), seqs);
  }

  void step() {
    while (static_cast<int64_t>(len.size()) < conc.max_seqs && uniform(0, 3) == 0) len[next_id++] = 0;
    int64_t budget = conc.max_step_tokens;
    std::vector<SeqId> ran;
    for (auto& [id, n] : len) {
      if (budget == 0) break;
      const int64_t k = uniform(0, 3) == 0 ? uniform(1, budget) : 1;
      const PageDemand d = kv.demand(id, k);
      const bool window_short = d.window > kv.pool(PoolKind::Window).n_free();
      const Status s = kv.allocate(id, k);
      ASSERT_FALSE(window_short) << "window pool ran out: the sizing formula is wrong";
      if (s.ok()) {
        n += k;
        budget -= k;
        ran.push_back(id);
      } else {
        ASSERT_EQ(kv.can_allocate(id, k), false);
      }
      const Status i = kv.check_integrity();
      ASSERT_TRUE(i.ok()) << i.message();
    }
    for (SeqId id : ran) kv.trim_window(id);
    for (auto it = len.begin(); it != len.end();) {
      const bool full = kv.max_allocatable(it->first, 1) == 0;
      if (uniform(0, 30) == 0 || (full && uniform(0, 2) == 0)) {
        EXPECT_EQ(kv.free(it->first), it->second > 0);
        it = len.erase(it);
      } else {
        ++it;
      }
    }
    const Status i = kv.check_integrity(/*require_trimmed=*/true);
    ASSERT_TRUE(i.ok()) << i.message();
  }
};

void run(const CacheShape& shape, const Concurrency& c, int64_t n_compressed, uint64_t seed, int steps) {
  Sim sim(test::layout_of(shape), c, n_compressed, seed);
  for (int t = 0; t < steps; ++t) {
    sim.step();
    if (::testing::Test::HasFatalFailure()) return;
    for (auto [id, n] : sim.len) ASSERT_EQ(sim.kv.n_tokens(id), n) << "step " << t;
    sim.expect_usage();
  }
}

TEST(KvInvariants, SmallShapeTightCompressedPool) {
  for (uint64_t seed = 1; seed <= 4; ++seed)
    run(test::small_shape(), Concurrency{.max_seqs = 6, .max_step_tokens = 700}, 12, seed, 3000);
}

TEST(KvInvariants, FlashShapeLongChunks) {
  run(test::flash_shape(), Concurrency{.max_seqs = 4, .max_step_tokens = 2048}, 40, 7, 3000);
}

TEST(KvInvariants, ManyDecodesAcrossPageBoundaries) {
  CacheShape s = test::small_shape();
  s.window = 300;  // window longer than a page
  run(s, Concurrency{.max_seqs = 16, .max_step_tokens = 64}, 64, 11, 4000);
}

}  // namespace
}  // namespace dsv4::kv
