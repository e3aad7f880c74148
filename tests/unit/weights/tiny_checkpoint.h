// Test fixture for the weights tests: a tiny DeepSeek-V4 config and a complete random checkpoint for it, in
// the official naming (the HF-hub release) or in the HF-transformers state_dict naming (written here from
// transformers' modeling_deepseek_v4.py, independently of src/weights/names.cpp, so the tests check the
// binder's translation against a second source). Formats: all BF16; FP8 linears + MXFP4 experts (the
// release); FP8 everywhere.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model/config.h"
#include "testlib/safetensors_writer.h"

namespace dsv4::testing {

using TensorMap = std::map<std::string, StTensor>;

// hidden 256, 2 layers with ratios {4, 128} + 1 MTP layer (ratio 0), 2 heads of 128, q_lora 128,
// 2 output groups of rank 64, indexer 2 heads of 128, 4 experts top-2 of width 64, vocab 64, 1 hash layer.
inline model::ModelConfig tiny_config() {
  model::ModelConfig c;
  c.vocab_size = 64;
  c.hidden_size = 256;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.q_lora_rank = 128;
  c.o_lora_rank = 64;
  c.o_groups = 2;
  c.sliding_window = 128;
  c.compress_ratios = {4, 128, 0};
  c.max_position_embeddings = 4096;
  c.index_n_heads = 2;
  c.index_head_dim = 128;
  c.index_topk = 16;
  c.n_routed_experts = 4;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 64;
  c.num_hash_layers = 1;
  c.hc_mult = 4;
  c.num_nextn_predict_layers = 1;
  return c;
}

enum class TinyFormat { Bf16, Fp8Mxfp4, Fp8 };

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

class TinyOfficial {
 public:
  TinyOfficial(const model::ModelConfig& c, TinyFormat f, uint64_t seed) : c_(c), f_(f), rng_(seed) {}

  TensorMap build() {
    const int64_t D = c_.hidden_size, hc = c_.hc_mult;
    add("embed.weight", "BF16", {c_.vocab_size, D});
    add("head.weight", "BF16", {c_.vocab_size, D});
    add("norm.weight", "BF16", {D});
    add("hc_head_fn", "F32", {hc, hc * D});
    add("hc_head_base", "F32", {hc});
    add("hc_head_scale", "F32", {1});
    for (int64_t il = 0; il < c_.num_hidden_layers; ++il)
      block("layers." + std::to_string(il) + ".", c_.compress_ratios[static_cast<size_t>(il)], il < c_.num_hash_layers);
    for (int64_t k = 0; k < c_.num_nextn_predict_layers; ++k) {
      const std::string p = "mtp." + std::to_string(k) + ".";
      block(p, c_.compress_ratios[static_cast<size_t>(c_.num_hidden_layers + k)], false);
      linear(p + "e_proj", D, D, false);
      linear(p + "h_proj", D, D, false);
      for (const char* n : {"enorm", "hnorm", "norm"}) add(p + n + ".weight", "BF16", {D});
      add(p + "hc_head_fn", "F32", {hc, hc * D});
      add(p + "hc_head_base", "F32", {hc});
      add(p + "hc_head_scale", "F32", {1});
    }
    return std::move(m_);
  }

 private:
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape) {
    m_[name] = st_random(name, dtype, std::move(shape), rng_);
  }
  void linear(const std::string& p, int64_t out, int64_t in, bool expert) {
    if (f_ == TinyFormat::Bf16) return add(p + ".weight", "BF16", {out, in});
    if (expert && f_ == TinyFormat::Fp8Mxfp4) {
      add(p + ".weight", "I8", {out, in / 2});
      return add(p + ".scale", "F8_E8M0", {out, in / 32});
    }
    add(p + ".weight", "F8_E4M3", {out, in});
    add(p + ".scale", "F8_E8M0", {cdiv(out, 128), cdiv(in, 128)});
  }
  void compressor(const std::string& p, int64_t m, int64_t dp) {
    const int64_t w = (m == 4 ? 2 : 1) * dp;
    add(p + "wkv.weight", "BF16", {w, c_.hidden_size});
    add(p + "wgate.weight", "BF16", {w, c_.hidden_size});
    add(p + "ape", "F32", {m, w});
    add(p + "norm.weight", "BF16", {dp});
  }
  void block(const std::string& p, int64_t m, bool hash) {
    const int64_t D = c_.hidden_size, H = c_.num_attention_heads, d = c_.head_dim, q = c_.q_lora_rank;
    const int64_t mix = (2 + c_.hc_mult) * c_.hc_mult, GR = c_.o_groups * c_.o_lora_rank;
    const int64_t E = c_.n_routed_experts, I = c_.moe_intermediate_size;
    for (const char* s : {"hc_attn_", "hc_ffn_"}) {
      add(p + s + "fn", "F32", {mix, c_.hc_mult * D});
      add(p + s + "base", "F32", {mix});
      add(p + s + "scale", "F32", {3});
    }
    add(p + "attn_norm.weight", "BF16", {D});
    add(p + "ffn_norm.weight", "BF16", {D});
    add(p + "attn.attn_sink", "F32", {H});
    linear(p + "attn.wq_a", q, D, false);
    add(p + "attn.q_norm.weight", "BF16", {q});
    linear(p + "attn.wq_b", H * d, q, false);
    linear(p + "attn.wkv", d, D, false);
    add(p + "attn.kv_norm.weight", "BF16", {d});
    linear(p + "attn.wo_a", GR, (H / c_.o_groups) * d, false);
    linear(p + "attn.wo_b", D, GR, false);
    if (m > 0) compressor(p + "attn.compressor.", m, d);
    if (m == 4) {
      linear(p + "attn.indexer.wq_b", c_.index_n_heads * c_.index_head_dim, q, false);
      add(p + "attn.indexer.weights_proj.weight", "BF16", {c_.index_n_heads, D});
      compressor(p + "attn.indexer.compressor.", 4, c_.index_head_dim);
    }
    add(p + "ffn.gate.weight", "BF16", {E, D});
    if (hash) {
      const int64_t k = c_.num_experts_per_tok;
      std::vector<int64_t> ids;
      for (int64_t r = 0; r < c_.vocab_size; ++r)
        for (int64_t j = 0; j < k; ++j) ids.push_back((r + j) % E);  // distinct within a row (k <= E)
      m_[p + "ffn.gate.tid2eid"] = st_i64(p + "ffn.gate.tid2eid", {c_.vocab_size, k}, ids);
    } else {
      add(p + "ffn.gate.bias", "F32", {E});
    }
    for (int64_t e = 0; e < E; ++e) {
      const std::string ep = p + "ffn.experts." + std::to_string(e) + ".";
      linear(ep + "w1", I, D, true);
      linear(ep + "w2", D, I, true);
      linear(ep + "w3", I, D, true);
    }
    linear(p + "ffn.shared_experts.w1", I, D, false);
    linear(p + "ffn.shared_experts.w2", D, I, false);
    linear(p + "ffn.shared_experts.w3", I, D, false);
  }

  const model::ModelConfig& c_;
  TinyFormat f_;
  std::mt19937_64 rng_;
  TensorMap m_;
};

inline TensorMap tiny_official(const model::ModelConfig& c, TinyFormat f = TinyFormat::Bf16, uint64_t seed = 1) {
  return TinyOfficial(c, f, seed).build();
}

// transformers DeepseekV4ForCausalLM state_dict names for the official module path inside a layer.
inline std::string hf_layer_module(const std::string& m) {
  static const std::map<std::string, std::string> k = {
      {"attn_norm", "input_layernorm"},
      {"ffn_norm", "post_attention_layernorm"},
      {"hc_attn_fn", "attn_hc.fn"},
      {"hc_attn_base", "attn_hc.base"},
      {"hc_attn_scale", "attn_hc.scale"},
      {"hc_ffn_fn", "ffn_hc.fn"},
      {"hc_ffn_base", "ffn_hc.base"},
      {"hc_ffn_scale", "ffn_hc.scale"},
      {"attn.attn_sink", "self_attn.sinks"},
      {"attn.wq_a", "self_attn.q_a_proj"},
      {"attn.q_norm", "self_attn.q_a_norm"},
      {"attn.wq_b", "self_attn.q_b_proj"},
      {"attn.wkv", "self_attn.kv_proj"},
      {"attn.kv_norm", "self_attn.kv_norm"},
      {"attn.wo_a", "self_attn.o_a_proj"},
      {"attn.wo_b", "self_attn.o_b_proj"},
      {"attn.compressor.wkv", "self_attn.compressor.kv_proj"},
      {"attn.compressor.wgate", "self_attn.compressor.gate_proj"},
      {"attn.compressor.ape", "self_attn.compressor.position_bias"},
      {"attn.compressor.norm", "self_attn.compressor.kv_norm"},
      {"attn.indexer.wq_b", "self_attn.compressor.indexer.q_b_proj"},
      {"attn.indexer.weights_proj", "self_attn.compressor.indexer.scorer.weights_proj"},
      {"attn.indexer.compressor.wkv", "self_attn.compressor.indexer.kv_proj"},
      {"attn.indexer.compressor.wgate", "self_attn.compressor.indexer.gate_proj"},
      {"attn.indexer.compressor.ape", "self_attn.compressor.indexer.position_bias"},
      {"attn.indexer.compressor.norm", "self_attn.compressor.indexer.kv_norm"},
      {"ffn.gate", "mlp.gate"},
      {"ffn.gate.bias", "mlp.gate.e_score_correction_bias"},
      {"ffn.gate.tid2eid", "mlp.gate.tid2eid"},
      {"ffn.shared_experts.w1", "mlp.shared_experts.gate_proj"},
      {"ffn.shared_experts.w2", "mlp.shared_experts.down_proj"},
      {"ffn.shared_experts.w3", "mlp.shared_experts.up_proj"},
  };
  auto it = k.find(m);
  return it == k.end() ? "" : it->second;
}

// Official name -> HF name ("" for routed experts, which are fused separately).
inline std::string hf_name(const std::string& off) {
  static const std::map<std::string, std::string> g = {
      {"embed.weight", "model.embed_tokens.weight"}, {"head.weight", "lm_head.weight"},
      {"norm.weight", "model.norm.weight"},          {"hc_head_fn", "model.hc_head.hc_fn"},
      {"hc_head_base", "model.hc_head.hc_base"},     {"hc_head_scale", "model.hc_head.hc_scale"},
  };
  if (auto it = g.find(off); it != g.end()) return it->second;
  const size_t dot = off.find('.', 7);
  const std::string prefix = "model." + off.substr(0, dot + 1), rest = off.substr(dot + 1);
  if (rest.rfind("ffn.experts.", 0) == 0) return "";
  for (const char* suffix : {".weight", ".scale"}) {
    const std::string s(suffix);
    if (rest.size() > s.size() && rest.compare(rest.size() - s.size(), s.size(), s) == 0) {
      const std::string mod = hf_layer_module(rest.substr(0, rest.size() - s.size()));
      if (!mod.empty()) return prefix + mod + (s == ".weight" ? ".weight" : ".weight_scale_inv");
    }
  }
  return prefix + hf_layer_module(rest);
}

inline StTensor e8m0_to_f32(const StTensor& s, const std::string& name) {
  std::vector<float> v;
  for (uint8_t b : s.bytes) v.push_back(b == 0xFF ? NAN : std::ldexp(1.0f, static_cast<int>(b) - 127));
  return st_f32(name, s.shape, v);
}

// Fuses layer il's routed experts like transformers: gate_up_proj [E, 2I, D] (w1 rows, then w3 rows per
// expert), down_proj [E, D, I], scales `<name>_scale_inv` fused the same way.
inline void fuse_experts(const TensorMap& off, TensorMap& out, int64_t il, const model::ModelConfig& c,
                         bool f32_scales) {
  const std::string p = "layers." + std::to_string(il) + ".ffn.experts.";
  const std::string hp = "model.layers." + std::to_string(il) + ".mlp.experts.";
  const int64_t E = c.n_routed_experts;
  const StTensor& w10 = off.at(p + "0.w1.weight");
  const bool quant = off.count(p + "0.w1.scale") > 0, fp8 = w10.dtype == "F8_E4M3";
  auto fuse = [&](const std::string& name, std::vector<const char*> parts, const char* what) {
    StTensor t{name, "", {}, {}};
    for (int64_t e = 0; e < E; ++e) {
      std::vector<uint8_t> rows;
      std::vector<int64_t> shape;
      for (const char* w : parts) {
        const StTensor& s = off.at(p + std::to_string(e) + "." + w + what);
        t.dtype = s.dtype;
        shape = shape.empty() ? s.shape : std::vector<int64_t>{shape[0] + s.shape[0], s.shape[1]};
        rows.insert(rows.end(), s.bytes.begin(), s.bytes.end());
      }
      if (fp8 && std::string(what) == ".scale" && parts.size() == 2) {  // 128-row blocks over the fused rows
        shape[0] = cdiv(2 * c.moe_intermediate_size, 128);
        rows.resize(static_cast<size_t>(shape[0] * shape[1]));
      }
      t.shape = {E, shape[0], shape[1]};
      t.bytes.insert(t.bytes.end(), rows.begin(), rows.end());
    }
    if (std::string(what) == ".scale" && f32_scales && fp8) t = e8m0_to_f32(t, name);
    out[name] = t;
  };
  fuse(hp + "gate_up_proj", {"w1", "w3"}, ".weight");
  fuse(hp + "down_proj", {"w2"}, ".weight");
  if (quant) {
    fuse(hp + "gate_up_proj_scale_inv", {"w1", "w3"}, ".scale");
    fuse(hp + "down_proj_scale_inv", {"w2"}, ".scale");
  }
}

// The same checkpoint as transformers would save it (no mtp.*; F32 weight_scale_inv when f32_scales).
inline TensorMap to_transformers(const TensorMap& off, const model::ModelConfig& c, bool f32_scales = false) {
  TensorMap out;
  for (const auto& [name, t] : off) {
    if (name.rfind("mtp.", 0) == 0) continue;
    const std::string hn = hf_name(name);
    if (hn.empty()) continue;
    StTensor r = t;
    r.name = hn;
    if (f32_scales && t.dtype == "F8_E8M0" && name.size() > 6 && name.compare(name.size() - 6, 6, ".scale") == 0)
      r = e8m0_to_f32(t, hn);
    out[hn] = r;
  }
  for (int64_t il = 0; il < c.num_hidden_layers; ++il) fuse_experts(off, out, il, c, f32_scales);
  return out;
}

inline std::vector<StTensor> as_list(const TensorMap& m) {
  std::vector<StTensor> v;
  for (const auto& [_, t] : m) v.push_back(t);
  return v;
}

// gtest check that `s` contains `sub` (error messages must name files, tensors, shapes).
inline ::testing::AssertionResult contains(const std::string& s, const std::string& sub) {
  if (s.find(sub) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message \"" << s << "\" does not contain \"" << sub << "\"";
}

// Directories made by fresh_dir(), removed at process exit.
struct TempDirs {
  std::vector<std::filesystem::path> dirs;
  ~TempDirs() {
    for (const auto& d : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};
inline TempDirs& temp_dirs() {
  static TempDirs t;
  return t;
}

// A fresh, empty directory for the current test.
inline std::filesystem::path fresh_dir(const std::string& tag = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("dsv4_weights_") + std::to_string(::getpid()) + "_" + info->test_suite_name() +
                     "_" + info->name() + tag;
  auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  temp_dirs().dirs.push_back(dir);
  return dir;
}

}  // namespace dsv4::testing
