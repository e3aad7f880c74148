// Packed Fp8Kv compressed entries on the CPU reference: CpuOps::pack_rows_fp8kv writes fp8kv_pack_row's bytes,
// sparse_attention over Fp8Kv entries and window rows equals the same call over f32 rows holding the same
// (FP8-KV-rounded) values bit for bit (HCA-style all entries and CSA-style selections, several chunks, multi-row
// blocks), Mxfp4 entries are rejected, and SequenceState with Fp8Kv rows hands out packed rows (format, stride,
// rope_dim; window rows too).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/check.h"
#include "core/numerics.h"
#include "model/config.h"
#include "model/sequence_state.h"
#include "testlib/compare.h"
#include "testlib/weights_builder.h"

namespace dsv4 {
namespace {

using backend::CpuOps;
using backend::Numerics;

// n rows of dim values rounded by the official numerics' KV rounding (bf16, FP8 fake-quant of the no-RoPE dims),
// with a different magnitude per row; one row all zero.
HostTensor kv_rounded_rows(CpuOps& ops, int64_t n, int64_t dim, int64_t rope, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  HostTensor x({n, dim});
  for (int64_t r = 0; r < n; ++r) {
    const float mag = r == 1 ? 0.0f : std::ldexp(1.0f, static_cast<int>(r % 9) - 4);
    for (int64_t i = 0; i < dim; ++i) x.row(r)[i] = uni(rng) * mag;
  }
  ops.kv_round(x, dim, rope, backend::KvCacheDtype::Fp8);
  return x;
}

// The same rows twice as RowBlocks of rows_per_block rows: f32 rows with a stride of dim + 3 floats, and packed
// Fp8Kv rows (written by pack_rows_fp8kv) with a stride of their row bytes / 4.
struct TwoForms {
  std::vector<std::vector<float>> f32_store, packed_store;
  RowBlocks f32, packed;
};

TwoForms two_forms(CpuOps& ops, const HostTensor& x, int64_t rope, int64_t rows_per_block) {
  const int64_t n = x.dim(0), dim = x.dim(1), words = fp8kv_row_bytes(dim, rope) / 4;
  TwoForms t;
  t.f32 = {.rows_per_block = rows_per_block, .stride = dim + 3};
  t.packed = {.rows_per_block = rows_per_block, .stride = words, .format = RowFormat::Fp8Kv, .rope_dim = rope};
  std::vector<const float*> src;
  std::vector<float*> dst;
  for (int64_t b = 0; b * rows_per_block < n; ++b) {
    t.f32_store.emplace_back(static_cast<size_t>(rows_per_block * (dim + 3)), -7.0f);
    t.packed_store.emplace_back(static_cast<size_t>(rows_per_block * words), -7.0f);
  }
  for (size_t b = 0; b < t.f32_store.size(); ++b) {
    t.f32.blocks.push_back(t.f32_store[b].data());
    t.packed.blocks.push_back(t.packed_store[b].data());
  }
  for (int64_t r = 0; r < n; ++r) {
    std::copy(x.row(r), x.row(r) + dim, const_cast<float*>(t.f32.row(r)));
    src.push_back(x.row(r));
    dst.push_back(const_cast<float*>(t.packed.row(r)));
  }
  ops.pack_rows_fp8kv(src, dst, dim, rope);
  return t;
}

TEST(CpuOps, PackRowsFp8KvWritesCoreRows) {
  CpuOps ops(Numerics{});
  HostTensor x = kv_rounded_rows(ops, 5, 512, 64, 3);
  TwoForms t = two_forms(ops, x, 64, 2);
  EXPECT_EQ(t.packed.stride, 146);  // 584 B
  std::vector<uint8_t> want(584);
  std::vector<float> back(512);
  for (int64_t r = 0; r < 5; ++r) {
    fp8kv_pack_row(x.row(r), 512, 64, want.data());
    EXPECT_EQ(std::memcmp(t.packed.row(r), want.data(), want.size()), 0) << "row " << r;
    fp8kv_unpack_row(t.packed.row(r), 512, 64, back.data());
    EXPECT_TRUE(testlib::bitwise_equal(back.data(), x.row(r), 512)) << "row " << r;
  }
  std::vector<const float*> src{x.row(0)};
  std::vector<float*> dst{t.packed_store[0].data()};
  EXPECT_THROW(ops.pack_rows_fp8kv(src, dst, 512, 32), InvariantError);  // 480 no-RoPE dims: not blocks of 64
  EXPECT_THROW(ops.pack_rows_fp8kv(src, {}, 512, 64), InvariantError);
}

// Two chunks (sequences) of 2 and 3 queries, 2 heads of dim 128 (rope 64), window rows and compressed entries in
// blocks of 3 rows; official numerics (bf16 activations).
struct AttentionCase {
  CpuOps ops{Numerics{}};
  static constexpr int64_t kHeads = 2, kDim = 128, kRope = 64;
  HostTensor entries0, entries1, windows, q;
  TwoForms f0, f1, fw;
  std::vector<std::vector<const float*>> window_lists, packed_window_lists;
  std::vector<float> sink{0.25f, -1.0f};

  AttentionCase() {
    entries0 = kv_rounded_rows(ops, 11, kDim, kRope, 5);
    entries1 = kv_rounded_rows(ops, 7, kDim, kRope, 6);
    f0 = two_forms(ops, entries0, kRope, 3);
    f1 = two_forms(ops, entries1, kRope, 3);
    windows = kv_rounded_rows(ops, 4, kDim, kRope, 7);
    fw = two_forms(ops, windows, kRope, 4);
    q = HostTensor({5, kHeads * kDim});
    std::mt19937_64 rng(8);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    for (int64_t i = 0; i < q.numel(); ++i) q.data()[i] = round_bf16(uni(rng));
    for (int64_t i = 0; i < 5; ++i) {
      window_lists.push_back({windows.row(i % 4), windows.row((i + 1) % 4)});
      packed_window_lists.push_back({fw.packed.row(i % 4), fw.packed.row((i + 1) % 4)});
    }
  }
  // out for queries with n_compressed[i] entries each; packed: the Fp8Kv blocks instead of the f32 ones;
  // packed_window: the window rows as Fp8Kv rows (window_rope_dim: their RoPE width as the call states it).
  HostTensor run(const std::vector<int64_t>& n_compressed, const IndexTensor* selected, bool packed,
                 bool packed_window = false, int64_t window_rope_dim = kRope) {
    std::vector<backend::AttentionQuery> aq;
    for (int64_t i = 0; i < 5; ++i)
      aq.push_back({.q = q.row(i),
                    .window = (packed_window ? packed_window_lists : window_lists)[static_cast<size_t>(i)],
                    .n_compressed = n_compressed[static_cast<size_t>(i)]});
    std::vector<backend::SeqEntries> seqs{{.row_begin = 0, .n_rows = 2, .entries = packed ? f0.packed : f0.f32},
                                          {.row_begin = 2, .n_rows = 3, .entries = packed ? f1.packed : f1.f32}};
    auto sink_w = testlib::f32_weight(sink, {kHeads});
    HostTensor out;
    ops.sparse_attention({.queries = aq, .seqs = seqs, .selected = selected,
                          .window_format = packed_window ? RowFormat::Fp8Kv : RowFormat::F32,
                          .window_rope_dim = packed_window ? window_rope_dim : 0},
                         kHeads, kDim, sink_w, 0.088f, out);
    return out;
  }
};

TEST(CpuOps, SparseAttentionOverFp8KvEntriesEqualsF32RowsHcaStyle) {
  AttentionCase c;
  const std::vector<int64_t> n{10, 11, 0, 5, 7};  // all visible entries, ascending
  HostTensor want = c.run(n, nullptr, false), got = c.run(n, nullptr, true);
  ASSERT_EQ(got.numel(), 5 * 2 * 128);
  EXPECT_TRUE(testlib::bitwise_equal(got.data(), want.data(), static_cast<size_t>(want.numel())));
}

TEST(CpuOps, SparseAttentionOverFp8KvEntriesEqualsF32RowsCsaStyle) {
  AttentionCase c;
  const std::vector<int64_t> n{4, 2, 3, 1, 4};
  IndexTensor sel(Device::Host, 5, 4);
  // Selections per query (-1 past its count); entries repeat across queries of one chunk.
  const int32_t picks[20] = {10, 0, 3, 4, 9, 1, -1, -1, 6, 0, 2, -1, 1, -1, -1, -1, 5, 6, 0, 3};
  std::copy(picks, picks + 20, sel.data());
  HostTensor want = c.run(n, &sel, false), got = c.run(n, &sel, true);
  EXPECT_TRUE(testlib::bitwise_equal(got.data(), want.data(), static_cast<size_t>(want.numel())));
}

// Window rows as Fp8Kv rows (the FP8 KV cache's window ring), with f32 or packed entries: bitwise the f32 rows'
// output; a RoPE width that leaves no-RoPE dims outside blocks of 64 is refused.
TEST(CpuOps, SparseAttentionOverFp8KvWindowRowsEqualsF32Rows) {
  AttentionCase c;
  const std::vector<int64_t> n{10, 11, 0, 5, 7};
  HostTensor want = c.run(n, nullptr, false);
  HostTensor got = c.run(n, nullptr, false, true), both = c.run(n, nullptr, true, true);
  ASSERT_EQ(got.numel(), want.numel());
  EXPECT_TRUE(testlib::bitwise_equal(got.data(), want.data(), static_cast<size_t>(want.numel())));
  EXPECT_TRUE(testlib::bitwise_equal(both.data(), want.data(), static_cast<size_t>(want.numel())));
  // The packed bytes read as f32 rows give another output: the format is what makes them equal.
  c.packed_window_lists.swap(c.window_lists);
  HostTensor misread = c.run(n, nullptr, false);
  EXPECT_FALSE(testlib::bitwise_equal(misread.data(), want.data(), static_cast<size_t>(want.numel())));
  c.packed_window_lists.swap(c.window_lists);
  try {
    c.run(n, nullptr, false, true, 32);
    FAIL() << "Fp8Kv window rows with 96 no-RoPE dims were accepted";
  } catch (const InvariantError& e) {
    EXPECT_NE(std::string(e.what()).find("window rows"), std::string::npos) << e.what();
  }
}

TEST(CpuOps, SparseAttentionRejectsMxfp4Entries) {
  AttentionCase c;
  c.f1.packed.format = RowFormat::Mxfp4;
  try {
    c.run({1, 1, 1, 1, 1}, nullptr, true);
    FAIL() << "Mxfp4 entries were accepted";
  } catch (const InvariantError& e) {
    EXPECT_NE(std::string(e.what()).find("Mxfp4"), std::string::npos) << e.what();
  }
  c.f1.packed.format = RowFormat::Fp8Kv;
  c.f1.packed.rope_dim = 32;  // 96 no-RoPE dims: not blocks of 64
  EXPECT_THROW(c.run({1, 1, 1, 1, 1}, nullptr, true), InvariantError);
}

model::ModelConfig tiny_config() {
  auto cfg = model::load_config(std::filesystem::path(DSV4_TEST_DATA) / "golden" / "v4_tiny_fp8_mtp");
  EXPECT_TRUE(cfg.ok()) << cfg.message();
  return cfg.ok() ? *cfg : model::ModelConfig{};
}

// SequenceState with Fp8Kv entries: compressed_row points at 200-B packed rows (head_dim 128, rope 64),
// compressed_rows says so, and rows packed through those pointers decode to the values written.
TEST(SequenceState, Fp8KvCompressedRows) {
  const model::ModelConfig cfg = tiny_config();
  ASSERT_EQ(cfg.head_dim, 128);
  ASSERT_EQ(cfg.qk_rope_head_dim, 64);
  model::SequenceState s(cfg, Device::Host, RowFormat::Mxfp4, RowFormat::Fp8Kv);
  EXPECT_EQ(s.kv_format(), RowFormat::Fp8Kv);
  int64_t il = 0;
  while (cfg.compress_ratio(il) == 0) ++il;
  CpuOps ops(Numerics{});
  HostTensor x = kv_rounded_rows(ops, 6, 128, 64, 9);
  std::vector<const float*> src;
  std::vector<float*> dst;
  for (int64_t w = 5; w >= 0; --w) {  // last first: the store reaches its final size on the first row
    src.push_back(x.row(w));
    dst.push_back(s.compressed_row(il, w));
  }
  ops.pack_rows_fp8kv(src, dst, 128, 64);
  auto byte_gap = [](const float* a, const float* b) {
    return reinterpret_cast<const char*>(b) - reinterpret_cast<const char*>(a);
  };
  EXPECT_EQ(byte_gap(s.compressed_row(il, 0), s.compressed_row(il, 1)), 200);
  RowBlocks rows = s.compressed_rows(il, 6);
  EXPECT_EQ(rows.format, RowFormat::Fp8Kv);
  EXPECT_EQ(rows.rope_dim, 64);
  EXPECT_EQ(rows.stride, 50);
  std::vector<float> back(128);
  for (int64_t w = 0; w < 6; ++w) {
    EXPECT_EQ(rows.row(w), s.compressed_row(il, w));
    fp8kv_unpack_row(rows.row(w), 128, 64, back.data());
    EXPECT_TRUE(testlib::bitwise_equal(back.data(), x.row(w), 128)) << "entry " << w;
  }
  // The F32 default keeps f32 rows; window rows are in the entries' format in both.
  model::SequenceState f(cfg);
  EXPECT_EQ(f.kv_format(), RowFormat::F32);
  EXPECT_EQ(f.compressed_rows(il, 2).format, RowFormat::F32);
  EXPECT_EQ(f.compressed_rows(il, 2).stride, 128);
  EXPECT_EQ(byte_gap(f.window_row(il, 0), f.window_row(il, 1)), 4 * 128);
  EXPECT_EQ(byte_gap(s.window_row(il, 0), s.window_row(il, 1)), 200);
  EXPECT_EQ(byte_gap(s.window_row(il, 0), s.window_row(il, cfg.sliding_window)), 0);  // a ring
}

TEST(SequenceState, Fp8KvNeedsNoRopeDimsInBlocksOf64) {
  model::ModelConfig cfg = tiny_config();
  cfg.qk_rope_head_dim = 32;  // 96 no-RoPE dims
  EXPECT_THROW(model::SequenceState(cfg, Device::Host, RowFormat::F32, RowFormat::Fp8Kv), InvariantError);
  EXPECT_THROW(model::SequenceState(cfg, Device::Host, RowFormat::F32, RowFormat::Mxfp4), InvariantError);
  model::SequenceState ok(cfg, Device::Host, RowFormat::F32, RowFormat::F32);
  EXPECT_EQ(ok.kv_format(), RowFormat::F32);
}

}  // namespace
}  // namespace dsv4
