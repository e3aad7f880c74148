// Official <-> HF-transformers tensor names (names.h). The transformers names follow the state_dict of
// transformers' DeepseekV4ForCausalLM (models/deepseek_v4/modeling_deepseek_v4.py) and the "deepseek_v4"
// block of conversion_mapping.py; variants seen across transformers revisions are accepted after the
// canonical name.
#include "weights/names.h"

#include <array>
#include <utility>

namespace dsv4::weights {
namespace {

struct Rename {
  std::string_view official;
  std::array<std::string_view, 2> hf;  // canonical, optional variant ("" when none)
};

// Modules inside a layer (`layers.L.` / `model.layers.L.`): `.weight` and `.scale` follow the module name.
constexpr std::array<Rename, 21> kModules = {{
    {"attn_norm", {"input_layernorm", ""}},
    {"ffn_norm", {"post_attention_layernorm", ""}},
    {"attn.wq_a", {"self_attn.q_a_proj", ""}},
    {"attn.q_norm", {"self_attn.q_a_norm", ""}},
    {"attn.wq_b", {"self_attn.q_b_proj", ""}},
    {"attn.wkv", {"self_attn.kv_proj", ""}},
    {"attn.kv_norm", {"self_attn.kv_norm", ""}},
    {"attn.wo_a", {"self_attn.o_a_proj", ""}},
    {"attn.wo_b", {"self_attn.o_b_proj", ""}},
    {"attn.compressor.wkv", {"self_attn.compressor.kv_proj", ""}},
    {"attn.compressor.wgate", {"self_attn.compressor.gate_proj", ""}},
    {"attn.compressor.norm", {"self_attn.compressor.kv_norm", ""}},
    {"attn.indexer.wq_b", {"self_attn.compressor.indexer.q_b_proj", ""}},
    {"attn.indexer.weights_proj",
     {"self_attn.compressor.indexer.scorer.weights_proj", "self_attn.compressor.indexer.weights_proj"}},
    {"attn.indexer.compressor.wkv", {"self_attn.compressor.indexer.kv_proj", ""}},
    {"attn.indexer.compressor.wgate", {"self_attn.compressor.indexer.gate_proj", ""}},
    {"attn.indexer.compressor.norm", {"self_attn.compressor.indexer.kv_norm", ""}},
    {"ffn.gate", {"mlp.gate", ""}},
    {"ffn.shared_experts.w1", {"mlp.shared_experts.gate_proj", ""}},
    {"ffn.shared_experts.w2", {"mlp.shared_experts.down_proj", ""}},
    {"ffn.shared_experts.w3", {"mlp.shared_experts.up_proj", ""}},
}};

// Bare parameters inside a layer.
constexpr std::array<Rename, 11> kParams = {{
    {"hc_attn_fn", {"attn_hc.fn", "attn_hc.hc_fn"}},
    {"hc_attn_base", {"attn_hc.base", "attn_hc.hc_base"}},
    {"hc_attn_scale", {"attn_hc.scale", "attn_hc.hc_scale"}},
    {"hc_ffn_fn", {"ffn_hc.fn", "ffn_hc.hc_fn"}},
    {"hc_ffn_base", {"ffn_hc.base", "ffn_hc.hc_base"}},
    {"hc_ffn_scale", {"ffn_hc.scale", "ffn_hc.hc_scale"}},
    {"attn.attn_sink", {"self_attn.sinks", ""}},
    {"attn.compressor.ape", {"self_attn.compressor.position_bias", ""}},
    {"attn.indexer.compressor.ape", {"self_attn.compressor.indexer.position_bias", ""}},
    {"ffn.gate.bias", {"mlp.gate.e_score_correction_bias", ""}},
    {"ffn.gate.tid2eid", {"mlp.gate.tid2eid", ""}},
}};

constexpr std::array<Rename, 6> kGlobals = {{
    {"embed.weight", {"model.embed_tokens.weight", ""}},
    {"head.weight", {"lm_head.weight", ""}},
    {"norm.weight", {"model.norm.weight", ""}},
    {"hc_head_fn", {"model.hc_head.hc_fn", "model.hc_head.fn"}},
    {"hc_head_base", {"model.hc_head.hc_base", "model.hc_head.base"}},
    {"hc_head_scale", {"model.hc_head.hc_scale", "model.hc_head.scale"}},
}};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

void push_renamed(std::vector<std::string>& out, const std::string& prefix, const Rename& r,
                  std::string_view suffix) {
  for (std::string_view hf : r.hf)
    if (!hf.empty()) out.push_back(prefix + std::string(hf) + std::string(suffix));
}

// `ffn.experts.E.wK` -> `mlp.experts.E.{gate,down,up}_proj` (unfused per-expert HF layout).
bool expert_module(std::string_view module, std::string& hf) {
  if (!starts_with(module, "ffn.experts.")) return false;
  std::string_view rest = module.substr(12);
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return false;
  std::string_view w = rest.substr(dot + 1);
  const char* proj = w == "w1" ? "gate_proj" : w == "w2" ? "down_proj" : w == "w3" ? "up_proj" : nullptr;
  if (proj == nullptr) return false;
  hf = "mlp.experts." + std::string(rest.substr(0, dot)) + "." + proj;
  return true;
}

// HF names for the part of an official layer name after `layers.L.`.
void layer_names(std::vector<std::string>& out, const std::string& prefix, std::string_view rest) {
  for (const Rename& r : kParams)
    if (rest == r.official) return push_renamed(out, prefix, r, "");
  std::string_view module, suffix;
  if (ends_with(rest, ".weight")) {
    module = rest.substr(0, rest.size() - 7);
    suffix = ".weight";
  } else if (ends_with(rest, ".scale")) {
    module = rest.substr(0, rest.size() - 6);
    suffix = ".scale";
  } else {
    return;
  }
  std::vector<std::string> mods;
  for (const Rename& r : kModules)
    if (module == r.official) push_renamed(mods, "", r, "");
  std::string expert;
  if (mods.empty() && expert_module(module, expert)) mods.push_back(expert);
  for (const std::string& m : mods) {
    if (suffix == ".weight") {
      out.push_back(prefix + m + ".weight");
    } else {
      out.push_back(prefix + m + ".weight_scale_inv");
      out.push_back(prefix + m + ".scale");
    }
  }
}

std::vector<std::string> transformers_names(const std::string& official) {
  std::vector<std::string> out;
  for (const Rename& r : kGlobals)
    if (official == r.official) push_renamed(out, "", r, "");
  if (starts_with(official, "layers.")) {
    size_t dot = official.find('.', 7);
    if (dot != std::string::npos)
      layer_names(out, "model." + official.substr(0, dot + 1), std::string_view(official).substr(dot + 1));
  }
  return out;
}

}  // namespace

std::string_view naming_name(Naming n) { return n == Naming::Official ? "official" : "transformers"; }

bool is_mtp_name(std::string_view name) { return starts_with(name, "mtp."); }

Result<Naming> detect_naming(const std::vector<std::string>& names, const std::string& origin) {
  const std::string* hf = nullptr;
  const std::string* off = nullptr;
  for (const std::string& n : names) {
    if (starts_with(n, "model.") || starts_with(n, "lm_head.")) {
      if (hf == nullptr) hf = &n;
    } else if (starts_with(n, "layers.") || starts_with(n, "embed.") || starts_with(n, "head.") ||
               starts_with(n, "norm.") || starts_with(n, "hc_head_")) {
      if (off == nullptr) off = &n;
    }
  }
  if (hf != nullptr && off != nullptr)
    return make_error(origin + ": tensor names mix the official scheme (e.g. '" + *off +
                      "') and the transformers scheme (e.g. '" + *hf + "')");
  if (hf != nullptr) return Naming::Transformers;
  if (off != nullptr) return Naming::Official;
  return make_error(origin + ": no DeepSeek-V4 tensor names found (expected e.g. 'embed.weight' or "
                             "'model.embed_tokens.weight')" +
                    (names.empty() ? std::string(": the checkpoint is empty") : ", got e.g. '" + names[0] + "'"));
}

std::vector<std::string> disk_names(Naming naming, const std::string& official) {
  if (naming == Naming::Official || is_mtp_name(official)) {
    std::vector<std::string> out{official};
    if (ends_with(official, ".scale"))
      out.push_back(official.substr(0, official.size() - 6) + ".weight_scale_inv");
    return out;
  }
  return transformers_names(official);
}

std::vector<std::string> fused_expert_names(int64_t il, bool gate_up) {
  const std::string base = "model.layers." + std::to_string(il) + ".mlp.experts." +
                           (gate_up ? "gate_up_proj" : "down_proj");
  return {base, base + ".weight"};
}

std::vector<std::string> fused_scale_names(const std::string& weight_disk_name) {
  std::string base = weight_disk_name;
  if (ends_with(base, ".weight")) {
    base.resize(base.size() - 7);
    return {base + ".weight_scale_inv", base + "_scale_inv", base + ".scale"};
  }
  return {base + "_scale_inv", base + ".weight_scale_inv", base + ".scale"};
}

}  // namespace dsv4::weights
