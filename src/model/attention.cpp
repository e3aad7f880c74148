// Attention sublayer; see attention.h. Order of operations as in spec §5.9: q and kv paths, indexer (with
// its compressor), main compressor (entries emitted this step are visible to this step's queries), then
// attention over [window ‖ compressed], then the window ring is updated.
#include "model/attention.h"

#include <cmath>

#include "model/compressor.h"
#include "model/indexer.h"

namespace dsv4::model {
namespace {

// Window row pointers of every row: positions max(0, p-W+1)..p (chronological), from the window ring before
// the chunk and from this batch's kv rows inside it.
std::vector<std::vector<const float*>> gather_window(const ModelConfig& cfg, const LayerContext& layer,
                                                     const ForwardBatch& batch, const Tensor& kv) {
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
    }
  }
  return keys;
}

// Compressed entries each row attends after its window: all n_vis = (p+1)/ratio visible entries (HCA), or
// the indexer's min(index_topk, n_vis) selections (CSA), counts known from positions alone; and each chunk's
// compressed rows (the first max n_vis entries of its sequence).
std::vector<backend::SeqEntries> compressed_keys(const ModelConfig& cfg, const LayerContext& layer,
                                                 const ForwardBatch& batch, std::vector<int64_t>& n_compressed) {
  n_compressed.assign(static_cast<size_t>(batch.n_rows()), 0);
  std::vector<backend::SeqEntries> seqs;
  for (const BatchChunk& c : batch.chunks) {
    int64_t max_vis = 0;
    for (int64_t r = c.row_begin; r < c.row_begin + c.n_rows; ++r) {
      const int64_t n_vis = layer.ratio == 0 ? 0 : (batch.pos[static_cast<size_t>(r)] + 1) / layer.ratio;
      max_vis = std::max(max_vis, n_vis);
      n_compressed[static_cast<size_t>(r)] = layer.ratio == 4 ? std::min(cfg.index_topk, n_vis) : n_vis;
    }
    seqs.push_back({.row_begin = c.row_begin, .n_rows = c.n_rows,
                    .entries = layer.ratio == 0 ? RowBlocks{} : c.seq->compressed_rows(layer.il, max_vis)});
  }
  return seqs;
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
  // Query path (§5.2); the KV projection of §5.3 reads the same x, so both come from one linear_pair.
  Tensor qr, q, kv;
  ops.linear_pair(x, w.wq_a, w.wkv, qr, kv, backend::LinearKind::Quantized);  // [T, q_lora_rank], [T, d]
  ops.rms_norm(qr, cfg.q_lora_rank, &w.q_norm, eps);
  ops.linear(qr, w.wq_b, q, backend::LinearKind::Quantized);  // [T, H*d]
  ops.finish_rows(q, d, batch.pos, {.norm = true, .eps = eps, .rope_dim = r, .rope = &layer.rope});
  // KV path (§5.3).
  ops.finish_rows(kv, d, batch.pos, {.norm = true, .norm_weight = &w.kv_norm, .eps = eps, .rope_dim = r,
                                     .rope = &layer.rope, .round = backend::RowFinish::Round::Kv});
  // Compressed entries (§5.7, §5.8); the indexer's selections stay on the backend's device.
  IndexTensor selected;
  if (layer.ratio == 4) selected = indexer_forward(ops, cfg, layer, *w.indexer, batch, x, qr);
  if (layer.ratio > 0)
    compressor_forward(ops, cfg, layer, *w.compressor, {.ratio = layer.ratio, .dim = d, .indexer = false},
                       batch, x);
  // Sparse attention with sink (§5.5).
  const auto window = gather_window(cfg, layer, batch, kv);
  std::vector<int64_t> n_compressed;
  const std::vector<backend::SeqEntries> seqs = compressed_keys(cfg, layer, batch, n_compressed);
  std::vector<backend::AttentionQuery> queries(static_cast<size_t>(batch.n_rows()));
  for (int64_t i = 0; i < batch.n_rows(); ++i)
    queries[static_cast<size_t>(i)] = {q.row(i), window[static_cast<size_t>(i)], n_compressed[static_cast<size_t>(i)]};
  Tensor o;
  ops.sparse_attention({.queries = queries, .seqs = seqs, .selected = layer.ratio == 4 ? &selected : nullptr}, H, d,
                       w.attn_sink, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))), o);
  update_window(ops, cfg, layer, batch, kv);
  // Output path (§5.6).
  ops.rope(o, d, r, batch.pos, layer.rope, true);
  Tensor z;
  ops.grouped_linear(o, w.wo_a, cfg.o_groups, z);  // [T, G*R]
  ops.linear(z, w.wo_b, out, backend::LinearKind::Quantized);
}

}  // namespace dsv4::model
