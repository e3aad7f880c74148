// Paged store and its per-sequence views; see paged_cache.h. Addresses follow kv::CacheLayout:
// pool base + page id · page bytes + layer block offset + row · row bytes (window_row() for window rows,
// kv_row_bytes / indexer_row_bytes for compressed rows and indexer keys).
#include "runtime/paged_cache.h"

#include "core/check.h"
#include "model/config_summary.h"

namespace dsv4::runtime {

kv::CacheShape cache_shape(const model::ModelConfig& cfg, RowFormat index_format, RowFormat kv_format) {
  const model::LayerCounts n = model::count_layers(cfg);
  int64_t state_floats = 0;
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il) {
    int64_t m = cfg.compress_ratio(il);
    if (m == 0) continue;
    state_floats += model::compressor_state_floats(m, (m == 4 ? 2 : 1) * cfg.head_dim);
    if (m == 4) state_floats += model::compressor_state_floats(4, 2 * cfg.index_head_dim);
  }
  return {.n_window_layers = cfg.n_layers_total(), .n_csa_layers = n.n_csa, .n_hca_layers = n.n_hca,
          .window = cfg.sliding_window, .kv_row_bytes = row_bytes(kv_format, cfg.head_dim, cfg.qk_rope_head_dim),
          .indexer_row_bytes = row_bytes(index_format, cfg.index_head_dim), .state_bytes = 4 * state_floats,
          .window_row_bytes = row_bytes(kv_format, cfg.head_dim, cfg.qk_rope_head_dim)};
}

RowFormat index_row_format(const backend::Numerics& numerics) {
  return numerics.indexer == backend::IndexerDtype::Fp4 ? RowFormat::Mxfp4 : RowFormat::F32;
}

RowFormat kv_row_format(const backend::Numerics& numerics, const model::ModelConfig& cfg) {
  const bool fp8 = numerics.kv_cache == backend::KvCacheDtype::Fp8;
  return fp8 && fp8kv_shape_ok(cfg.head_dim, cfg.qk_rope_head_dim) ? RowFormat::Fp8Kv : RowFormat::F32;
}

PagedKvStore::PagedKvStore(const model::ModelConfig& cfg, const kv::CacheLayout& layout, const kv::PoolSizes& sizes,
                           Device device, RowFormat index_format, RowFormat kv_format)
    : cfg_(cfg), layout_(layout), index_format_(index_format), kv_format_(kv_format) {
  check(index_format == RowFormat::F32 || index_format == RowFormat::Mxfp4,
        "paged store: indexer keys are F32 or Mxfp4 rows");
  check(kv_format == RowFormat::F32 ||
            (kv_format == RowFormat::Fp8Kv && fp8kv_shape_ok(cfg.head_dim, cfg.qk_rope_head_dim)),
        "paged store: compressed entries are F32 or Fp8Kv rows, and Fp8Kv rows need (head_dim - qk_rope_head_dim) "
        "% 64 == 0");
  check(layout.shape.n_csa_layers == 0 || layout.shape.indexer_row_bytes == row_bytes(index_format, cfg.index_head_dim),
        "paged store: the layout's indexer row bytes do not match the indexer key format");
  check(layout.shape.kv_row_bytes == row_bytes(kv_format, cfg.head_dim, cfg.qk_rope_head_dim),
        "paged store: the layout's compressed row bytes do not match the compressed entry format");
  check(layout.shape.window_row() == layout.shape.kv_row_bytes,
        "paged store: the layout's window row bytes do not match the window row format (that of the compressed "
        "entries)");
  int64_t n_csa = 0, n_hca = 0, off = 0;
  for (int64_t il = 0; il < cfg.n_layers_total(); ++il) {
    int64_t m = il < cfg.num_hidden_layers ? cfg.compress_ratio(il) : 0;
    csa_index_.push_back(m == 4 ? n_csa++ : -1);
    hca_index_.push_back(m == 128 ? n_hca++ : -1);
    state_offset_.push_back(m > 0 ? off : -1);
    if (m > 0) off += model::compressor_state_floats(m, (m == 4 ? 2 : 1) * cfg.head_dim);
    idx_state_offset_.push_back(m == 4 ? off : -1);
    if (m == 4) off += model::compressor_state_floats(4, 2 * cfg.index_head_dim);
  }
  check(4 * off <= layout.state_slot_bytes, "paged store: state slot too small for the compressor state");
  auto alloc = [device](Pool& p, int64_t bytes) {
    p.n_floats = bytes / 4;
    if (device == Device::Host)
      p.host.reset(new float[static_cast<size_t>(p.n_floats)]);
    else
      p.dev = Tensor(device, {p.n_floats});
  };
  alloc(window_, sizes.n_window_pages * layout.window_page_bytes);
  alloc(compressed_, sizes.n_compressed_pages * layout.compressed_page_bytes);
  alloc(state_, sizes.n_state_slots * layout.state_slot_bytes);
}

void PagedKvStore::copy_states(backend::Ops& ops, std::span<const std::pair<kv::PageId, kv::PageId>> copies) {
  if (copies.empty()) return;
  const int64_t slot = layout_.state_slot_bytes / 4;
  std::vector<const float*> src;
  std::vector<float*> dst;
  for (const auto& [from, to] : copies) {
    src.push_back(state_.ptr() + from * slot);
    dst.push_back(state_.ptr() + to * slot);
  }
  ops.copy_rows(src, dst, slot);
}

int64_t PagedKvStore::bytes() const {
  return 4 * (window_.n_floats + compressed_.n_floats + state_.n_floats);
}

class PagedSequence final : public model::SequenceCache {
 public:
  PagedSequence(PagedKvStore& s, const kv::SeqPages& pages) : s_(s), pages_(pages) {}

  float* window_row(int64_t il, int64_t pos) override {
    const kv::CacheLayout& L = s_.layout_;
    size_t t = static_cast<size_t>(L.page_of(pos));
    check(t < pages_.window.size() && pages_.window[t] != kv::kNoPage,
          [&] { return "paged KV: window row of position " + std::to_string(pos) + " is not held"; });
    int64_t byte = pages_.window[t] * L.window_page_bytes + L.window_offset(il) +
                   (pos % L.page_tokens()) * L.shape.window_row();
    return s_.window_.ptr() + byte / 4;
  }
  float* compressed_row(int64_t il, int64_t w) override {
    const kv::CacheLayout& L = s_.layout_;
    int64_t j = s_.csa_index_[static_cast<size_t>(il)], rpp = L.csa_rows_per_page, off = 0;
    if (j >= 0) {
      off = L.csa_offset(j);
    } else {
      j = s_.hca_index_[static_cast<size_t>(il)];
      check(j >= 0, [&] { return "paged KV: layer " + std::to_string(il) + " has no compressed rows"; });
      rpp = L.hca_rows_per_page;
      off = L.hca_offset(j);
    }
    return s_.compressed_.ptr() + compressed_byte(w / rpp, off + (w % rpp) * L.shape.kv_row_bytes) / 4;
  }
  float* index_key_row(int64_t il, int64_t w) override {
    const kv::CacheLayout& L = s_.layout_;
    int64_t j = s_.csa_index_[static_cast<size_t>(il)];
    check(j >= 0, [&] { return "paged KV: layer " + std::to_string(il) + " has no indexer keys"; });
    int64_t rpp = L.csa_rows_per_page;
    return s_.compressed_.ptr() +
           compressed_byte(w / rpp, L.indexer_offset(j) + (w % rpp) * L.shape.indexer_row_bytes) / 4;
  }
  RowFormat index_key_format() const override { return s_.index_format_; }
  RowFormat kv_format() const override { return s_.kv_format_; }
  // One block per compressed page: page k holds entries [k·rpp, (k+1)·rpp) of the layer, contiguous in the
  // layer's block of that page (kv::CacheLayout).
  RowBlocks compressed_rows(int64_t il, int64_t n) override {
    const kv::CacheLayout& L = s_.layout_;
    int64_t j = s_.csa_index_[static_cast<size_t>(il)];
    RowBlocks b;
    if (j >= 0) {
      b = page_blocks(n, L.csa_rows_per_page, L.csa_offset(j), L.shape.kv_row_bytes);
    } else {
      j = s_.hca_index_[static_cast<size_t>(il)];
      check(j >= 0, [&] { return "paged KV: layer " + std::to_string(il) + " has no compressed rows"; });
      b = page_blocks(n, L.hca_rows_per_page, L.hca_offset(j), L.shape.kv_row_bytes);
    }
    b.format = s_.kv_format_;
    if (b.format == RowFormat::Fp8Kv) b.rope_dim = s_.cfg_.qk_rope_head_dim;
    return b;
  }
  RowBlocks index_key_rows(int64_t il, int64_t n) override {
    const kv::CacheLayout& L = s_.layout_;
    int64_t j = s_.csa_index_[static_cast<size_t>(il)];
    check(j >= 0, [&] { return "paged KV: layer " + std::to_string(il) + " has no indexer keys"; });
    RowBlocks b = page_blocks(n, L.csa_rows_per_page, L.indexer_offset(j), L.shape.indexer_row_bytes);
    b.format = s_.index_format_;
    return b;
  }
  model::CompressorState compressor(int64_t il, bool indexer) override {
    int64_t off = (indexer ? s_.idx_state_offset_ : s_.state_offset_)[static_cast<size_t>(il)];
    check(off >= 0 && pages_.state != kv::kNoPage, [&] { return "paged KV: no compressor state for layer " + std::to_string(il); });
    int64_t m = s_.cfg_.compress_ratio(il);
    int64_t width = (m == 4 ? 2 : 1) * (indexer ? s_.cfg_.index_head_dim : s_.cfg_.head_dim);
    float* base = s_.state_.ptr() + pages_.state * s_.layout_.state_slot_bytes / 4 + off;
    int64_t block = m * width;
    model::CompressorState st{.ratio = m, .width = width, .cur_kv = base, .cur_score = base + block};
    if (m == 4) {
      st.prev_kv = base + 2 * block;
      st.prev_score = base + 3 * block;
    }
    return st;
  }

 private:
  int64_t compressed_byte(int64_t page_index, int64_t in_page) const {
    check(page_index < static_cast<int64_t>(pages_.compressed.size()),
          [&] { return "paged KV: compressed page " + std::to_string(page_index) + " is not allocated"; });
    return pages_.compressed[static_cast<size_t>(page_index)] * s_.layout_.compressed_page_bytes + in_page;
  }
  RowBlocks page_blocks(int64_t n, int64_t rpp, int64_t block_offset, int64_t row_bytes) const {
    RowBlocks b;
    b.rows_per_block = rpp;
    b.stride = row_bytes / 4;
    for (int64_t k = 0; k * rpp < n; ++k)
      b.blocks.push_back(s_.compressed_.ptr() + compressed_byte(k, block_offset) / 4);
    return b;
  }
  PagedKvStore& s_;
  const kv::SeqPages& pages_;
};

std::unique_ptr<model::SequenceCache> PagedKvStore::view(const kv::HybridKvManager& kv, kv::SeqId id,
                                                         int64_t n_past) {
  auto v = std::make_unique<PagedSequence>(*this, kv.pages(id));
  v->n_past = n_past;
  return v;
}

}  // namespace dsv4::runtime
