// The model-structure walk of the binder (binder.h). Names are built in the official scheme and translated by
// TensorBinder; the only structural difference between the schemes is HF's fused routed experts.
#include "weights/binder.h"

#include <algorithm>

#include "core/log.h"
#include "weights/bind_tensor.h"
#include "weights/names.h"

namespace dsv4::weights {
namespace {

using model::ModelConfig;

std::string num(int64_t v) { return std::to_string(v); }

// The binder divides and indexes by these; parse_config validates them, but a config built in code may not be.
Status check_config(const ModelConfig& c) {
  auto positive = [](int64_t v, const char* name) -> Status {
    if (v <= 0) return make_error(std::string("config: ") + name + " must be positive, got " + num(v));
    return Ok{};
  };
  DSV4_TRY_STATUS(positive(c.vocab_size, "vocab_size"));
  DSV4_TRY_STATUS(positive(c.hidden_size, "hidden_size"));
  DSV4_TRY_STATUS(positive(c.num_attention_heads, "num_attention_heads"));
  DSV4_TRY_STATUS(positive(c.head_dim, "head_dim"));
  DSV4_TRY_STATUS(positive(c.q_lora_rank, "q_lora_rank"));
  DSV4_TRY_STATUS(positive(c.o_lora_rank, "o_lora_rank"));
  DSV4_TRY_STATUS(positive(c.o_groups, "o_groups"));
  DSV4_TRY_STATUS(positive(c.n_routed_experts, "n_routed_experts"));
  DSV4_TRY_STATUS(positive(c.num_experts_per_tok, "num_experts_per_tok"));
  DSV4_TRY_STATUS(positive(c.moe_intermediate_size, "moe_intermediate_size"));
  DSV4_TRY_STATUS(positive(c.hc_mult, "hc_mult"));
  if (c.num_hidden_layers < 0 || c.num_nextn_predict_layers < 0)
    return make_error("config: negative layer count");
  if (c.num_attention_heads % c.o_groups != 0)
    return make_error("config: num_attention_heads " + num(c.num_attention_heads) + " is not divisible by o_groups " +
                      num(c.o_groups));
  if (static_cast<int64_t>(c.compress_ratios.size()) != c.n_layers_total())
    return make_error("config: compress_ratios has " + num(static_cast<int64_t>(c.compress_ratios.size())) +
                      " entries, expected num_hidden_layers + num_nextn_predict_layers = " + num(c.n_layers_total()));
  for (int64_t m : c.compress_ratios)
    if (m < 0) return make_error("config: negative compress ratio " + num(m));
  if (std::any_of(c.compress_ratios.begin(), c.compress_ratios.end(), [](int64_t m) { return m == 4; })) {
    DSV4_TRY_STATUS(positive(c.index_n_heads, "index_n_heads"));
    DSV4_TRY_STATUS(positive(c.index_head_dim, "index_head_dim"));
  }
  return Ok{};
}

// hc_* of a sublayer (rows = (2+hc)*hc, 3 scales) or of a head (rows = hc, 1 scale); p ends before fn/base/scale.
Status bind_hc(TensorBinder& b, HcWeights& hc, const std::string& p, int64_t rows, int64_t n_scale,
               const ModelConfig& c) {
  DSV4_TRY_STATUS(b.bind(hc.fn, p + "fn", {rows, c.hc_mult * c.hidden_size}, Kind::F32));
  DSV4_TRY_STATUS(b.bind(hc.base, p + "base", {rows}, Kind::F32));
  return b.bind(hc.scale, p + "scale", {n_scale}, Kind::F32);
}

// A compressor with ratio m and head dim dp (main: head_dim; indexer: index_head_dim); p ends with "compressor.".
Status bind_compressor(TensorBinder& b, CompressorWeights& cw, const std::string& p, int64_t m, int64_t dp,
                       const ModelConfig& c) {
  const int64_t width = (m == 4 ? 2 : 1) * dp;
  DSV4_TRY_STATUS(b.bind(cw.wkv, p + "wkv.weight", {width, c.hidden_size}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(cw.wgate, p + "wgate.weight", {width, c.hidden_size}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(cw.ape, p + "ape", {m, width}, Kind::F32));
  return b.bind(cw.norm, p + "norm.weight", {dp}, Kind::Bf16);
}

// p ends with "attn.".
Status bind_attention(TensorBinder& b, AttentionWeights& a, const std::string& p, int64_t m, const ModelConfig& c) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, d = c.head_dim, q = c.q_lora_rank;
  const int64_t GR = c.o_groups * c.o_lora_rank;
  DSV4_TRY_STATUS(b.bind(a.attn_sink, p + "attn_sink", {H}, Kind::F32));
  DSV4_TRY_STATUS(b.bind(a.wq_a, p + "wq_a.weight", {q, D}, Kind::Fp8Linear));
  DSV4_TRY_STATUS(b.bind(a.q_norm, p + "q_norm.weight", {q}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(a.wq_b, p + "wq_b.weight", {H * d, q}, Kind::Fp8Linear));
  DSV4_TRY_STATUS(b.bind(a.wkv, p + "wkv.weight", {d, D}, Kind::Fp8Linear));
  DSV4_TRY_STATUS(b.bind(a.kv_norm, p + "kv_norm.weight", {d}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(a.wo_a, p + "wo_a.weight", {GR, (H / c.o_groups) * d}, Kind::Fp8Linear));
  DSV4_TRY_STATUS(b.bind(a.wo_b, p + "wo_b.weight", {D, GR}, Kind::Fp8Linear));
  if (m > 0) {
    a.compressor.emplace();
    DSV4_TRY_STATUS(bind_compressor(b, *a.compressor, p + "compressor.", m, d, c));
  }
  if (m == 4) {
    IndexerWeights& ix = a.indexer.emplace();
    const std::string ip = p + "indexer.";
    DSV4_TRY_STATUS(b.bind(ix.wq_b, ip + "wq_b.weight", {c.index_n_heads * c.index_head_dim, q}, Kind::Fp8Linear));
    DSV4_TRY_STATUS(b.bind(ix.weights_proj, ip + "weights_proj.weight", {c.index_n_heads, D}, Kind::Bf16));
    DSV4_TRY_STATUS(bind_compressor(b, ix.compressor, ip + "compressor.", 4, c.index_head_dim, c));
  }
  return Ok{};
}

// HF fused routed experts of main layer il: gate_up_proj [E, 2I, D], down_proj [E, D, I], sliced per expert.
Status bind_fused_experts(TensorBinder& b, MoEWeights& f, int64_t il, const ModelConfig& c) {
  const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size, D = c.hidden_size;
  Weight gate_up, down;
  DSV4_TRY_STATUS(b.bind_disk(gate_up, fused_expert_names(il, true), {E, 2 * I, D}, Kind::Expert, fused_scale_names));
  DSV4_TRY_STATUS(b.bind_disk(down, fused_expert_names(il, false), {E, D, I}, Kind::Expert, fused_scale_names));
  f.experts.resize(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) {
    ExpertWeights& x = f.experts[static_cast<size_t>(e)];
    DSV4_TRY(w1, slice_expert(gate_up, e, 0, I, ".gate"));
    DSV4_TRY(w3, slice_expert(gate_up, e, I, I, ".up"));
    DSV4_TRY(w2, slice_expert(down, e, 0, D, ""));
    x.w1 = std::move(w1);
    x.w3 = std::move(w3);
    x.w2 = std::move(w2);
  }
  return Ok{};
}

// p ends with "ffn."; il is the main-layer index (-1 for MTP blocks, which only exist in the official scheme).
Status bind_moe(TensorBinder& b, MoEWeights& f, const std::string& p, bool hash, int64_t il, const ModelConfig& c) {
  const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size, D = c.hidden_size;
  DSV4_TRY_STATUS(b.bind(f.gate_weight, p + "gate.weight", {E, D}, Kind::Bf16));
  if (!hash || b.has(p + "gate.bias")) DSV4_TRY_STATUS(b.bind(f.gate_bias, p + "gate.bias", {E}, Kind::F32));
  if (hash) {
    DSV4_TRY_STATUS(b.bind(f.tid2eid, p + "gate.tid2eid", {c.vocab_size, c.num_experts_per_tok}, Kind::TokenMap));
    DSV4_TRY_STATUS(b.check_tid2eid(f.tid2eid, E));
  }
  const std::string sp = p + "shared_experts.";
  DSV4_TRY_STATUS(b.bind(f.shared.w1, sp + "w1.weight", {I, D}, Kind::Fp8Linear));
  DSV4_TRY_STATUS(b.bind(f.shared.w2, sp + "w2.weight", {D, I}, Kind::Fp8Linear));
  DSV4_TRY_STATUS(b.bind(f.shared.w3, sp + "w3.weight", {I, D}, Kind::Fp8Linear));
  const bool fused = b.naming() == Naming::Transformers && il >= 0 && !b.has(p + "experts.0.w1.weight");
  if (fused) return bind_fused_experts(b, f, il, c);
  f.experts.resize(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) {
    ExpertWeights& x = f.experts[static_cast<size_t>(e)];
    const std::string ep = p + "experts." + num(e) + ".";
    DSV4_TRY_STATUS(b.bind(x.w1, ep + "w1.weight", {I, D}, Kind::Expert));
    DSV4_TRY_STATUS(b.bind(x.w2, ep + "w2.weight", {D, I}, Kind::Expert));
    DSV4_TRY_STATUS(b.bind(x.w3, ep + "w3.weight", {I, D}, Kind::Expert));
  }
  return Ok{};
}

// Where a block sits: compress ratio, hash routing, main-layer index (-1 for MTP blocks).
struct BlockSpec {
  int64_t ratio = 0;
  bool hash = false;
  int64_t il = -1;
};

// p is "layers.L." or "mtp.K.".
Status bind_block(TensorBinder& b, BlockWeights& blk, const std::string& p, BlockSpec s, const ModelConfig& c) {
  const int64_t mix = (2 + c.hc_mult) * c.hc_mult;
  DSV4_TRY_STATUS(bind_hc(b, blk.hc_attn, p + "hc_attn_", mix, 3, c));
  DSV4_TRY_STATUS(bind_hc(b, blk.hc_ffn, p + "hc_ffn_", mix, 3, c));
  DSV4_TRY_STATUS(b.bind(blk.attn_norm, p + "attn_norm.weight", {c.hidden_size}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(blk.ffn_norm, p + "ffn_norm.weight", {c.hidden_size}, Kind::Bf16));
  DSV4_TRY_STATUS(bind_attention(b, blk.attn, p + "attn.", s.ratio, c));
  return bind_moe(b, blk.ffn, p + "ffn.", s.hash, s.il, c);
}

Status bind_mtp(TensorBinder& b, MtpWeights& mtp, int64_t k, const ModelConfig& c) {
  const std::string p = "mtp." + num(k) + ".";
  const int64_t D = c.hidden_size;
  const BlockSpec spec{.ratio = c.compress_ratio(c.num_hidden_layers + k), .hash = false, .il = -1};
  DSV4_TRY_STATUS(bind_block(b, mtp.block, p, spec, c));
  DSV4_TRY_STATUS(b.bind(mtp.e_proj, p + "e_proj.weight", {D, D}, Kind::Fp8Linear));
  DSV4_TRY_STATUS(b.bind(mtp.h_proj, p + "h_proj.weight", {D, D}, Kind::Fp8Linear));
  DSV4_TRY_STATUS(b.bind(mtp.enorm, p + "enorm.weight", {D}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(mtp.hnorm, p + "hnorm.weight", {D}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(mtp.norm, p + "norm.weight", {D}, Kind::Bf16));
  return bind_hc(b, mtp.hc_head, p + "hc_head_", c.hc_mult, 1, c);
}

// MTP-local embedding / head copies, which convert.py drops as well (spec §7.6).
bool is_mtp_embed_or_head(const std::string& n) {
  return is_mtp_name(n) && (n.find(".emb") != std::string::npos || n.ends_with(".head.weight"));
}

// Every checkpoint tensor must have been bound, except ignorable mtp.* ones.
Status check_all_used(const TensorBinder& b, const ModelConfig& c) {
  std::vector<std::string> unexpected;
  int64_t ignored = 0;
  for (const std::string& n : b.checkpoint().names()) {
    if (b.used().count(n)) continue;
    if (is_mtp_name(n) && (c.num_nextn_predict_layers == 0 || is_mtp_embed_or_head(n))) {
      ++ignored;
      continue;
    }
    unexpected.push_back(n);
  }
  if (ignored > 0)
    log::warn(b.checkpoint().dir().string() + ": ignoring " + num(ignored) + " mtp.* tensor(s) not used by the config");
  if (unexpected.empty()) return Ok{};
  auto ref = b.checkpoint().find(unexpected.front());
  std::string msg = "unexpected tensor '" + unexpected.front() + "' in " + ref->file->string() +
                    " (not part of a DeepSeek-V4 model with this config, naming " +
                    std::string(naming_name(b.naming())) + ")";
  if (unexpected.size() > 1)
    msg += "; " + num(static_cast<int64_t>(unexpected.size()) - 1) + " more, e.g. '" + unexpected[1] + "'";
  return make_error(msg);
}

}  // namespace

Result<ModelWeights> bind_weights(std::shared_ptr<Checkpoint> ckpt, const ModelConfig& c) {
  DSV4_TRY_STATUS(check_config(c));
  const std::vector<std::string> names = ckpt->names();
  DSV4_TRY(naming, detect_naming(names, ckpt->dir().string()));
  TensorBinder b(*ckpt, naming);
  ModelWeights mw;
  mw.naming = std::string(naming_name(naming));
  const int64_t D = c.hidden_size;
  DSV4_TRY_STATUS(b.bind(mw.embed, "embed.weight", {c.vocab_size, D}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(mw.head, "head.weight", {c.vocab_size, D}, Kind::Bf16));
  DSV4_TRY_STATUS(b.bind(mw.norm, "norm.weight", {D}, Kind::Bf16));
  DSV4_TRY_STATUS(bind_hc(b, mw.hc_head, "hc_head_", c.hc_mult, 1, c));
  mw.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t il = 0; il < c.num_hidden_layers; ++il) {
    const BlockSpec spec{.ratio = c.compress_ratio(il), .hash = c.is_hash_layer(il), .il = il};
    DSV4_TRY_STATUS(bind_block(b, mw.layers[static_cast<size_t>(il)], "layers." + num(il) + ".", spec, c));
  }
  const bool has_mtp = std::any_of(names.begin(), names.end(), [](const std::string& n) { return is_mtp_name(n); });
  if (c.num_nextn_predict_layers > 0 && !has_mtp) {
    log::warn(ckpt->dir().string() + ": the config has " + num(c.num_nextn_predict_layers) +
              " MTP layer(s) but the checkpoint has no mtp.* tensors; MTP is unavailable");
  } else {
    mw.mtp.resize(static_cast<size_t>(c.num_nextn_predict_layers));
    for (int64_t k = 0; k < c.num_nextn_predict_layers; ++k)
      DSV4_TRY_STATUS(bind_mtp(b, mw.mtp[static_cast<size_t>(k)], k, c));
  }
  DSV4_TRY_STATUS(check_all_used(b, c));
  mw.storage = std::move(ckpt);
  return mw;
}

}  // namespace dsv4::weights
