// Allocation and reset of the per-sequence state (compressor state starts empty: kv 0, score -inf).
#include "model/sequence_state.h"

namespace dsv4::model {

void CompressorState::init(int64_t ratio_, int64_t width_) {
  ratio = ratio_;
  width = width_;
  cur_kv.assign(static_cast<size_t>(ratio * width), 0.0f);
  cur_score.assign(cur_kv.size(), 0.0f);
  prev_kv.assign(ratio == 4 ? cur_kv.size() : 0, 0.0f);
  prev_score.assign(prev_kv.size(), 0.0f);
  n_cur = 0;
  has_prev = false;
}

int64_t LayerCache::n_compressed() const {
  return head_dim == 0 ? 0 : static_cast<int64_t>(compressed.size()) / head_dim;
}

namespace {
LayerCache make_layer(const ModelConfig& cfg, int64_t il) {
  LayerCache c;
  c.ratio = cfg.compress_ratio(il);
  c.head_dim = cfg.head_dim;
  c.window.assign(static_cast<size_t>(cfg.sliding_window * cfg.head_dim), 0.0f);
  if (c.ratio > 0) c.cmp.init(c.ratio, (c.ratio == 4 ? 2 : 1) * cfg.head_dim);
  if (c.ratio == 4) c.idx_cmp.init(4, 2 * cfg.index_head_dim);
  return c;
}
}  // namespace

SequenceState::SequenceState(const ModelConfig& cfg) { reset(cfg); }

void SequenceState::reset(const ModelConfig& cfg) {
  n_past = 0;
  mtp_n_past = 0;
  layers.clear();
  mtp.clear();
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il) layers.push_back(make_layer(cfg, il));
  for (int64_t i = 0; i < cfg.num_nextn_predict_layers; ++i)
    mtp.push_back(make_layer(cfg, cfg.num_hidden_layers + i));
}

}  // namespace dsv4::model
