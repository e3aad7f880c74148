// Test helpers over a bound ModelWeights: visit every Weight under its official name, compare a bound view
// with the bytes the fixture wrote, and write-then-load a tensor map in one call.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "tiny_checkpoint.h"
#include "weights/loader.h"
#include "weights/model_weights.h"

namespace dsv4::testing {

using weights::ModelWeights;
using weights::Weight;
using VisitFn = std::function<void(const std::string& official, const Weight& w)>;

inline void visit_hc(const weights::HcWeights& hc, const std::string& p, const VisitFn& f) {
  f(p + "fn", hc.fn);
  f(p + "base", hc.base);
  f(p + "scale", hc.scale);
}

inline void visit_compressor(const weights::CompressorWeights& c, const std::string& p, const VisitFn& f) {
  f(p + "wkv.weight", c.wkv);
  f(p + "wgate.weight", c.wgate);
  f(p + "ape", c.ape);
  f(p + "norm.weight", c.norm);
}

inline void visit_block(const weights::BlockWeights& b, const std::string& p, const VisitFn& f) {
  visit_hc(b.hc_attn, p + "hc_attn_", f);
  visit_hc(b.hc_ffn, p + "hc_ffn_", f);
  f(p + "attn_norm.weight", b.attn_norm);
  f(p + "ffn_norm.weight", b.ffn_norm);
  const auto& a = b.attn;
  f(p + "attn.attn_sink", a.attn_sink);
  for (auto [n, w] : {std::pair{"wq_a", &a.wq_a}, {"q_norm", &a.q_norm}, {"wq_b", &a.wq_b}, {"wkv", &a.wkv},
                      {"kv_norm", &a.kv_norm}, {"wo_a", &a.wo_a}, {"wo_b", &a.wo_b}})
    f(p + "attn." + n + ".weight", *w);
  if (a.compressor) visit_compressor(*a.compressor, p + "attn.compressor.", f);
  if (a.indexer) {
    f(p + "attn.indexer.wq_b.weight", a.indexer->wq_b);
    f(p + "attn.indexer.weights_proj.weight", a.indexer->weights_proj);
    visit_compressor(a.indexer->compressor, p + "attn.indexer.compressor.", f);
  }
  const auto& m = b.ffn;
  f(p + "ffn.gate.weight", m.gate_weight);
  if (m.gate_bias.present()) f(p + "ffn.gate.bias", m.gate_bias);
  if (m.tid2eid.present()) f(p + "ffn.gate.tid2eid", m.tid2eid);
  for (size_t e = 0; e < m.experts.size(); ++e) {
    const std::string ep = p + "ffn.experts." + std::to_string(e) + ".";
    f(ep + "w1.weight", m.experts[e].w1);
    f(ep + "w2.weight", m.experts[e].w2);
    f(ep + "w3.weight", m.experts[e].w3);
  }
  f(p + "ffn.shared_experts.w1.weight", m.shared.w1);
  f(p + "ffn.shared_experts.w2.weight", m.shared.w2);
  f(p + "ffn.shared_experts.w3.weight", m.shared.w3);
}

inline void visit_all(const ModelWeights& mw, const VisitFn& f) {
  f("embed.weight", mw.embed);
  f("head.weight", mw.head);
  f("norm.weight", mw.norm);
  visit_hc(mw.hc_head, "hc_head_", f);
  for (size_t il = 0; il < mw.layers.size(); ++il) visit_block(mw.layers[il], "layers." + std::to_string(il) + ".", f);
  for (size_t k = 0; k < mw.mtp.size(); ++k) {
    const std::string p = "mtp." + std::to_string(k) + ".";
    const auto& t = mw.mtp[k];
    visit_block(t.block, p, f);
    f(p + "e_proj.weight", t.e_proj);
    f(p + "h_proj.weight", t.h_proj);
    f(p + "enorm.weight", t.enorm);
    f(p + "hnorm.weight", t.hnorm);
    f(p + "norm.weight", t.norm);
    visit_hc(t.hc_head, p + "hc_head_", f);
  }
}

// Checks every bound Weight against the official tensors the checkpoint was made from: same bytes (views,
// also for fused experts), same scale bytes (or the same values for F32 scales). Returns the number of
// official tensors (weights + scales) matched.
inline size_t expect_matches_official(const ModelWeights& mw, const TensorMap& off) {
  size_t matched = 0;
  visit_all(mw, [&](const std::string& name, const Weight& w) {
    auto it = off.find(name);
    ASSERT_NE(it, off.end()) << name;
    ASSERT_TRUE(w.present()) << name;
    const StTensor& t = it->second;
    EXPECT_EQ(std::string(dtype_name(w.dtype)), t.dtype) << name;
    Shape logical(t.shape.begin(), t.shape.end());
    if (w.quant == weights::Quant::Mxfp4) logical.back() *= 2;
    EXPECT_EQ(w.shape, logical) << name;
    EXPECT_EQ(std::memcmp(w.data, t.bytes.data(), t.bytes.size()), 0) << name;
    ++matched;
    const bool is_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
    const std::string sname = is_weight ? name.substr(0, name.size() - 7) + ".scale" : "";
    auto s = off.find(sname);
    if (s == off.end()) {
      EXPECT_EQ(w.quant, weights::Quant::None) << name;
      return;
    }
    ++matched;
    ASSERT_NE(w.scale, nullptr) << name;
    EXPECT_EQ(w.scale_shape, Shape(s->second.shape.begin(), s->second.shape.end())) << name;
    if (w.scale_dtype == DType::F8_E8M0) {
      EXPECT_EQ(std::memcmp(w.scale, s->second.bytes.data(), s->second.bytes.size()), 0) << name;
    } else {
      ASSERT_EQ(w.scale_dtype, DType::F32) << name;
      for (size_t i = 0; i < s->second.bytes.size(); ++i) {
        float v;
        std::memcpy(&v, static_cast<const uint8_t*>(w.scale) + 4 * i, 4);
        const uint8_t b = s->second.bytes[i];
        if (b != 0xFF) {
          ASSERT_EQ(v, std::ldexp(1.0f, b - 127)) << name << " scale " << i;
        }
      }
    }
  });
  return matched;
}

// Writes `m` into a fresh directory with `layout` and loads it.
inline Result<ModelWeights> write_and_load(const TensorMap& m, const model::ModelConfig& c,
                                           StLayout layout = StLayout::Single, std::filesystem::path* dir = nullptr) {
  auto d = fresh_dir();
  write_checkpoint(d, as_list(m), layout, 4);
  if (dir) *dir = d;
  return weights::load_weights(d, c);
}

}  // namespace dsv4::testing
