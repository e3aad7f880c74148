// Block = hc_pre → norm → attention → hc_post, then hc_pre → norm → MoE → hc_post.
#include "model/block.h"

#include "model/attention.h"
#include "model/moe.h"

namespace dsv4::model {

backend::HcParams hc_params(const ModelConfig& cfg) {
  return {.hc = cfg.hc_mult,
          .sinkhorn_iters = cfg.hc_sinkhorn_iters,
          .hc_eps = static_cast<float>(cfg.hc_eps),
          .norm_eps = static_cast<float>(cfg.rms_norm_eps)};
}

void block_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                   const weights::BlockWeights& w, const ForwardBatch& batch, Tensor& X) {
  const backend::HcParams hp = hc_params(cfg);
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  Tensor x, post, comb, y, Xn;
  ops.hc_pre_norm(X, w.hc_attn, hp, w.attn_norm, eps, x, post, comb);
  attention_forward(ops, cfg, layer, w.attn, batch, x, y);
  ops.hc_post(y, X, post, comb, Xn);
  ops.graph_break();  // a break point of a graph step (ops.h): half blocks let the GPU start sooner
  ops.hc_pre_norm(Xn, w.hc_ffn, hp, w.ffn_norm, eps, x, post, comb);
  moe_forward(ops, cfg, layer, w.ffn, batch, x, y);
  ops.hc_post(y, Xn, post, comb, X);
}

}  // namespace dsv4::model
