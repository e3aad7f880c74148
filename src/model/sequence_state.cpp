// Contiguous SequenceState; see sequence_state.h.
#include "model/sequence_state.h"

#include "core/check.h"

namespace dsv4::model {

int64_t compressor_state_floats(int64_t ratio, int64_t width) {
  return 2 * (ratio == 4 ? 2 : 1) * ratio * width;
}

SequenceState::SequenceState(const ModelConfig& cfg, Device device, RowFormat index_format, RowFormat kv_format)
    : cfg_(cfg), device_(device), index_format_(index_format), kv_format_(kv_format) {
  check(index_format == RowFormat::F32 || (index_format == RowFormat::Mxfp4 && cfg.index_head_dim % 32 == 0),
        "SequenceState: indexer keys are F32 or Mxfp4 rows, and Mxfp4 rows need index_head_dim % 32 == 0");
  check(kv_format == RowFormat::F32 ||
            (kv_format == RowFormat::Fp8Kv && fp8kv_shape_ok(cfg.head_dim, cfg.qk_rope_head_dim)),
        "SequenceState: compressed entries are F32 or Fp8Kv rows, and Fp8Kv rows need (head_dim - "
        "qk_rope_head_dim) % 64 == 0");
  reset();
}

void SequenceState::reset() {
  n_past = 0;
  mtp_n_past = 0;
  layers_.clear();
  // Device caches start with room for 64 entries and grow geometrically (rows are written before read).
  auto make = [&](int64_t rows, int64_t width) {
    Tensor t(device_, {rows, width});
    t.resize({rows, width}, 0.0f);
    return t;
  };
  for (int64_t il = 0; il < cfg_.n_layers_total(); ++il) {
    Layer l;
    l.ratio = cfg_.compress_ratio(il);
    l.window = make(cfg_.sliding_window, row_bytes(kv_format_, cfg_.head_dim, cfg_.qk_rope_head_dim) / 4);
    if (l.ratio > 0) {
      l.cmp = make(1, compressor_state_floats(l.ratio, (l.ratio == 4 ? 2 : 1) * cfg_.head_dim));
      l.compressed = make(0, row_bytes(kv_format_, cfg_.head_dim, cfg_.qk_rope_head_dim) / 4);
    }
    if (l.ratio == 4) {
      l.idx_cmp = make(1, compressor_state_floats(4, 2 * cfg_.index_head_dim));
      l.index_keys = make(0, row_bytes(index_format_, cfg_.index_head_dim) / 4);
    }
    layers_.push_back(std::move(l));
  }
}

float* SequenceState::grow_row(Tensor& v, int64_t row) {
  if (v.dim(0) <= row) v.grow_rows(row + 1);
  return v.row(row);
}

float* SequenceState::window_row(int64_t il, int64_t pos) {
  return layers_.at(static_cast<size_t>(il)).window.row(pos % cfg_.sliding_window);
}

float* SequenceState::compressed_row(int64_t il, int64_t w) {
  return grow_row(layers_.at(static_cast<size_t>(il)).compressed, w);
}

float* SequenceState::index_key_row(int64_t il, int64_t w) {
  return grow_row(layers_.at(static_cast<size_t>(il)).index_keys, w);
}

RowBlocks SequenceState::one_block(Tensor& v, int64_t n) {
  RowBlocks b;
  b.stride = v.dim(1);
  if (n <= 0) return b;
  grow_row(v, n - 1);
  b.blocks = {v.data()};
  b.rows_per_block = v.dim(0);
  return b;
}

RowBlocks SequenceState::compressed_rows(int64_t il, int64_t n) {
  RowBlocks b = one_block(layers_.at(static_cast<size_t>(il)).compressed, n);
  b.format = kv_format_;
  if (kv_format_ == RowFormat::Fp8Kv) b.rope_dim = cfg_.qk_rope_head_dim;
  return b;
}

RowBlocks SequenceState::index_key_rows(int64_t il, int64_t n) {
  RowBlocks b = one_block(layers_.at(static_cast<size_t>(il)).index_keys, n);
  b.format = index_format_;
  return b;
}

CompressorState SequenceState::compressor(int64_t il, bool indexer) {
  Layer& l = layers_.at(static_cast<size_t>(il));
  check(l.ratio > 0, "compressor state requested for a layer without compressor");
  float* buf = (indexer ? l.idx_cmp : l.cmp).data();
  int64_t width = (l.ratio == 4 ? 2 : 1) * (indexer ? cfg_.index_head_dim : cfg_.head_dim);
  CompressorState s{.ratio = l.ratio, .width = width};
  int64_t block = l.ratio * width;
  s.cur_kv = buf;
  s.cur_score = buf + block;
  if (l.ratio == 4) {
    s.prev_kv = buf + 2 * block;
    s.prev_score = buf + 3 * block;
  }
  return s;
}

}  // namespace dsv4::model
