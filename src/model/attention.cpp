// Attention sublayer; see attention.h. Operations of spec §5.9: q and kv paths, indexer (after its compressor), main
// compressor (entries emitted this step are visible to this step's queries), then attention over [window ‖
// compressed], then the window ring is updated (Fp8Kv rings: packed rows, decode rows packed into the ring before
// attention). The independent chains run as branches (model/branches.h); only the data dependencies order them.
#include "model/attention.h"

#include <cmath>

#include "core/check.h"
#include "model/branches.h"
#include "model/compressor.h"
#include "model/indexer.h"

namespace dsv4::model {
namespace {

// Window row pointers of every row: positions max(0, p-W+1)..p (chronological), from the window ring before
// the chunk and from `rows` (this batch's kv rows, f32 or packed) inside it; or all from the ring when the chunk's
// own rows are already there (ring_has_chunk).
std::vector<std::vector<const float*>> gather_window(const ModelConfig& cfg, const LayerContext& layer,
                                                     const ForwardBatch& batch, const Tensor& rows,
                                                     bool ring_has_chunk) {
  const int64_t W = cfg.sliding_window;
  std::vector<std::vector<const float*>> keys(static_cast<size_t>(batch.n_rows()));
  for (const BatchChunk& c : batch.chunks) {
    SequenceCache& cache = *c.seq;
    for (int64_t r = c.row_begin; r < c.row_begin + c.n_rows; ++r) {
      int64_t p = batch.pos[static_cast<size_t>(r)];
      auto& k = keys[static_cast<size_t>(r)];
      for (int64_t q = std::max<int64_t>(0, p - W + 1); q <= p; ++q) {
        if (ring_has_chunk || q < c.pos0)
          k.push_back(cache.window_row(layer.il, q));
        else
          k.push_back(rows.row(c.row_begin + (q - c.pos0)));
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

// Stores `rows` (width floats each: f32 kv rows, or their packed Fp8Kv rows) of the last W positions of each
// chunk into the window ring (after attention read it).
void update_window(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer, const ForwardBatch& batch,
                   const Tensor& rows, int64_t width) {
  const int64_t W = cfg.sliding_window;
  std::vector<const float*> src;
  std::vector<float*> dst;
  for (const BatchChunk& c : batch.chunks) {
    for (int64_t i = std::max<int64_t>(0, c.n_rows - W); i < c.n_rows; ++i) {
      src.push_back(rows.row(c.row_begin + i));
      dst.push_back(c.seq->window_row(layer.il, c.pos0 + i));
    }
  }
  ops.copy_rows(src, dst, width);
}

// The batch's window row format: that of its caches (SequenceCache::kv_format), one for the whole batch.
RowFormat window_format(const ForwardBatch& batch) {
  const RowFormat f = batch.chunks.empty() ? RowFormat::F32 : batch.chunks[0].seq->kv_format();
  for (const BatchChunk& c : batch.chunks)
    check(c.seq->kv_format() == f, "attention: window row formats differ in one batch");
  return f;
}

// Fp8Kv window rows (the FP8 KV cache): the chunk's kv rows (already FP8-KV-rounded, so packing is lossless)
// packed where attention reads them. A decode batch (one row per chunk) packs straight into the ring: slot
// p % W held position p - W, outside p's window, and nothing else is written to the ring. Longer chunks pack into
// `packed` [T, row words] (their earlier queries still need the ring rows the chunk will overwrite), copied to
// the ring after attention. Returns whether the ring already holds the chunks' rows.
bool pack_window_rows(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                      const ForwardBatch& batch, const Tensor& kv, Tensor& packed) {
  check(ops.numerics().kv_cache == backend::KvCacheDtype::Fp8,
        "attention: Fp8Kv window rows need the FP8 KV cache numerics (other roundings do not pack losslessly)");
  const int64_t d = cfg.head_dim, rope = cfg.qk_rope_head_dim;
  bool decode = true;
  for (const BatchChunk& c : batch.chunks) decode = decode && c.n_rows == 1;
  std::vector<const float*> src;
  std::vector<float*> dst;
  if (!decode) packed = Tensor(ops.device(), {batch.n_rows(), fp8kv_row_bytes(d, rope) / 4});
  for (const BatchChunk& c : batch.chunks)
    for (int64_t i = 0; i < c.n_rows; ++i) {
      src.push_back(kv.row(c.row_begin + i));
      dst.push_back(decode ? c.seq->window_row(layer.il, c.pos0 + i) : packed.row(c.row_begin + i));
    }
  ops.pack_rows_fp8kv(src, dst, d, rope);
  return decode;
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
  IndexTensor selected;
  {
    // Branches (model/branches.h): the indexer's keys (CSA), the q rows and a CSA layer's compressor as the side
    // branch, beside the kv rows, the indexer's scores and top-k (CSA; they wait for the keys: mark) or the
    // compressor (HCA); each writes its own outputs and cache rows.
    Branches br(ops);
    if (layer.ratio == 4) {
      br.side([&] { indexer_keys(ops, cfg, layer, *w.indexer, batch, x); });
      br.mark();
    }
    br.side([&] {
      ops.linear(qr, w.wq_b, q, backend::LinearKind::Quantized);  // [T, H*d]
      ops.finish_rows(q, d, batch.pos, {.norm = true, .eps = eps, .rope_dim = r, .rope = &layer.rope});
    });
    // KV path (§5.3).
    ops.finish_rows(kv, d, batch.pos, {.norm = true, .norm_weight = &w.kv_norm, .eps = eps, .rope_dim = r,
                                       .rope = &layer.rope, .round = backend::RowFinish::Round::Kv});
    // Compressed entries (§5.7, §5.8); the indexer's selections stay on the backend's device.
    if (layer.ratio == 4) selected = indexer_select(ops, cfg, layer, *w.indexer, batch, x, qr);
    auto compress = [&] {
      compressor_forward(ops, cfg, layer, *w.compressor, {.ratio = layer.ratio, .dim = d, .indexer = false},
                         batch, x);
    };
    if (layer.ratio == 4)
      br.side(compress);
    else if (layer.ratio > 0)
      compress();
  }
  // Sparse attention with sink (§5.5), over window rows in the cache's format.
  const RowFormat wf = window_format(batch);
  Tensor packed;
  const bool ring_has_chunk = wf == RowFormat::Fp8Kv && pack_window_rows(ops, cfg, layer, batch, kv, packed);
  const Tensor& own_rows = wf == RowFormat::Fp8Kv ? packed : kv;
  const auto window = gather_window(cfg, layer, batch, own_rows, ring_has_chunk);
  std::vector<int64_t> n_compressed;
  const std::vector<backend::SeqEntries> seqs = compressed_keys(cfg, layer, batch, n_compressed);
  std::vector<backend::AttentionQuery> queries(static_cast<size_t>(batch.n_rows()));
  for (int64_t i = 0; i < batch.n_rows(); ++i)
    queries[static_cast<size_t>(i)] = {q.row(i), window[static_cast<size_t>(i)], n_compressed[static_cast<size_t>(i)]};
  Tensor o;
  ops.sparse_attention({.queries = queries, .seqs = seqs, .selected = layer.ratio == 4 ? &selected : nullptr,
                        .window_format = wf, .window_rope_dim = wf == RowFormat::Fp8Kv ? r : 0},
                       H, d, w.attn_sink, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))), o);
  if (!ring_has_chunk) update_window(ops, cfg, layer, batch, own_rows, own_rows.row_size());
  // Output path (§5.6).
  ops.rope(o, d, r, batch.pos, layer.rope, true);
  Tensor z;
  ops.grouped_linear(o, w.wo_a, cfg.o_groups, z);  // [T, G*R]
  ops.linear(z, w.wo_b, out, backend::LinearKind::Quantized);
}

}  // namespace dsv4::model
