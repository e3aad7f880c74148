// Indexer query path, scoring and top-k; see indexer.h.
#include "model/indexer.h"

#include <algorithm>
#include <cmath>

#include "model/compressor.h"

namespace dsv4::model {

void indexer_keys(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                  const weights::IndexerWeights& w, const ForwardBatch& batch, const Tensor& x) {
  compressor_forward(ops, cfg, layer, w.compressor, {.ratio = 4, .dim = cfg.index_head_dim, .indexer = true}, batch,
                     x);
}

IndexTensor indexer_select(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                           const weights::IndexerWeights& w, const ForwardBatch& batch, const Tensor& x,
                           const Tensor& qr) {
  const int64_t nh = cfg.index_n_heads, hd = cfg.index_head_dim, T = batch.n_rows();

  Tensor q, wi;
  ops.linear(qr, w.wq_b, q, backend::LinearKind::Quantized);  // [T, nh*hd]
  ops.finish_rows(q, hd, batch.pos, {.rope_dim = cfg.qk_rope_head_dim, .rope = &layer.rope,
                                     .round = backend::RowFinish::Round::Indexer});
  ops.linear(x, w.weights_proj, wi, backend::LinearKind::Bf16);  // [T, nh]
  const float wscale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd) * static_cast<double>(nh)));
  ops.scale_round(wi, wscale);

  // One indexer_topk call for the whole batch: each chunk (one sequence) hands its indexer keys as row blocks
  // and row r sees the first (pos[r] + 1) / 4 of them. The activations are the chunks' rows in order
  // (forward_batch.h), so q and wi are passed as they are.
  std::vector<int64_t> n_vis(static_cast<size_t>(T), 0);
  std::vector<backend::SeqEntries> seqs;
  for (const BatchChunk& c : batch.chunks) {
    int64_t max_vis = 0;
    for (int64_t i = 0; i < c.n_rows; ++i) {
      const int64_t r = c.row_begin + i;
      n_vis[static_cast<size_t>(r)] = (batch.pos[static_cast<size_t>(r)] + 1) / 4;
      max_vis = std::max(max_vis, n_vis[static_cast<size_t>(r)]);
    }
    seqs.push_back({.row_begin = c.row_begin, .n_rows = c.n_rows, .entries = c.seq->index_key_rows(layer.il, max_vis)});
  }
  IndexTensor selected;
  ops.branch_wait_mark();  // the keys (indexer_keys) may come from a side branch
  ops.indexer_topk(q, wi, seqs, n_vis, {.n_heads = nh, .head_dim = hd, .top_k = cfg.index_topk}, selected);
  return selected;
}

}  // namespace dsv4::model
