// Transformer forward; see transformer.h.
#include "model/transformer.h"

#include "model/block.h"
#include "model/rope.h"

namespace dsv4::model {

Transformer::Transformer(const ModelConfig& cfg, const weights::ModelWeights& w, backend::Ops& ops)
    : cfg_(cfg), w_(w), ops_(ops) {
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il)
    layers_.push_back({.il = il, .ratio = cfg.compress_ratio(il), .hash = cfg.is_hash_layer(il),
                       .mtp_index = -1, .rope = layer_rope_table(cfg, il)});
  for (int64_t i = 0; i < static_cast<int64_t>(w.mtp.size()); ++i) {
    int64_t il = cfg.num_hidden_layers + i;
    mtp_layers_.push_back({.il = il, .ratio = cfg.compress_ratio(il), .hash = false, .mtp_index = i,
                           .rope = layer_rope_table(cfg, il)});
  }
}

void Transformer::head(const Tensor& X, const weights::HcWeights& hc, const weights::Weight& norm,
                       Tensor& logits) {
  Tensor y;
  ops_.hc_head(X, hc, hc_params(cfg_), y);
  ops_.rms_norm(y, cfg_.hidden_size, &norm, static_cast<float>(cfg_.rms_norm_eps));
  ops_.linear(y, w_.head, logits, backend::LinearKind::F32);
}

void Transformer::forward(const ForwardBatch& batch, const ForwardOptions& opt, ForwardOutput& out) {
  const int64_t hc = cfg_.hc_mult;
  // A decode step (one row per sequence) may run as backend graphs; break points after the embed and each half block.
  bool decode = !batch.chunks.empty();
  for (const BatchChunk& c : batch.chunks) decode = decode && c.n_rows == 1;
  if (decode) ops_.graph_begin(batch.n_rows());
  Tensor h, X, logits;
  try {
    ops_.embed(w_.embed, batch.tokens, h);
    ops_.hc_expand(h, hc, X);
    for (size_t il = 0; il < layers_.size(); ++il) {
      if (decode) ops_.graph_break();
      block_forward(ops_, cfg_, layers_[il], w_.layers[il], batch, X);
    }
    if (decode) ops_.graph_break();
    if (opt.all_logits) {
      head(X, w_.hc_head, w_.norm, logits);
    } else {
      // The last row of each chunk.
      std::vector<int64_t> rows;
      for (const BatchChunk& c : batch.chunks) rows.push_back(c.row_begin + c.n_rows - 1);
      Tensor Xs;
      ops_.gather_rows(X, rows, Xs);
      head(Xs, w_.hc_head, w_.norm, logits);
    }
    if (decode) ops_.graph_end();
  } catch (...) {
    if (decode) ops_.graph_abort();
    throw;
  }
  for (const BatchChunk& c : batch.chunks) c.seq->n_past += c.n_rows;
  if (opt.keep_hidden) out.hidden = X;
  out.logits = logits.on_host() || opt.logits_on_device ? std::move(logits) : logits.to(Device::Host);
}

void Transformer::mtp_forward(const ForwardBatch& batch, const Tensor& hidden, Tensor& logits) {
  check(!w_.mtp.empty(), "this checkpoint has no MTP block");
  const weights::MtpWeights& m = w_.mtp[0];
  const int64_t T = batch.n_rows(), D = cfg_.hidden_size, hc = cfg_.hc_mult;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  check(hidden.numel() == T * hc * D, "mtp_forward: hidden must be [T, hc, D]");
  check(hidden.device() == ops_.device(), "mtp_forward: hidden is on another device than the backend");
  Tensor e, hs = hidden, pe, ph;
  ops_.embed(w_.embed, batch.tokens, e);
  ops_.rms_norm(e, D, &m.enorm, eps);
  ops_.rms_norm(hs, D, &m.hnorm, eps);
  ops_.linear(e, m.e_proj, pe, backend::LinearKind::Quantized);   // [T, D]
  ops_.linear(hs, m.h_proj, ph, backend::LinearKind::Quantized);  // [T*hc, D]
  Tensor X;
  ops_.hc_expand(pe, hc, X);  // X[t, j] = pe[t] + ph[t, j]
  ops_.add(X, ph);
  ops_.round_act(X);
  block_forward(ops_, cfg_, mtp_layers_[0], m.block, batch, X);
  for (const BatchChunk& c : batch.chunks) c.seq->mtp_n_past += c.n_rows;
  Tensor lg;
  head(X, m.hc_head, m.norm, lg);
  logits = lg.on_host() ? std::move(lg) : lg.to(Device::Host);
}

ForwardBatch single_batch(SequenceCache& seq, std::span<const int32_t> tokens, bool for_mtp) {
  ForwardBatch b;
  int64_t pos0 = for_mtp ? seq.mtp_n_past : seq.n_past;
  b.tokens.assign(tokens.begin(), tokens.end());
  for (size_t i = 0; i < tokens.size(); ++i) b.pos.push_back(pos0 + static_cast<int64_t>(i));
  b.chunks.push_back({.seq = &seq, .row_begin = 0, .n_rows = static_cast<int64_t>(tokens.size()), .pos0 = pos0});
  return b;
}

}  // namespace dsv4::model
