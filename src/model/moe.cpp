// MoE sublayer; see moe.h.
#include "model/moe.h"

#include "model/branches.h"

namespace dsv4::model {

void moe_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                 const weights::MoEWeights& w, const ForwardBatch& batch, const Tensor& x, Tensor& out) {
  const int64_t K = cfg.num_experts_per_tok;
  const float limit = static_cast<float>(cfg.swiglu_limit);
  Tensor logits, ye;
  {
    Branches br(ops);  // the shared expert beside routing and the routed experts (model/branches.h)
    br.side([&] { ops.expert_ffn(x, w.shared, nullptr, limit, ye); });
    ops.linear(x, w.gate_weight, logits, backend::LinearKind::F32);
    ops.moe_experts(x, logits, w, layer.hash, batch.tokens, K, cfg.norm_topk_prob,
                    static_cast<float>(cfg.routed_scaling_factor), limit, out);
  }
  ops.add_round(out, ye);
}

}  // namespace dsv4::model
