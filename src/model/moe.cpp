// MoE sublayer; see moe.h.
#include "model/moe.h"

namespace dsv4::model {

void moe_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                 const weights::MoEWeights& w, const ForwardBatch& batch, const HostTensor& x, HostTensor& out) {
  const int64_t T = batch.n_rows(), D = cfg.hidden_size, K = cfg.num_experts_per_tok;
  HostTensor logits;
  ops.linear(x, w.gate_weight, logits, backend::LinearKind::F32);
  std::vector<int32_t> sel;
  std::vector<float> weight;
  ops.route(logits, layer.hash ? nullptr : &w.gate_bias, layer.hash ? &w.tid2eid : nullptr, batch.tokens, K,
            cfg.norm_topk_prob, static_cast<float>(cfg.routed_scaling_factor), sel, weight);
  out.resize({T, D}, 0.0f);
  const float limit = static_cast<float>(cfg.swiglu_limit);
  // Group rows by expert, ascending expert id (the reference's accumulation order).
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert(static_cast<size_t>(cfg.n_routed_experts));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) by_expert[sel[t * K + k]].push_back({t, weight[t * K + k]});
  HostTensor xe, ye;
  for (size_t e = 0; e < by_expert.size(); ++e) {
    const auto& rows = by_expert[e];
    if (rows.empty()) continue;
    int64_t n = static_cast<int64_t>(rows.size());
    xe.resize({n, D});
    std::vector<float> we(rows.size());
    for (int64_t i = 0; i < n; ++i) {
      std::copy(x.row(rows[i].first), x.row(rows[i].first) + D, xe.row(i));
      we[i] = rows[i].second;
    }
    ops.expert_ffn(xe, w.experts[e], we.data(), limit, ye);
    for (int64_t i = 0; i < n; ++i) {
      float* o = out.row(rows[i].first);
      const float* y = ye.row(i);
      for (int64_t c = 0; c < D; ++c) o[c] += y[c];
    }
  }
  ops.expert_ffn(x, w.shared, nullptr, limit, ye);
  for (int64_t i = 0; i < T * D; ++i) out.data()[i] += ye.data()[i];
  ops.round_act(out);
}

}  // namespace dsv4::model
