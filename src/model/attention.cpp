// Attention sublayer; see attention.h. Order of operations as in spec §5.9: q and kv paths, indexer (with
// its compressor), main compressor (entries emitted this step are visible to this step's queries), then
// attention over [window ‖ compressed], then the window ring is updated.
#include "model/attention.h"

#include <cmath>

#include "model/compressor.h"
#include "model/indexer.h"

namespace dsv4::model {
namespace {

// Key pointers for every row: window positions max(0, p-W+1)..p (chronological), then compressed entries.
std::vector<std::vector<const float*>> gather_keys(const ModelConfig& cfg, const LayerContext& layer,
                                                   const ForwardBatch& batch, const Tensor& kv,
                                                   const std::vector<std::vector<int64_t>>* selected) {
  const int64_t W = cfg.sliding_window;
  std::vector<std::vector<const float*>> keys(static_cast<size_t>(batch.n_rows()));
  for (const BatchChunk& c : batch.chunks) {
    SequenceCache& cache = *c.seq;
    for (int64_t r = c.row_begin; r < c.row_begin + c.n_rows; ++r) {
      int64_t p = batch.pos[static_cast<size_t>(r)];
      auto& k = keys[static_cast<size_t>(r)];
      for (int64_t q = std::max<int64_t>(0, p - W + 1); q <= p; ++q) {
        if (q < c.pos0)
          k.push_back(cache.window_row(layer.il, q));
        else
          k.push_back(kv.row(c.row_begin + (q - c.pos0)));
      }
      if (layer.ratio == 0) continue;
      if (selected) {
        for (int64_t s : (*selected)[static_cast<size_t>(r)]) k.push_back(cache.compressed_row(layer.il, s));
      } else {
        int64_t n_vis = (p + 1) / layer.ratio;
        for (int64_t s = 0; s < n_vis; ++s) k.push_back(cache.compressed_row(layer.il, s));
      }
    }
  }
  return keys;
}

// Stores the kv rows of the last W positions of each chunk into the window ring (after attention read it).
void update_window(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer, const ForwardBatch& batch,
                   const Tensor& kv) {
  const int64_t W = cfg.sliding_window;
  std::vector<const float*> src;
  std::vector<float*> dst;
  for (const BatchChunk& c : batch.chunks) {
    for (int64_t i = std::max<int64_t>(0, c.n_rows - W); i < c.n_rows; ++i) {
      src.push_back(kv.row(c.row_begin + i));
      dst.push_back(c.seq->window_row(layer.il, c.pos0 + i));
    }
  }
  ops.copy_rows(src, dst, cfg.head_dim);
}

}  // namespace

void attention_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                       const weights::AttentionWeights& w, const ForwardBatch& batch, const Tensor& x,
                       Tensor& out) {
  const int64_t H = cfg.num_attention_heads, d = cfg.head_dim, r = cfg.qk_rope_head_dim;
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  // Query path (§5.2).
  Tensor qr, q;
  ops.linear(x, w.wq_a, qr, backend::LinearKind::Quantized);
  ops.rms_norm(qr, cfg.q_lora_rank, &w.q_norm, eps);
  ops.linear(qr, w.wq_b, q, backend::LinearKind::Quantized);  // [T, H*d]
  ops.rms_norm(q, d, nullptr, eps);
  ops.rope(q, d, r, batch.pos, layer.rope, false);
  // KV path (§5.3).
  Tensor kv;
  ops.linear(x, w.wkv, kv, backend::LinearKind::Quantized);  // [T, d]
  ops.rms_norm(kv, d, &w.kv_norm, eps);
  ops.rope(kv, d, r, batch.pos, layer.rope, false);
  ops.kv_round(kv, d, r, ops.numerics().kv_cache);
  // Compressed entries (§5.7, §5.8).
  std::vector<std::vector<int64_t>> selected;
  if (layer.ratio == 4) selected = indexer_forward(ops, cfg, layer, *w.indexer, batch, x, qr);
  if (layer.ratio > 0)
    compressor_forward(ops, cfg, layer, *w.compressor, {.ratio = layer.ratio, .dim = d, .indexer = false},
                       batch, x);
  // Sparse attention with sink (§5.5).
  auto keys = gather_keys(cfg, layer, batch, kv, layer.ratio == 4 ? &selected : nullptr);
  std::vector<backend::AttentionQuery> queries(static_cast<size_t>(batch.n_rows()));
  for (int64_t i = 0; i < batch.n_rows(); ++i) queries[i] = {q.row(i), keys[static_cast<size_t>(i)]};
  Tensor o;
  ops.sparse_attention(queries, H, d, w.attn_sink, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))), o);
  update_window(ops, cfg, layer, batch, kv);
  // Output path (§5.6).
  ops.rope(o, d, r, batch.pos, layer.rope, true);
  Tensor z;
  ops.grouped_linear(o, w.wo_a, cfg.o_groups, z);  // [T, G*R]
  ops.linear(z, w.wo_b, out, backend::LinearKind::Quantized);
}

}  // namespace dsv4::model
