// Default implementations of the Ops interface (ops.h).
#include "backend/ops.h"

#include "core/check.h"

namespace dsv4::backend {

void Ops::finish_rows(Tensor& x, int64_t dim, std::span<const int64_t> pos, const RowFinish& f) {
  if (f.round_input) round_act(x);
  if (f.norm) rms_norm(x, dim, f.norm_weight, f.eps);
  if (f.rope_dim > 0) {
    check(f.rope != nullptr, "finish_rows: RoPE without a table");
    rope(x, dim, f.rope_dim, pos, *f.rope, false);
  }
  if (f.round == RowFinish::Round::Kv) kv_round(x, dim, f.rope_dim, numerics().kv_cache);
  if (f.round == RowFinish::Round::Indexer) indexer_round(x, dim, numerics().indexer);
}

void Ops::hc_pre_norm(const Tensor& X, const HcWeights& w, const HcParams& p, const Weight& norm, float eps,
                      Tensor& x, Tensor& post, Tensor& comb) {
  hc_pre(X, w, p, x, post, comb);
  rms_norm(x, x.row_size(), &norm, eps);
}

void Ops::add_round(Tensor& y, const Tensor& x) {
  add(y, x);
  round_act(y);
}

void Ops::scale_round(Tensor& x, float s) {
  scale(x, s);
  round_act(x);
}

}  // namespace dsv4::backend
