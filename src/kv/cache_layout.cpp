// Validation of CacheShape and derivation of the page geometry (see cache_layout.h).
#include "kv/cache_layout.h"

#include <cstdio>
#include <sstream>

namespace dsv4::kv {
namespace {

int64_t align_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

Error field_error(const char* field, int64_t value, const char* allowed) {
  return make_error(std::string("kv cache shape: ") + field + " = " + std::to_string(value) + ", expected " +
                    allowed);
}

Status validate(const CacheShape& s) {
  if (s.n_window_layers < 1) return field_error("n_window_layers", s.n_window_layers, ">= 1");
  if (s.n_csa_layers < 0) return field_error("n_csa_layers", s.n_csa_layers, ">= 0");
  if (s.n_hca_layers < 0) return field_error("n_hca_layers", s.n_hca_layers, ">= 0");
  if (s.window < 1) return field_error("window", s.window, ">= 1");
  if (s.page_tokens < 1) return field_error("page_tokens", s.page_tokens, ">= 1");
  if (s.kv_row_bytes < 1) return field_error("kv_row_bytes", s.kv_row_bytes, ">= 1");
  if (s.window_row_bytes < 0)
    return field_error("window_row_bytes", s.window_row_bytes, ">= 1, or 0 for the same as kv_row_bytes");
  if (s.state_bytes < 0) return field_error("state_bytes", s.state_bytes, ">= 0");
  if (s.n_csa_layers > 0) {
    if (s.csa_ratio < 1 || s.page_tokens % s.csa_ratio != 0)
      return field_error("csa_ratio", s.csa_ratio, "a divisor of page_tokens");
    if (s.indexer_row_bytes < 1)
      return field_error("indexer_row_bytes", s.indexer_row_bytes, ">= 1 when there are CSA layers");
  }
  if (s.n_hca_layers > 0 && (s.hca_ratio < 1 || s.page_tokens % s.hca_ratio != 0))
    return field_error("hca_ratio", s.hca_ratio, "a divisor of page_tokens");
  return Ok{};
}

}  // namespace

Result<CacheLayout> make_layout(const CacheShape& shape) {
  DSV4_TRY_STATUS(validate(shape));
  CacheLayout l;
  l.shape = shape;
  const int64_t p = shape.page_tokens;
  l.csa_rows_per_page = shape.n_csa_layers > 0 ? p / shape.csa_ratio : 0;
  l.hca_rows_per_page = shape.n_hca_layers > 0 ? p / shape.hca_ratio : 0;
  l.window_block_bytes = align_up(p * shape.window_row(), kBlockAlign);
  l.window_page_bytes = shape.n_window_layers * l.window_block_bytes;
  l.csa_block_bytes = align_up(l.csa_rows_per_page * shape.kv_row_bytes, kBlockAlign);
  l.indexer_block_bytes = align_up(l.csa_rows_per_page * shape.indexer_row_bytes, kBlockAlign);
  l.hca_block_bytes = align_up(l.hca_rows_per_page * shape.kv_row_bytes, kBlockAlign);
  l.compressed_page_bytes = shape.n_csa_layers * (l.csa_block_bytes + l.indexer_block_bytes) +
                            shape.n_hca_layers * l.hca_block_bytes;
  l.state_slot_bytes = align_up(shape.state_bytes, kBlockAlign);
  return l;
}

int64_t CacheLayout::compressed_pages(int64_t n_tokens) const {
  if (!has_compressed()) return 0;
  const int64_t m_min = shape.n_csa_layers > 0 ? shape.csa_ratio : shape.hca_ratio;
  return n_tokens < m_min ? 0 : (n_tokens - m_min) / shape.page_tokens + 1;
}

double growing_bytes_per_token(const CacheShape& s) {
  double b = 0;
  if (s.n_csa_layers > 0)
    b += double(s.n_csa_layers) * double(s.kv_row_bytes + s.indexer_row_bytes) / double(s.csa_ratio);
  if (s.n_hca_layers > 0) b += double(s.n_hca_layers) * double(s.kv_row_bytes) / double(s.hca_ratio);
  return b;
}

std::string describe(const CacheLayout& l) {
  const CacheShape& s = l.shape;
  std::ostringstream o;
  o << "KV pages of " << s.page_tokens << " tokens (rows: window " << s.window_row() << " B, compressed kv "
    << s.kv_row_bytes << " B, indexer " << s.indexer_row_bytes << " B):\n"
    << "  window page:     " << l.window_page_bytes << " B = " << s.n_window_layers << " layers x "
    << l.window_block_bytes << " B (" << s.page_tokens << " rows)\n"
    << "  compressed page: " << l.compressed_page_bytes << " B = " << s.n_csa_layers << " CSA x ("
    << l.csa_block_bytes << " + " << l.indexer_block_bytes << " B, " << l.csa_rows_per_page << " rows) + "
    << s.n_hca_layers << " HCA x " << l.hca_block_bytes << " B (" << l.hca_rows_per_page << " rows)\n"
    << "  state slot:      " << l.state_slot_bytes << " B per sequence\n";
  char line[96];
  std::snprintf(line, sizeof line, "  growing bytes per token: %.2f\n", growing_bytes_per_token(s));
  o << line;
  return o.str();
}

}  // namespace dsv4::kv
