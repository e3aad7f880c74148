// MoE ops of the CPU reference: the sqrt-softplus router with bias-for-selection or tid2eid hash routing
// (spec §6.1), and one expert's clamped SwiGLU FFN (§6.2). The routing weight multiplies the hidden
// activation before w2, as in the reference.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "weights/quant/dequant.h"

namespace dsv4::backend {
namespace {
float softplus(float z) { return z > 20.0f ? z : std::log1p(std::exp(z)); }
float silu(float z) { return z / (1.0f + std::exp(-z)); }
}  // namespace

void CpuOps::route(const HostTensor& logits, const Weight* bias, const Weight* tid2eid,
                   std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                   std::vector<int32_t>& sel, std::vector<float>& weight) {
  int64_t T = logits.dim(0), E = logits.row_size();
  sel.assign(static_cast<size_t>(T * top_k), 0);
  weight.assign(static_cast<size_t>(T * top_k), 0.0f);
  std::vector<float> b = bias && bias->present() ? weights::dequant_all(*bias) : std::vector<float>();
  std::vector<float> s(static_cast<size_t>(E));
  std::vector<int32_t> order(static_cast<size_t>(E));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t e = 0; e < E; ++e) s[e] = std::sqrt(softplus(logits.data()[t * E + e]));
    int32_t* st = sel.data() + t * top_k;
    if (tid2eid) {
      for (int64_t k = 0; k < top_k; ++k)
        st[k] = static_cast<int32_t>(weights::read_int(*tid2eid, tokens[static_cast<size_t>(t)] * top_k + k));
    } else {
      std::iota(order.begin(), order.end(), 0);
      auto key = [&](int32_t e) { return s[e] + (b.empty() ? 0.0f : b[e]); };
      std::partial_sort(order.begin(), order.begin() + top_k, order.end(), [&](int32_t x, int32_t y) {
        float kx = key(x), ky = key(y);
        return kx > ky || (kx == ky && x < y);
      });
      std::copy(order.begin(), order.begin() + top_k, st);
    }
    float sum = 0;
    for (int64_t k = 0; k < top_k; ++k) sum += s[st[k]];
    for (int64_t k = 0; k < top_k; ++k)
      weight[t * top_k + k] = (normalize ? s[st[k]] / sum : s[st[k]]) * route_scale;
  }
}

void CpuOps::expert_ffn(const HostTensor& x, const weights::ExpertWeights& e, const float* weight,
                        float swiglu_limit, HostTensor& y) {
  HostTensor g, u;
  linear(x, e.w1, g, LinearKind::Quantized);
  linear(x, e.w3, u, LinearKind::Quantized);
  int64_t n = x.dim(0), I = g.row_size();
  for (int64_t r = 0; r < n; ++r) {
    float* gr = g.row(r);
    const float* ur = u.row(r);
    for (int64_t i = 0; i < I; ++i) {
      float gv = gr[i], uv = ur[i];
      if (swiglu_limit > 0) {
        uv = std::clamp(uv, -swiglu_limit, swiglu_limit);
        gv = std::min(gv, swiglu_limit);
      }
      float h = silu(gv) * uv;
      if (weight) h *= weight[r];
      gr[i] = bf16_acts() ? round_bf16(h) : h;
    }
  }
  linear(g, e.w2, y, LinearKind::Quantized);
}

void CpuOps::moe_experts(const HostTensor& x, const HostTensor& logits, const weights::MoEWeights& w, bool hash,
                         std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                         float swiglu_limit, HostTensor& out) {
  const int64_t T = x.dim(0), D = x.row_size();
  std::vector<int32_t> sel;
  std::vector<float> weight;
  route(logits, hash ? nullptr : &w.gate_bias, hash ? &w.tid2eid : nullptr, tokens, top_k, normalize, route_scale,
        sel, weight);
  out.resize({T, D}, 0.0f);
  // Rows grouped by expert, ascending expert id (the reference's accumulation order).
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert(w.experts.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < top_k; ++k) by_expert[sel[t * top_k + k]].push_back({t, weight[t * top_k + k]});
  HostTensor xe, ye;
  for (size_t e = 0; e < by_expert.size(); ++e) {
    const auto& rows = by_expert[e];
    if (rows.empty()) continue;
    const int64_t n = static_cast<int64_t>(rows.size());
    xe.resize({n, D});
    std::vector<float> we(rows.size());
    for (int64_t i = 0; i < n; ++i) {
      std::copy(x.row(rows[i].first), x.row(rows[i].first) + D, xe.row(i));
      we[i] = rows[i].second;
    }
    expert_ffn(xe, w.experts[e], we.data(), swiglu_limit, ye);
    for (int64_t i = 0; i < n; ++i) {
      float* o = out.row(rows[i].first);
      const float* y = ye.row(i);
      for (int64_t c = 0; c < D; ++c) o[c] += y[c];
    }
  }
}

}  // namespace dsv4::backend
