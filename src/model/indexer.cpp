// Indexer query path, scoring and top-k; see indexer.h.
#include "model/indexer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/compressor.h"

namespace dsv4::model {

std::vector<std::vector<int64_t>> indexer_forward(backend::Ops& ops, const ModelConfig& cfg,
                                                  const LayerContext& layer, const weights::IndexerWeights& w,
                                                  const ForwardBatch& batch, const Tensor& x,
                                                  const Tensor& qr) {
  const int64_t nh = cfg.index_n_heads, hd = cfg.index_head_dim, T = batch.n_rows();
  compressor_forward(ops, cfg, layer, w.compressor, {.ratio = 4, .dim = hd, .indexer = true}, batch, x);

  Tensor q, wi;
  ops.linear(qr, w.wq_b, q, backend::LinearKind::Quantized);  // [T, nh*hd]
  ops.rope(q, hd, cfg.qk_rope_head_dim, batch.pos, layer.rope, false);
  ops.indexer_round(q, hd, ops.numerics().indexer);
  ops.linear(x, w.weights_proj, wi, backend::LinearKind::Bf16);  // [T, nh]
  const float wscale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd) * static_cast<double>(nh)));
  ops.scale(wi, wscale);
  ops.round_act(wi);

  std::vector<std::vector<int64_t>> selected(static_cast<size_t>(T));
  Tensor qc, wc;
  for (const BatchChunk& c : batch.chunks) {
    std::vector<int64_t> rows(static_cast<size_t>(c.n_rows));
    std::iota(rows.begin(), rows.end(), c.row_begin);
    ops.gather_rows(q, rows, qc);
    ops.gather_rows(wi, rows, wc);
    std::vector<int64_t> n_vis(static_cast<size_t>(c.n_rows));
    for (int64_t i = 0; i < c.n_rows; ++i) n_vis[i] = (batch.pos[c.row_begin + i] + 1) / 4;
    int64_t max_vis = n_vis.empty() ? 0 : n_vis.back();  // positions ascend within a chunk
    std::vector<const float*> keys(static_cast<size_t>(max_vis));
    for (int64_t s = 0; s < max_vis; ++s) keys[s] = c.seq->index_key_row(layer.il, s);
    std::vector<std::vector<int64_t>> sel;
    ops.indexer_topk(qc, wc, keys, n_vis, nh, hd, cfg.index_topk, sel);
    for (int64_t i = 0; i < c.n_rows; ++i) selected[static_cast<size_t>(c.row_begin + i)] = std::move(sel[i]);
  }
  return selected;
}

}  // namespace dsv4::model
