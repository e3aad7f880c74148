// Cache shapes shared by the kv tests: the released V4-Flash / V4-Pro geometry (spec §1.4, §9.2) and a
// small shape whose pages fill after a few hundred tokens.
#pragma once
#include <gtest/gtest.h>

#include "kv/cache_layout.h"

namespace dsv4::kv::test {

// Flash: 43 main layers (2 SWA, 21 CSA, 20 HCA) + 1 MTP; rows 584 B (FP8 main) and 132 B (FP8 indexer);
// compressor state in the reference's f32 layout: 21 x (64 + 16) KiB + 20 x 512 KiB = 11.64 MiB.
inline CacheShape flash_shape(int64_t indexer_row = 132, int64_t kv_row = 584) {
  return CacheShape{.n_window_layers = 44, .n_csa_layers = 21, .n_hca_layers = 20, .window = 128,
                    .kv_row_bytes = kv_row, .indexer_row_bytes = indexer_row,
                    .state_bytes = 21 * (65536 + 16384) + 20 * 524288};
}

// Pro: 61 main layers (30 CSA, 31 HCA) + 1 MTP.
inline CacheShape pro_shape() {
  return CacheShape{.n_window_layers = 62, .n_csa_layers = 30, .n_hca_layers = 31, .window = 128,
                    .kv_row_bytes = 584, .indexer_row_bytes = 132, .state_bytes = 0};
}

// One layer of each kind, tiny rows: pages are cheap to count by hand.
inline CacheShape small_shape() {
  return CacheShape{.n_window_layers = 3, .n_csa_layers = 1, .n_hca_layers = 1, .window = 128,
                    .kv_row_bytes = 16, .indexer_row_bytes = 8, .state_bytes = 100};
}

inline CacheLayout layout_of(const CacheShape& s) {
  auto r = make_layout(s);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
  return r.ok() ? r.value() : CacheLayout{};
}

}  // namespace dsv4::kv::test
