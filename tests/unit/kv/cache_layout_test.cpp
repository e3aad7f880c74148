// Page geometry against the spec's figures (§9.2): a 256-token page of CSA rows is 64 rows x 584 B per CSA
// layer, of indexer keys 64 x 132 B (FP8) or 64 x 68 B (MXFP4), of HCA rows 2 x 584 B; Flash grows by
// 3,850.25 / 3,514.25 / 6,880 B per token for FP8+FP8 / FP8+FP4 / bf16 rows, Pro by 5,511.44 B.
#include "kv/cache_layout.h"

#include <gtest/gtest.h>

#include "kv_test_shapes.h"

namespace dsv4::kv {
namespace {

using test::flash_shape;
using test::layout_of;

TEST(CacheLayout, FlashFp8RowsPerPage) {
  const CacheLayout l = layout_of(flash_shape());
  EXPECT_EQ(l.csa_rows_per_page, 64);
  EXPECT_EQ(l.hca_rows_per_page, 2);
  EXPECT_EQ(l.csa_block_bytes, 64 * 584);
  EXPECT_EQ(l.indexer_block_bytes, 64 * 132);
  EXPECT_EQ(l.hca_block_bytes, 2 * 584);
  EXPECT_EQ(l.window_block_bytes, 256 * 584);
  EXPECT_EQ(l.window_page_bytes, 44 * 256 * 584);  // 6,578,176 B
  EXPECT_EQ(l.compressed_page_bytes, 21 * 64 * 584 + 21 * 64 * 132 + 20 * 2 * 584);
  EXPECT_EQ(l.compressed_page_bytes, 985664);
  EXPECT_EQ(l.state_slot_bytes, 12206080);  // 11.64 MiB, spec §9.2
}

TEST(CacheLayout, FlashBytesPerTokenMatchSpec) {
  // No padding for the Flash rows: a page is exactly 256 tokens of the spec's per-token bytes.
  const CacheLayout fp8 = layout_of(flash_shape(132));
  EXPECT_DOUBLE_EQ(growing_bytes_per_token(fp8.shape), 3850.25);
  EXPECT_DOUBLE_EQ(double(fp8.compressed_page_bytes) / 256, 3850.25);
  const CacheLayout fp4 = layout_of(flash_shape(68));
  EXPECT_EQ(fp4.indexer_block_bytes, 64 * 68);
  EXPECT_DOUBLE_EQ(growing_bytes_per_token(fp4.shape), 3514.25);
  EXPECT_DOUBLE_EQ(double(fp4.compressed_page_bytes) / 256, 3514.25);
  const CacheLayout bf16 = layout_of(flash_shape(256, 1024));
  EXPECT_DOUBLE_EQ(growing_bytes_per_token(bf16.shape), 6880.0);
  EXPECT_EQ(bf16.compressed_page_bytes, 6880 * 256);
}

TEST(CacheLayout, ProBytesPerToken) {
  EXPECT_DOUBLE_EQ(growing_bytes_per_token(test::pro_shape()), 30 * 179 + 31 * 4.5625);
}

TEST(CacheLayout, BlockOffsetsTileThePage) {
  const CacheLayout l = layout_of(flash_shape());
  EXPECT_EQ(l.csa_offset(1), 64 * 584);
  EXPECT_EQ(l.indexer_offset(0), 21 * 64 * 584);
  EXPECT_EQ(l.hca_offset(0), 21 * (64 * 584 + 64 * 132));
  EXPECT_EQ(l.hca_offset(19) + l.hca_block_bytes, l.compressed_page_bytes);
  EXPECT_EQ(l.window_offset(43) + l.window_block_bytes, l.window_page_bytes);
}

TEST(CacheLayout, BlocksAreAligned) {
  CacheShape s = test::small_shape();
  s.kv_row_bytes = 5;  // HCA block: 2 rows x 5 B = 10 B, padded to 16
  const CacheLayout l = layout_of(s);
  EXPECT_EQ(l.hca_block_bytes, 16);
  EXPECT_EQ(l.csa_block_bytes, 64 * 5);  // 320, already aligned
  EXPECT_EQ(l.state_slot_bytes, 112);    // 100 -> 112
  EXPECT_EQ(l.hca_offset(0) % kBlockAlign, 0);
}

TEST(CacheLayout, CompressedPagesFollowEmission) {
  const CacheLayout l = layout_of(flash_shape());
  // Entry 0 of a CSA layer is emitted at token 3 (n_tokens 4); page 1 starts with entry 64 at n_tokens 260.
  EXPECT_EQ(l.compressed_pages(0), 0);
  EXPECT_EQ(l.compressed_pages(3), 0);
  EXPECT_EQ(l.compressed_pages(4), 1);
  EXPECT_EQ(l.compressed_pages(259), 1);
  EXPECT_EQ(l.compressed_pages(260), 2);
  EXPECT_EQ(l.compressed_pages(1 << 20), 4096);
  CacheShape hca_only = flash_shape();
  hca_only.n_csa_layers = 0;
  const CacheLayout h = layout_of(hca_only);
  EXPECT_EQ(h.compressed_pages(127), 0);
  EXPECT_EQ(h.compressed_pages(128), 1);
  EXPECT_EQ(h.compressed_pages(383), 1);
  EXPECT_EQ(h.compressed_pages(384), 2);
  CacheShape swa_only = hca_only;
  swa_only.n_hca_layers = 0;
  EXPECT_FALSE(layout_of(swa_only).has_compressed());
  EXPECT_EQ(layout_of(swa_only).compressed_pages(100000), 0);
}

TEST(CacheLayout, WindowPageMath) {
  const CacheLayout l = layout_of(flash_shape());
  EXPECT_EQ(l.pages_covering(0), 0);
  EXPECT_EQ(l.pages_covering(256), 1);
  EXPECT_EQ(l.pages_covering(257), 2);
  EXPECT_EQ(l.pages_for_span(1), 1);
  EXPECT_EQ(l.pages_for_span(128), 2);  // a 128-token window straddles at most 2 pages
  EXPECT_EQ(l.pages_for_span(257), 2);
  EXPECT_EQ(l.pages_for_span(258), 3);
}

TEST(CacheLayout, RejectsInvalidShapes) {
  CacheShape s = flash_shape();
  s.page_tokens = 192;  // not a multiple of the HCA ratio 128
  auto r = make_layout(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("hca_ratio"), std::string::npos) << r.message();
  s = flash_shape();
  s.n_window_layers = 0;
  r = make_layout(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("n_window_layers = 0"), std::string::npos) << r.message();
  s = flash_shape();
  s.indexer_row_bytes = 0;
  EXPECT_FALSE(make_layout(s).ok());
}

// The engine's Flash store: f32 window rows (4 * 512 B) next to packed 584 B compressed rows. The window pool
// grows with the window row; the compressed pool and the bytes per token do not change.
TEST(CacheLayout, WindowRowBytesSizeOnlyTheWindowPool) {
  CacheShape s = flash_shape(68);
  s.window_row_bytes = 2048;
  const CacheLayout l = layout_of(s), same = layout_of(flash_shape(68));
  EXPECT_EQ(s.window_row(), 2048);
  EXPECT_EQ(flash_shape(68).window_row(), 584);  // 0: the compressed row size
  EXPECT_EQ(l.window_block_bytes, 256 * 2048);
  EXPECT_EQ(l.window_page_bytes, 44 * 256 * 2048);
  EXPECT_EQ(l.csa_block_bytes, 64 * 584);
  EXPECT_EQ(l.hca_block_bytes, 2 * 584);
  EXPECT_EQ(l.compressed_page_bytes, same.compressed_page_bytes);
  EXPECT_DOUBLE_EQ(growing_bytes_per_token(l.shape), 3514.25);
  const std::string d = describe(l);
  EXPECT_NE(d.find("window 2048 B, compressed kv 584 B"), std::string::npos) << d;
  s.window_row_bytes = -1;
  auto r = make_layout(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("window_row_bytes = -1"), std::string::npos) << r.message();
}

TEST(CacheLayout, DescribeNamesPageBytes) {
  const std::string d = describe(layout_of(flash_shape()));
  EXPECT_NE(d.find("985664"), std::string::npos) << d;
  EXPECT_NE(d.find("6578176"), std::string::npos) << d;
  EXPECT_NE(d.find("3850.25"), std::string::npos) << d;
}

}  // namespace
}  // namespace dsv4::kv
