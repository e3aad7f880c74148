// The paged KV store with packed Fp8Kv compressed entries (the engine's store with the default numerics):
// kv_row_format / cache_shape row bytes (200-B Fp8Kv window and compressed rows at head_dim 128), the views'
// row addresses and RowBlocks (format, stride, rope_dim, one block per compressed page), a layout that does not
// match the format is refused, and the golden tiny model run through the paged Fp8Kv store (prefill chunks, then
// decode steps, windows trimmed between steps) and through a contiguous SequenceState with Fp8Kv rows (its window
// ring wrapping many times) gives bitwise the logits of the contiguous f32 SequenceState.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "core/check.h"
#include "core/numerics.h"
#include "kv/hybrid_kv_manager.h"
#include "kv/memory_budget.h"
#include "runtime/local_model.h"
#include "runtime/paged_cache.h"
#include "testlib/compare.h"

namespace dsv4::runtime {
namespace {

namespace fs = std::filesystem;

fs::path model_dir() { return fs::path(DSV4_TEST_DATA) / "golden" / "v4_tiny_fp8_mtp"; }

model::ModelConfig tiny_config() {
  auto cfg = model::load_config(model_dir());
  EXPECT_TRUE(cfg.ok()) << cfg.message();
  return cfg.ok() ? *cfg : model::ModelConfig{};
}

// A store of the engine's formats for the default numerics, with its manager.
struct Store {
  kv::CacheLayout layout;
  std::unique_ptr<kv::HybridKvManager> mgr;
  std::unique_ptr<PagedKvStore> store;

  explicit Store(const model::ModelConfig& cfg, backend::Numerics n = {}) {
    auto l = kv::make_layout(cache_shape(cfg, index_row_format(n), kv_row_format(n, cfg)));
    EXPECT_TRUE(l.ok()) << l.message();
    layout = *l;
    auto sizes = kv::size_pools(layout, int64_t{64} << 20, {.max_seqs = 2, .max_step_tokens = 64});
    EXPECT_TRUE(sizes.ok()) << sizes.message();
    mgr = std::make_unique<kv::HybridKvManager>(layout, *sizes);
    store = std::make_unique<PagedKvStore>(cfg, layout, *sizes, Device::Host, index_row_format(n),
                                           kv_row_format(n, cfg));
  }
};

TEST(PagedKvStore, KvRowFormatFollowsNumericsAndShape) {
  model::ModelConfig cfg = tiny_config();
  EXPECT_EQ(kv_row_format(backend::Numerics{}, cfg), RowFormat::Fp8Kv);
  EXPECT_EQ(kv_row_format(backend::Numerics::exact_f32(), cfg), RowFormat::F32);
  backend::Numerics bf16;
  bf16.kv_cache = backend::KvCacheDtype::Bf16;
  EXPECT_EQ(kv_row_format(bf16, cfg), RowFormat::F32);
  cfg.qk_rope_head_dim = 32;  // 96 no-RoPE dims: FP8 blocks of 64 do not tile them
  EXPECT_EQ(kv_row_format(backend::Numerics{}, cfg), RowFormat::F32);
}

TEST(PagedKvStore, CacheShapeRowBytes) {
  const model::ModelConfig cfg = tiny_config();
  const kv::CacheShape packed = cache_shape(cfg, RowFormat::Mxfp4, RowFormat::Fp8Kv);
  EXPECT_EQ(packed.kv_row_bytes, 200);
  EXPECT_EQ(packed.indexer_row_bytes, 68);
  EXPECT_EQ(packed.window_row_bytes, 200);
  EXPECT_EQ(packed.window_row(), 200);
  const kv::CacheShape f32 = cache_shape(cfg);
  EXPECT_EQ(f32.kv_row_bytes, 512);
  EXPECT_EQ(f32.window_row(), 512);
  auto lp = kv::make_layout(packed), lf = kv::make_layout(f32);
  ASSERT_TRUE(lp.ok() && lf.ok());
  EXPECT_LT(lp->window_page_bytes, lf->window_page_bytes);  // window rows packed too
  EXPECT_LT(lp->compressed_page_bytes, lf->compressed_page_bytes);
  EXPECT_EQ(lp->csa_block_bytes, 64 * 200);
}

// Rows written through compressed_row (packed by pack_rows_fp8kv) are read back through compressed_rows' blocks:
// 65 CSA entries span two compressed pages.
TEST(PagedKvStore, ViewsHandOutPackedEntries) {
  const model::ModelConfig cfg = tiny_config();
  Store s(cfg);
  ASSERT_TRUE(s.mgr->allocate(7, 263).ok());
  auto view = s.store->view(*s.mgr, 7, 0);
  EXPECT_EQ(view->kv_format(), RowFormat::Fp8Kv);
  EXPECT_EQ(view->index_key_format(), RowFormat::Mxfp4);
  int64_t il = 0;
  while (cfg.compress_ratio(il) != 4) ++il;
  const int64_t n = 65;
  backend::CpuOps ops(backend::Numerics{});
  HostTensor x({n, 128});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = 0.001f * static_cast<float>((i * 37) % 201) - 0.1f;
  ops.kv_round(x, 128, 64, backend::KvCacheDtype::Fp8);
  std::vector<const float*> src;
  std::vector<float*> dst;
  for (int64_t w = 0; w < n; ++w) {
    src.push_back(x.row(w));
    dst.push_back(view->compressed_row(il, w));
  }
  ops.pack_rows_fp8kv(src, dst, 128, 64);
  RowBlocks rows = view->compressed_rows(il, n);
  EXPECT_EQ(rows.format, RowFormat::Fp8Kv);
  EXPECT_EQ(rows.rope_dim, 64);
  EXPECT_EQ(rows.stride, 50);
  EXPECT_EQ(rows.rows_per_block, 64);
  EXPECT_EQ(rows.blocks.size(), 2u);
  std::vector<float> back(128);
  for (int64_t w = 0; w < n; ++w) {
    ASSERT_EQ(rows.row(w), view->compressed_row(il, w)) << w;
    fp8kv_unpack_row(rows.row(w), 128, 64, back.data());
    EXPECT_TRUE(testlib::bitwise_equal(back.data(), x.row(w), 128)) << "entry " << w;
  }
  auto byte_gap = [](const float* a, const float* b) {
    return reinterpret_cast<const char*>(b) - reinterpret_cast<const char*>(a);
  };
  EXPECT_EQ(byte_gap(view->compressed_row(il, 0), view->compressed_row(il, 1)), 200);
  EXPECT_EQ(byte_gap(view->window_row(il, 0), view->window_row(il, 1)), 200);  // window rows: Fp8Kv too
}

TEST(PagedKvStore, RefusesALayoutOfAnotherFormat) {
  const model::ModelConfig cfg = tiny_config();
  auto layout = kv::make_layout(cache_shape(cfg, RowFormat::Mxfp4, RowFormat::F32));
  ASSERT_TRUE(layout.ok());
  auto sizes = kv::size_pools(*layout, int64_t{64} << 20, {.max_seqs = 1, .max_step_tokens = 16});
  ASSERT_TRUE(sizes.ok());
  EXPECT_THROW(PagedKvStore(cfg, *layout, *sizes, Device::Host, RowFormat::Mxfp4, RowFormat::Fp8Kv), InvariantError);
  kv::CacheShape f32_window = cache_shape(cfg, RowFormat::Mxfp4, RowFormat::Fp8Kv);
  f32_window.window_row_bytes = 4 * cfg.head_dim;  // f32 window rows beside Fp8Kv entries: not what the store keeps
  auto l2 = kv::make_layout(f32_window);
  ASSERT_TRUE(l2.ok());
  EXPECT_THROW(PagedKvStore(cfg, *l2, *sizes, Device::Host, RowFormat::Mxfp4, RowFormat::Fp8Kv), InvariantError);
}

// The default numerics through the engine's store (Fp8Kv window rows and entries, Mxfp4 keys) against the
// contiguous SequenceState with f32 rows: the same values, so bitwise the same logits at every position.
TEST(PagedKvStore, ModelThroughPackedStoreEqualsF32SequenceState) {
  auto m = load_local_model(model_dir(), backend::Numerics{});
  ASSERT_TRUE(m.ok()) << m.message();
  LocalModel& lm = *m.value();
  std::ifstream f(model_dir() / "input_ids.json");
  const auto ids = nlohmann::json::parse(f).get<std::vector<int32_t>>();
  const HostTensor full = all_logits(lm, ids);
  Store s(lm.cfg);
  const int64_t n = static_cast<int64_t>(ids.size()), V = lm.cfg.vocab_size, n_decode = 6;
  for (int64_t b = 0; b < n;) {
    const int64_t e = b < n - n_decode ? std::min(n - n_decode, b + 53) : b + 1;
    ASSERT_TRUE(s.mgr->allocate(1, e - b).ok());
    auto view = s.store->view(*s.mgr, 1, b);
    model::ForwardOutput fo;
    lm.transformer->forward(model::single_batch(*view, std::span(ids).subspan(b, e - b)), {.all_logits = true}, fo);
    for (int64_t i = b; i < e; ++i)
      ASSERT_TRUE(testlib::bitwise_equal(fo.logits.row(i - b), full.row(i), static_cast<size_t>(V)))
          << "position " << i;
    s.mgr->trim_window(1);
    ASSERT_TRUE(s.mgr->check_integrity(true).ok());
    b = e;
  }
}

// The same through a contiguous SequenceState with Fp8Kv window rows and entries: its window ring (32 rows) wraps
// over 200+ decode steps, each packing its row into the ring slot it reuses before the attention, after a
// prefill chunk that packs its rows beside the ring.
TEST(PagedKvStore, SequenceStateWithPackedRowsEqualsF32) {
  auto m = load_local_model(model_dir(), backend::Numerics{});
  ASSERT_TRUE(m.ok()) << m.message();
  LocalModel& lm = *m.value();
  ASSERT_LT(lm.cfg.sliding_window, 64);
  std::ifstream f(model_dir() / "input_ids.json");
  const auto ids = nlohmann::json::parse(f).get<std::vector<int32_t>>();
  const HostTensor full = all_logits(lm, ids);
  model::SequenceState seq(lm.cfg, Device::Host, RowFormat::Mxfp4, RowFormat::Fp8Kv);
  const int64_t n = static_cast<int64_t>(ids.size()), V = lm.cfg.vocab_size, first = 45;
  for (int64_t b = 0; b < n;) {
    const int64_t e = b == 0 ? first : b + 1;
    model::ForwardOutput fo;
    lm.transformer->forward(model::single_batch(seq, std::span(ids).subspan(b, e - b)), {.all_logits = true}, fo);
    for (int64_t i = b; i < e; ++i)
      ASSERT_TRUE(testlib::bitwise_equal(fo.logits.row(i - b), full.row(i), static_cast<size_t>(V)))
          << "position " << i;
    b = e;
  }
}

}  // namespace
}  // namespace dsv4::runtime
