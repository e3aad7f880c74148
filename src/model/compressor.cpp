// Compressor streaming state machine and entry post-processing; see compressor.h.
#include "model/compressor.h"

#include <algorithm>
#include <limits>

#include "weights/quant/dequant.h"

namespace dsv4::model {
namespace {

// Feeds the token at position `pos`; when its window completes, writes the raw pooled entry to `entry` and
// returns true. Slot validity follows from the position: slots [0, pos % ratio] of the current window, and
// the previous window once at least one window is complete.
bool feed(backend::Ops& ops, const CompressorState& st, const float* kv, const float* score, int64_t pos,
          int64_t dim, float* entry) {
  const int64_t slot = pos % st.ratio, width = st.width;
  std::copy(kv, kv + width, st.cur_kv + slot * width);
  std::copy(score, score + width, st.cur_score + slot * width);
  if (slot + 1 < st.ratio) return false;
  std::vector<const float*> a, g;
  if (st.ratio == 4) {
    // Candidates: A-half (first d') of the previous window's 4 tokens, B-half of the current 4.
    if (pos + 1 >= 8)
      for (int64_t i = 0; i < 4; ++i) {
        a.push_back(st.prev_kv + i * width);
        g.push_back(st.prev_score + i * width);
      }
    for (int64_t i = 0; i < 4; ++i) {
      a.push_back(st.cur_kv + i * width + dim);
      g.push_back(st.cur_score + i * width + dim);
    }
    ops.softmax_pool(a, g, dim, entry);
    std::copy(st.cur_kv, st.cur_kv + 4 * width, st.prev_kv);
    std::copy(st.cur_score, st.cur_score + 4 * width, st.prev_score);
  } else {
    for (int64_t i = 0; i < st.ratio; ++i) {
      a.push_back(st.cur_kv + i * width);
      g.push_back(st.cur_score + i * width);
    }
    ops.softmax_pool(a, g, dim, entry);
  }
  return true;
}

}  // namespace

void compressor_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                        const weights::CompressorWeights& w, const CompressorSpec& spec,
                        const ForwardBatch& batch, const HostTensor& x) {
  HostTensor kv, score;
  ops.linear(x, w.wkv, kv, backend::LinearKind::F32);
  ops.linear(x, w.wgate, score, backend::LinearKind::F32);
  int64_t width = kv.row_size();
  std::vector<float> ape = weights::dequant_all(w.ape);  // f32 [ratio, width]
  for (int64_t r = 0; r < batch.n_rows(); ++r) {
    int64_t slot = batch.pos[static_cast<size_t>(r)] % spec.ratio;
    float* s = score.row(r);
    for (int64_t i = 0; i < width; ++i) s[i] += ape[static_cast<size_t>(slot * width + i)];
  }
  // Feed every sequence's rows in order; collect raw entries and their owners.
  HostTensor entries({0});
  std::vector<float> raw;
  std::vector<int64_t> entry_pos;
  std::vector<SequenceCache*> owner;
  std::vector<float> e(static_cast<size_t>(spec.dim));
  for (const BatchChunk& c : batch.chunks) {
    const CompressorState st = c.seq->compressor(layer.il, spec.indexer);
    for (int64_t r = c.row_begin; r < c.row_begin + c.n_rows; ++r) {
      int64_t p = batch.pos[static_cast<size_t>(r)];
      if (!feed(ops, st, kv.row(r), score.row(r), p, spec.dim, e.data())) continue;
      raw.insert(raw.end(), e.begin(), e.end());
      entry_pos.push_back(p + 1 - spec.ratio);  // w·ratio: the first token of the entry's own window
      owner.push_back(c.seq);
    }
  }
  int64_t n = static_cast<int64_t>(entry_pos.size());
  if (n == 0) return;
  entries.resize({n, spec.dim});
  std::copy(raw.begin(), raw.end(), entries.data());
  ops.round_act(entries);
  ops.rms_norm(entries, spec.dim, &w.norm, static_cast<float>(cfg.rms_norm_eps));
  ops.rope(entries, spec.dim, cfg.qk_rope_head_dim, entry_pos, layer.rope, false);
  if (spec.indexer)
    ops.indexer_round(entries, spec.dim, ops.numerics().indexer);
  else
    ops.kv_round(entries, spec.dim, cfg.qk_rope_head_dim, ops.numerics().kv_cache);
  for (int64_t i = 0; i < n; ++i) {
    int64_t w = entry_pos[static_cast<size_t>(i)] / spec.ratio;
    float* dst = spec.indexer ? owner[i]->index_key_row(layer.il, w) : owner[i]->compressed_row(layer.il, w);
    std::copy(entries.row(i), entries.row(i) + spec.dim, dst);
  }
}

}  // namespace dsv4::model
