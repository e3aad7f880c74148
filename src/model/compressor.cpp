// Compressor streaming state machine and entry post-processing; see compressor.h.
#include "model/compressor.h"

#include <vector>

namespace dsv4::model {
namespace {

// Pointer lists of one compressor call: the pooling candidates of every entry emitted in this batch, and the
// row copies that leave each sequence's streaming state as the reference's state machine would.
struct CompressorPlan {
  std::vector<const float*> a, g;   // candidate kv / score rows (dim values each)
  std::vector<int64_t> offsets{0};  // entry i pools candidates [offsets[i], offsets[i+1])
  std::vector<int64_t> entry_pos;   // w·ratio: the first token of the entry's own window
  std::vector<SequenceCache*> owner;
  std::vector<const float*> state_src, batch_src;  // full-width rows (kv and score lists interleaved)
  std::vector<float*> state_dst, batch_dst;
};

// Adds one chunk to the plan. A token q of the chunk's sequence lives in this batch (q >= pos0), in the
// current-window slots of the state (same window as pos0) or, for ratio 4, in the previous-window slots.
void plan_chunk(const BatchChunk& c, const CompressorState& st, const CompressorSpec& spec, const Tensor& kv,
                const Tensor& score, CompressorPlan& plan) {
  const int64_t ratio = spec.ratio, width = st.width, d = spec.dim, pos0 = c.pos0, end = c.pos0 + c.n_rows;
  const int64_t w0 = pos0 / ratio;
  auto row_of = [&](int64_t q, bool is_kv) -> const float* {
    if (q >= pos0) return (is_kv ? kv : score).row(c.row_begin + (q - pos0));
    if (q / ratio == w0) return (is_kv ? st.cur_kv : st.cur_score) + (q % ratio) * width;
    check(ratio == 4 && q / 4 == w0 - 1, "compressor: token outside the streaming state");
    return (is_kv ? st.prev_kv : st.prev_score) + (q % 4) * width;
  };
  for (int64_t p = pos0; p < end; ++p) {
    if ((p + 1) % ratio != 0) continue;
    const int64_t wi = p / ratio;
    if (ratio == 4) {
      // Candidates: A-half (first d') of the previous window's 4 tokens, B-half of the current 4.
      if (wi >= 1)
        for (int64_t q = 4 * (wi - 1); q < 4 * wi; ++q) {
          plan.a.push_back(row_of(q, true));
          plan.g.push_back(row_of(q, false));
        }
      for (int64_t q = 4 * wi; q < 4 * wi + 4; ++q) {
        plan.a.push_back(row_of(q, true) + d);
        plan.g.push_back(row_of(q, false) + d);
      }
    } else {
      for (int64_t q = ratio * wi; q < ratio * (wi + 1); ++q) {
        plan.a.push_back(row_of(q, true));
        plan.g.push_back(row_of(q, false));
      }
    }
    plan.offsets.push_back(static_cast<int64_t>(plan.a.size()));
    plan.entry_pos.push_back(p + 1 - ratio);
    plan.owner.push_back(c.seq);
  }
  // State after the chunk: the current window's tokens [we·ratio, end) in their slots; for ratio 4 the last
  // complete window in prev. Tokens already in the right slot are left alone.
  const int64_t we = end / ratio;
  auto keep = [&](int64_t q, float* kv_dst, float* sc_dst) {
    if (q >= pos0) {
      plan.batch_src.insert(plan.batch_src.end(), {row_of(q, true), row_of(q, false)});
      plan.batch_dst.insert(plan.batch_dst.end(), {kv_dst, sc_dst});
    } else if (kv_dst != row_of(q, true)) {
      plan.state_src.insert(plan.state_src.end(), {row_of(q, true), row_of(q, false)});
      plan.state_dst.insert(plan.state_dst.end(), {kv_dst, sc_dst});
    }
  };
  for (int64_t q = we * ratio; q < end; ++q)
    keep(q, st.cur_kv + (q % ratio) * width, st.cur_score + (q % ratio) * width);
  if (ratio == 4 && we >= 1)
    for (int64_t q = 4 * (we - 1); q < 4 * we; ++q)
      keep(q, st.prev_kv + (q % 4) * width, st.prev_score + (q % 4) * width);
}

}  // namespace

void compressor_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                        const weights::CompressorWeights& w, const CompressorSpec& spec,
                        const ForwardBatch& batch, const Tensor& x) {
  Tensor kv, score;
  ops.linear_pair(x, w.wkv, w.wgate, kv, score, backend::LinearKind::F32);
  ops.add_position_rows(score, w.ape, batch.pos);  // ape f32 [ratio, c·d'], row pos % ratio
  CompressorPlan plan;
  for (const BatchChunk& c : batch.chunks)
    plan_chunk(c, c.seq->compressor(layer.il, spec.indexer), spec, kv, score, plan);
  const int64_t n = static_cast<int64_t>(plan.entry_pos.size());
  Tensor entries;
  // Pool before the state is rewritten: candidates may live in the state.
  if (n > 0) ops.softmax_pool(plan.a, plan.g, plan.offsets, spec.dim, entries);
  const int64_t width = kv.row_size();
  ops.copy_rows(plan.state_src, plan.state_dst, width);  // cur → prev first: batch rows may overwrite cur
  ops.copy_rows(plan.batch_src, plan.batch_dst, width);
  if (n == 0) return;
  ops.finish_rows(entries, spec.dim, plan.entry_pos,
                  {.round_input = true, .norm = true, .norm_weight = &w.norm,
                   .eps = static_cast<float>(cfg.rms_norm_eps), .rope_dim = cfg.qk_rope_head_dim,
                   .rope = &layer.rope,
                   .round = spec.indexer ? backend::RowFinish::Round::Indexer : backend::RowFinish::Round::Kv});
  // Destinations last-to-first: a growing contiguous cache reaches its final size on the first call. Indexer keys
  // of caches with Mxfp4 rows and entries of caches with Fp8Kv rows are packed (lossless: finish_rows FP4-rounded
  // the keys in the official numerics, and FP8-rounded the entries with the FP8 KV cache).
  std::vector<const float*> src(static_cast<size_t>(n));
  std::vector<float*> dst(static_cast<size_t>(n));
  auto format_of = [&](const SequenceCache* seq) { return spec.indexer ? seq->index_key_format() : seq->kv_format(); };
  const RowFormat format = format_of(plan.owner[0]);
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t wi = plan.entry_pos[static_cast<size_t>(i)] / spec.ratio;
    SequenceCache* seq = plan.owner[static_cast<size_t>(i)];
    check(format_of(seq) == format, spec.indexer ? "compressor: indexer key formats differ in one batch"
                                                 : "compressor: compressed entry formats differ in one batch");
    src[i] = entries.row(i);
    dst[i] = spec.indexer ? seq->index_key_row(layer.il, wi) : seq->compressed_row(layer.il, wi);
  }
  if (format == RowFormat::Mxfp4) {
    ops.pack_rows_mxfp4(src, dst, spec.dim);
  } else if (format == RowFormat::Fp8Kv) {
    check(ops.numerics().kv_cache == backend::KvCacheDtype::Fp8,
          "compressor: Fp8Kv entries need the FP8 KV cache numerics (other roundings do not pack losslessly)");
    ops.pack_rows_fp8kv(src, dst, spec.dim, cfg.qk_rope_head_dim);
  } else {
    ops.copy_rows(src, dst, spec.dim);
  }
}

}  // namespace dsv4::model
