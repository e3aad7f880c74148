// Contiguous SequenceState; see sequence_state.h.
#include "model/sequence_state.h"

#include "core/check.h"

namespace dsv4::model {

int64_t compressor_state_floats(int64_t ratio, int64_t width) {
  return 2 * (ratio == 4 ? 2 : 1) * ratio * width;
}

SequenceState::SequenceState(const ModelConfig& cfg) : cfg_(cfg) { reset(); }

void SequenceState::reset() {
  n_past = 0;
  mtp_n_past = 0;
  layers_.clear();
  for (int64_t il = 0; il < cfg_.n_layers_total(); ++il) {
    Layer l;
    l.ratio = cfg_.compress_ratio(il);
    l.window.assign(static_cast<size_t>(cfg_.sliding_window * cfg_.head_dim), 0.0f);
    if (l.ratio > 0)
      l.cmp.assign(static_cast<size_t>(compressor_state_floats(l.ratio, (l.ratio == 4 ? 2 : 1) * cfg_.head_dim)), 0.0f);
    if (l.ratio == 4) l.idx_cmp.assign(static_cast<size_t>(compressor_state_floats(4, 2 * cfg_.index_head_dim)), 0.0f);
    layers_.push_back(std::move(l));
  }
}

float* SequenceState::grow_row(std::vector<float>& v, int64_t row, int64_t width) {
  if (static_cast<int64_t>(v.size()) < (row + 1) * width) v.resize(static_cast<size_t>((row + 1) * width), 0.0f);
  return v.data() + row * width;
}

float* SequenceState::window_row(int64_t il, int64_t pos) {
  return layers_.at(static_cast<size_t>(il)).window.data() + (pos % cfg_.sliding_window) * cfg_.head_dim;
}

float* SequenceState::compressed_row(int64_t il, int64_t w) {
  return grow_row(layers_.at(static_cast<size_t>(il)).compressed, w, cfg_.head_dim);
}

float* SequenceState::index_key_row(int64_t il, int64_t w) {
  return grow_row(layers_.at(static_cast<size_t>(il)).index_keys, w, cfg_.index_head_dim);
}

CompressorState SequenceState::compressor(int64_t il, bool indexer) {
  Layer& l = layers_.at(static_cast<size_t>(il));
  check(l.ratio > 0, "compressor state requested for a layer without compressor");
  std::vector<float>& buf = indexer ? l.idx_cmp : l.cmp;
  int64_t width = (l.ratio == 4 ? 2 : 1) * (indexer ? cfg_.index_head_dim : cfg_.head_dim);
  CompressorState s{.ratio = l.ratio, .width = width};
  int64_t block = l.ratio * width;
  s.cur_kv = buf.data();
  s.cur_score = buf.data() + block;
  if (l.ratio == 4) {
    s.prev_kv = buf.data() + 2 * block;
    s.prev_score = buf.data() + 3 * block;
  }
  return s;
}

}  // namespace dsv4::model
