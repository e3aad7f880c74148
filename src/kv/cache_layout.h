// CacheShape and CacheLayout: the byte geometry of the paged hybrid KV cache (spec §5.1, §5.7, §9), computed
// from plain sizes so that kv/ links only core. The runtime builds a CacheShape from the ModelConfig and the
// chosen row formats (runtime::cache_shape; model::kv_cache_bytes gives the deployment table's row bytes).
// Window rows and compressed rows may have different sizes (the engine keeps f32 window rows next to packed
// Fp8Kv compressed rows): window_row_bytes, 0 meaning the same as kv_row_bytes.
//
// Three pools, grouped by lifetime rather than by layer kind:
//   * window pool: one page = `page_tokens` window rows of every layer (main + MTP). A sequence holds only
//     the pages that intersect its last `window` positions (plus, during a step, the chunk being run).
//   * compressed pool: one page = the compressed state of `page_tokens` tokens: for every CSA layer
//     page_tokens/4 main rows and as many indexer keys, for every HCA layer page_tokens/128 main rows.
//     These kinds grow in lock step with the context and are never trimmed, so they share a page.
//   * state pool: one slot per sequence = the compressors' tail state (spec §5.7) of every compressor layer.
// Inside a page every layer owns one contiguous block of rows; blocks start at 16-byte aligned offsets
// (the rows themselves are packed, as in FlashMLA's fp8_ds_mla layout).
#pragma once
#include <cstdint>
#include <string>

#include "core/result.h"

namespace dsv4::kv {

inline constexpr int64_t kBlockAlign = 16;  // bytes; every layer block in a page starts on this boundary

struct CacheShape {
  int64_t n_window_layers = 0;    // layers with a sliding window: all main layers + MTP layers
  int64_t n_csa_layers = 0;       // ratio-4 layers: compressed rows + indexer keys
  int64_t n_hca_layers = 0;       // ratio-128 layers: compressed rows
  int64_t window = 128;           // sliding_window W
  int64_t csa_ratio = 4;
  int64_t hca_ratio = 128;
  int64_t kv_row_bytes = 0;       // one compressed KV row (584 for FP8 with d=512, r=64; 1024 bf16; 2048 f32)
  int64_t indexer_row_bytes = 0;  // one indexer key row (132 FP8, 68 MXFP4, 256 bf16, 512 f32)
  int64_t state_bytes = 0;        // compressor tail state of one sequence, all compressor layers together
  int64_t page_tokens = 256;      // tokens covered by one page of any pool
  int64_t window_row_bytes = 0;   // one window KV row; 0 = kv_row_bytes (the engine: 4·head_dim, f32 rows)

  int64_t window_row() const { return window_row_bytes > 0 ? window_row_bytes : kv_row_bytes; }
};

struct CacheLayout {
  CacheShape shape;
  int64_t csa_rows_per_page = 0;     // page_tokens / csa_ratio (64)
  int64_t hca_rows_per_page = 0;     // page_tokens / hca_ratio (2)
  // Window page: block i (window layer i) holds rows of positions [page*P, page*P + P), row pos % P.
  int64_t window_block_bytes = 0;    // align(P * window_row())
  int64_t window_page_bytes = 0;     // n_window_layers * window_block_bytes
  // Compressed page: CSA main blocks, then CSA indexer blocks, then HCA blocks. Row r of a block is entry
  // page * rows_per_page + r of that layer.
  int64_t csa_block_bytes = 0;       // align(csa_rows_per_page * kv_row_bytes)
  int64_t indexer_block_bytes = 0;   // align(csa_rows_per_page * indexer_row_bytes)
  int64_t hca_block_bytes = 0;       // align(hca_rows_per_page * kv_row_bytes)
  int64_t compressed_page_bytes = 0;
  int64_t state_slot_bytes = 0;      // align(state_bytes)

  int64_t page_tokens() const { return shape.page_tokens; }
  // Byte offsets of a layer's block inside its page (j counts layers of that kind, 0-based).
  int64_t window_offset(int64_t i) const { return i * window_block_bytes; }
  int64_t csa_offset(int64_t j) const { return j * csa_block_bytes; }
  int64_t indexer_offset(int64_t j) const {
    return shape.n_csa_layers * csa_block_bytes + j * indexer_block_bytes;
  }
  int64_t hca_offset(int64_t j) const {
    return shape.n_csa_layers * (csa_block_bytes + indexer_block_bytes) + j * hca_block_bytes;
  }
  bool has_compressed() const { return compressed_page_bytes > 0; }

  // Compressed pages a sequence of n_tokens needs: the pages holding at least one emitted entry. Entry w of
  // ratio m is emitted once token (w+1)*m - 1 is processed, so page k is needed from token k*P + m_min on.
  int64_t compressed_pages(int64_t n_tokens) const;
  // Window page index of a position, and the number of pages needed to cover positions [0, n_tokens).
  int64_t page_of(int64_t pos) const { return pos / shape.page_tokens; }
  int64_t pages_covering(int64_t n_tokens) const {
    return (n_tokens + shape.page_tokens - 1) / shape.page_tokens;
  }
  // Worst case over alignments of the pages intersecting `span` consecutive positions (span >= 1).
  int64_t pages_for_span(int64_t span) const {
    return (span + shape.page_tokens - 2) / shape.page_tokens + 1;
  }
};

// Validates the shape (positive sizes, page_tokens a multiple of every present ratio) and derives the
// layout. Errors name the field, its value and what is allowed.
Result<CacheLayout> make_layout(const CacheShape& shape);

// Growing bytes per token of context, without block padding: Σ_csa (kv_row + idx_row)/4 + Σ_hca kv_row/128
// (spec §9.2: 3,850.25 B for Flash with FP8 rows, 3,514.25 B with an MXFP4 indexer).
double growing_bytes_per_token(const CacheShape& shape);

// Multi-line description of the page geometry (bytes per page per pool, per-layer block sizes).
std::string describe(const CacheLayout& layout);

}  // namespace dsv4::kv
