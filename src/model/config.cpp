// Reads and validates a DeepSeek-V4 config.json (spec §1) in the HF-hub schema or the HF-transformers schema.
// Owns: the mapping of both schemas onto ModelConfig, the defaults of optional fields, and the load-time
// validation (STYLE rule 5: after parse_config succeeds, model code may assume every rule below).
// Invariant: the first violated rule is reported, naming the file, the field, the value and what is allowed.
//
// Validation rules (checked in this order; "if present" fields are optional):
//
// | field(s)                              | rule                                                              |
// |---------------------------------------|-------------------------------------------------------------------|
// | (whole file)                          | valid JSON (error gives the byte position), top level an object   |
// | any number / bool / string field      | JSON type checked; an integer field rejects 2.5, "4096", true     |
// | model_type (if present)               | "deepseek_v4"                                                     |
// | hidden_act, scoring_func, topk_method | "silu", "sqrtsoftplus", "noaux_tc" (defaults silu, sqrtsoftplus)  |
// | num_key_value_heads (if present)      | == 1                                                              |
// | tie_word_embeddings, attention_bias,  | false (if present)                                                |
// |   mlp_bias                            |                                                                   |
// | vocab_size, hidden_size, num_hidden_layers, num_attention_heads, head_dim, q_lora_rank, o_lora_rank,    |
// |   o_groups, sliding_window, index_n_heads, index_head_dim, index_topk, n_routed_experts,               |
// |   num_experts_per_tok, moe_intermediate_size, max_position_embeddings: required, >= 1                   |
// | routed_scaling_factor, swiglu_limit   | required; > 0 and >= 0                                            |
// | n_shared_experts                      | == 1 (default 1)                                                  |
// | hc_mult, hc_sinkhorn_iters            | >= 1 (defaults 4, 20)                                             |
// | hc_eps, rms_norm_eps                  | > 0 (defaults 1e-6, 1e-6)                                         |
// | num_nextn_predict_layers              | >= 0 (default 0)                                                  |
// | bos_token_id / eos_token_id           | int (or null) / int or non-empty list of ints; each in [0, vocab) |
// | rope_theta, compress_rope_theta       | > 0 (defaults 10000, 160000: the released values, not ModelArgs') |
// | rope_scaling (hub, if present)        | type/rope_type yarn or default; factor >= 1;                      |
// |   / rope_parameters.compress (HF)     | original_max_position_embeddings >= 1; beta_fast > beta_slow > 0; |
// |                                       | attention_factor (if present) == 1 (the reference has no mscale)  |
// | rope_parameters.main.rope_type        | "default"; its rope_theta must equal rope_theta if both present   |
// | qk_rope_head_dim (hub) /              | one of them required; head_dim * partial_rotary_factor integral;  |
// |   partial_rotary_factor (HF)          | both present: must agree                                          |
// | compress_ratios (hub)                 | length num_hidden_layers + num_nextn_predict_layers (or           |
// |                                       | num_hidden_layers: MTP entries then 0); values in {0, 4, 128};    |
// |                                       | MTP entries 0                                                     |
// | layer_types (HF)                      | length num_hidden_layers; values sliding_attention,               |
// |                                       | compressed_sparse_attention, heavily_compressed_attention;        |
// |                                       | both keys present: must agree with compress_ratios                |
// |                                       | absent in a transformers config: HF default (HCA, HCA, then       |
// |                                       | i % 2 ? CSA : HCA for i = 0..n-3, as configuration_deepseek_v4.py)|
// | compress_rates (HF, if present)       | compressed_sparse_attention: 4, heavily_compressed_attention: 128 |
// | num_hash_layers (hub, required) /     | 0 <= n <= num_hidden_layers; mlp_layer_types: length              |
// |   mlp_layer_types (HF)                | num_hidden_layers, hash_moe entries first then moe; both: agree;  |
// |                                       | HF config without either: min(3, num_hidden_layers) (HF default)  |
// | head_dim                              | > qk_rope_head_dim; (head_dim - qk_rope_head_dim) % 64 == 0       |
// | qk_rope_head_dim                      | even                                                              |
// | o_groups                              | divides num_attention_heads                                       |
// | index_head_dim                        | power of two, >= qk_rope_head_dim                                 |
// | num_experts_per_tok                   | <= n_routed_experts                                               |
// | quantization_config (if present)      | quant_method fp8; fmt e4m3, scale_fmt ue8m0, activation_scheme    |
// |                                       | dynamic, weight_block_size [128, 128] (each if present)           |
// | expert_dtype (if present)             | fp4, fp8 or bf16; fp4: moe_intermediate_size % 32 == 0 and        |
// |                                       | hidden_size % 32 == 0 (MXFP4 blocks of 32 along the input dim)    |
//
// Unknown fields (first_k_dense_replace, router_aux_loss_coef, torch_dtype, ...) are ignored.
#include "model/config.h"

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>

namespace dsv4::model {
namespace {

using json = nlohmann::json;

constexpr std::string_view kSwaType = "sliding_attention";
constexpr std::string_view kCsaType = "compressed_sparse_attention";
constexpr std::string_view kHcaType = "heavily_compressed_attention";

std::string quote_name(std::string_view name) { return "\"" + std::string(name) + "\""; }
std::string indexed(std::string_view name, size_t i) { return quote_name(name) + "[" + std::to_string(i) + "]"; }

std::string fmt_double(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Collects the first error; later failures are dropped so the message names the root cause.
class Errors {
 public:
  explicit Errors(std::string origin) : origin_(std::move(origin)) {}
  bool ok() const { return !first_; }
  const std::string& message() const { return *first_; }
  void fail(const std::string& msg) {
    if (!first_) first_ = origin_ + ": " + msg;
  }
  // `label` is the quoted field name, optionally with an index: "compress_ratios"[3].
  void bad_value(const std::string& label, const std::string& value, const std::string& what) {
    fail("field " + label + " = " + value + ": " + what);
  }
  void missing(std::string_view name) { fail("required field " + quote_name(name) + " is missing"); }

 private:
  std::string origin_;
  std::optional<std::string> first_;
};

enum class Bound : uint8_t { Any, Positive, NonNegative, AtLeastOne };

// Typed, checked access to the members of one JSON object. Fields of nested objects are named
// "<prefix><key>", e.g. "rope_scaling.factor".
class Fields {
 public:
  Fields(const json& obj, std::string prefix, Errors& errs) : obj_(obj), prefix_(std::move(prefix)), errs_(errs) {}

  Errors& errs() { return errs_; }
  std::string name(std::string_view key) const { return prefix_ + std::string(key); }
  std::string label(std::string_view key) const { return quote_name(name(key)); }
  // The member, or nullptr when it is absent or JSON null.
  const json* get(std::string_view key) const {
    auto it = obj_.find(std::string(key));
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool has(std::string_view key) const { return get(key) != nullptr; }

  std::optional<int64_t> opt_int(std::string_view key, int64_t min_value = std::numeric_limits<int64_t>::min()) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    return int_value(*v, label(key), min_value);
  }
  int64_t req_int(std::string_view key, int64_t min_value) {
    if (!has(key)) {
      errs_.missing(name(key));
      return min_value;
    }
    return opt_int(key, min_value).value_or(min_value);
  }
  std::optional<double> opt_float(std::string_view key, Bound bound = Bound::Any) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) {
      errs_.bad_value(label(key), v->dump(), "expected a number");
      return std::nullopt;
    }
    double x = v->get<double>();
    if (!std::isfinite(x)) errs_.bad_value(label(key), v->dump(), "must be finite");
    if (bound == Bound::Positive && !(x > 0)) errs_.bad_value(label(key), v->dump(), "must be > 0");
    if (bound == Bound::NonNegative && !(x >= 0)) errs_.bad_value(label(key), v->dump(), "must be >= 0");
    if (bound == Bound::AtLeastOne && !(x >= 1)) errs_.bad_value(label(key), v->dump(), "must be >= 1");
    return x;
  }
  double req_float(std::string_view key, Bound bound) {
    if (!has(key)) errs_.missing(name(key));
    return opt_float(key, bound).value_or(0.0);
  }
  std::optional<bool> opt_bool(std::string_view key) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) {
      errs_.bad_value(label(key), v->dump(), "expected true or false");
      return std::nullopt;
    }
    return v->get<bool>();
  }
  // A string member; when `allowed` is non-empty the value must be one of them.
  std::optional<std::string> opt_string(std::string_view key, std::initializer_list<std::string_view> allowed = {}) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
      errs_.bad_value(label(key), v->dump(), "expected a string");
      return std::nullopt;
    }
    auto s = v->get<std::string>();
    if (allowed.size() == 0) return s;
    std::string list;
    for (auto a : allowed) {
      if (s == a) return s;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    errs_.bad_value(label(key), v->dump(), (allowed.size() == 1 ? "allowed value is " : "allowed values are ") + list);
    return std::nullopt;
  }
  // A bool member that must be false when present (features the engine does not implement).
  void require_false(std::string_view key, const char* why) {
    if (opt_bool(key).value_or(false)) errs_.bad_value(label(key), "true", std::string("must be false: ") + why);
  }
  // An object member (nullptr when absent; an error when present but not an object).
  const json* opt_object(std::string_view key) {
    const json* v = get(key);
    if (v && !v->is_object()) {
      errs_.bad_value(label(key), v->dump(), "expected an object");
      return nullptr;
    }
    return v;
  }
  const json* opt_array(std::string_view key) {
    const json* v = get(key);
    if (v && !v->is_array()) {
      errs_.bad_value(label(key), v->dump(), "expected a list");
      return nullptr;
    }
    return v;
  }

  std::optional<int64_t> int_value(const json& v, const std::string& lbl, int64_t min_value) {
    if (!v.is_number_integer()) {  // true for signed and unsigned JSON integers, false for 2.0 and bools
      errs_.bad_value(lbl, v.dump(), "expected an integer");
      return std::nullopt;
    }
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      errs_.bad_value(lbl, v.dump(), "out of range");
      return std::nullopt;
    }
    int64_t x = v.get<int64_t>();
    if (x < min_value) {
      errs_.bad_value(lbl, v.dump(), "must be >= " + std::to_string(min_value));
      return std::nullopt;
    }
    return x;
  }

 private:
  const json& obj_;
  std::string prefix_;
  Errors& errs_;
};

// Fixed-value fields: the engine implements exactly one choice for each.
void read_fixed_choices(Fields& f) {
  f.opt_string("model_type", {"deepseek_v4"});
  f.opt_string("hidden_act", {"silu"});
  f.opt_string("scoring_func", {"sqrtsoftplus"});
  f.opt_string("topk_method", {"noaux_tc"});
  if (auto kv = f.opt_int("num_key_value_heads"); kv && *kv != 1)
    f.errs().bad_value(f.label("num_key_value_heads"), std::to_string(*kv), "allowed value is 1 (one shared K=V head)");
  f.require_false("tie_word_embeddings", "embed and head are separate tensors");
  f.require_false("attention_bias", "DeepSeek-V4 has no biases");
  f.require_false("mlp_bias", "DeepSeek-V4 has no biases");
}

void read_sizes(Fields& f, ModelConfig& c) {
  c.vocab_size = f.req_int("vocab_size", 1);
  c.hidden_size = f.req_int("hidden_size", 1);
  c.num_hidden_layers = f.req_int("num_hidden_layers", 1);
  c.num_attention_heads = f.req_int("num_attention_heads", 1);
  c.head_dim = f.req_int("head_dim", 1);
  c.q_lora_rank = f.req_int("q_lora_rank", 1);
  c.o_lora_rank = f.req_int("o_lora_rank", 1);
  c.o_groups = f.req_int("o_groups", 1);
  c.sliding_window = f.req_int("sliding_window", 1);
  c.max_position_embeddings = f.req_int("max_position_embeddings", 1);
  c.index_n_heads = f.req_int("index_n_heads", 1);
  c.index_head_dim = f.req_int("index_head_dim", 1);
  c.index_topk = f.req_int("index_topk", 1);
  c.n_routed_experts = f.req_int("n_routed_experts", 1);
  c.num_experts_per_tok = f.req_int("num_experts_per_tok", 1);
  c.moe_intermediate_size = f.req_int("moe_intermediate_size", 1);
  c.routed_scaling_factor = f.req_float("routed_scaling_factor", Bound::Positive);
  c.swiglu_limit = f.req_float("swiglu_limit", Bound::NonNegative);
  c.n_shared_experts = f.opt_int("n_shared_experts").value_or(1);
  if (c.n_shared_experts != 1)
    f.errs().bad_value(f.label("n_shared_experts"), std::to_string(c.n_shared_experts), "allowed value is 1");
  c.norm_topk_prob = f.opt_bool("norm_topk_prob").value_or(true);
  c.hc_mult = f.opt_int("hc_mult", 1).value_or(4);
  c.hc_sinkhorn_iters = f.opt_int("hc_sinkhorn_iters", 1).value_or(20);
  c.hc_eps = f.opt_float("hc_eps", Bound::Positive).value_or(1e-6);
  c.rms_norm_eps = f.opt_float("rms_norm_eps", Bound::Positive).value_or(1e-6);
  c.num_nextn_predict_layers = f.opt_int("num_nextn_predict_layers", 0).value_or(0);
}

void read_token_ids(Fields& f, ModelConfig& c) {
  c.bos_token_id = f.opt_int("bos_token_id", 0).value_or(0);
  if (c.bos_token_id >= c.vocab_size)
    f.errs().bad_value(f.label("bos_token_id"), std::to_string(c.bos_token_id),
                       "must be < vocab_size (" + std::to_string(c.vocab_size) + ")");
  const json* eos = f.get("eos_token_id");
  if (!eos) return;  // keep the default {1}
  c.eos_token_ids.clear();
  auto add = [&](const json& v, const std::string& lbl) {
    auto id = f.int_value(v, lbl, 0);
    if (!id) return;
    if (*id >= c.vocab_size)
      f.errs().bad_value(lbl, v.dump(), "must be < vocab_size (" + std::to_string(c.vocab_size) + ")");
    c.eos_token_ids.push_back(*id);
  };
  if (eos->is_array()) {
    if (eos->empty()) f.errs().bad_value(f.label("eos_token_id"), "[]", "must name at least one token");
    for (size_t i = 0; i < eos->size(); ++i) add((*eos)[i], indexed("eos_token_id", i));
  } else {
    add(*eos, f.label("eos_token_id"));
  }
}

// rope_scaling (hub) or rope_parameters.compress (HF): YaRN for the m > 0 layers, or "default" (none).
YarnScaling read_yarn(Fields& f) {
  YarnScaling y;
  std::optional<std::string> type =
      f.has("rope_type") ? f.opt_string("rope_type", {"default", "yarn"}) : f.opt_string("type", {"default", "yarn"});
  if (!f.has("rope_type") && !f.has("type")) f.errs().missing(f.name("rope_type"));
  if (type != "yarn") return y;
  y.enabled = true;
  y.factor = f.req_float("factor", Bound::AtLeastOne);
  y.original_max_position = f.req_int("original_max_position_embeddings", 1);
  y.beta_fast = f.opt_float("beta_fast", Bound::Positive).value_or(32.0);
  y.beta_slow = f.opt_float("beta_slow", Bound::Positive).value_or(1.0);
  if (!(y.beta_fast > y.beta_slow))
    f.errs().bad_value(f.label("beta_fast"), fmt_double(y.beta_fast),
                       "must be greater than beta_slow (" + fmt_double(y.beta_slow) + ")");
  if (auto af = f.opt_float("attention_factor"); af && *af != 1.0)
    f.errs().bad_value(f.label("attention_factor"), fmt_double(*af),
                       "allowed value is 1.0 (the reference applies no YaRN mscale)");
  return y;
}

bool same_yarn(const YarnScaling& a, const YarnScaling& b) {
  if (a.enabled != b.enabled) return false;
  return !a.enabled || (a.factor == b.factor && a.original_max_position == b.original_max_position &&
                        a.beta_fast == b.beta_fast && a.beta_slow == b.beta_slow);
}

std::string describe_yarn(const YarnScaling& y) {
  if (!y.enabled) return "no YaRN";
  return "yarn factor " + fmt_double(y.factor) + ", original_max_position_embeddings " +
         std::to_string(y.original_max_position) + ", beta_fast " + fmt_double(y.beta_fast) + ", beta_slow " +
         fmt_double(y.beta_slow);
}

// A theta given both at the top level and inside rope_parameters must agree; the top level wins.
void merge_theta(Fields& top, Fields& sub, std::string_view top_key, double& theta) {
  auto inner = sub.opt_float("rope_theta", Bound::Positive);
  if (!inner) return;
  if (top.has(top_key) && *inner != theta) {
    sub.errs().bad_value(sub.label("rope_theta"), fmt_double(*inner),
                         "disagrees with " + quote_name(top_key) + " = " + fmt_double(theta));
  }
  theta = *inner;
}

struct RopeRead {
  std::optional<double> partial_rotary_factor;  // from rope_parameters.{main,compress}, if given there
};

RopeRead read_rope(Fields& f, ModelConfig& c) {
  RopeRead out;
  c.rope_theta = f.opt_float("rope_theta", Bound::Positive).value_or(10000.0);
  c.compress_rope_theta = f.opt_float("compress_rope_theta", Bound::Positive).value_or(160000.0);
  std::optional<YarnScaling> hub, hf;
  if (const json* rs = f.opt_object("rope_scaling")) {
    Fields sub(*rs, "rope_scaling.", f.errs());
    hub = read_yarn(sub);
  }
  if (const json* rp = f.opt_object("rope_parameters")) {
    Fields params(*rp, "rope_parameters.", f.errs());
    const json* main = params.get("main");
    const json* compress = params.get("compress");
    if (main || compress) {
      main = params.opt_object("main");
      compress = params.opt_object("compress");
      if (!main) f.errs().missing("rope_parameters.main");
      if (!compress) f.errs().missing("rope_parameters.compress");
    }
    if (main && compress) {
      Fields m(*main, "rope_parameters.main.", f.errs());
      m.opt_string("rope_type", {"default"});
      merge_theta(f, m, "rope_theta", c.rope_theta);
      Fields k(*compress, "rope_parameters.compress.", f.errs());
      hf = read_yarn(k);
      merge_theta(f, k, "compress_rope_theta", c.compress_rope_theta);
      out.partial_rotary_factor = m.opt_float("partial_rotary_factor", Bound::Positive);
      if (!out.partial_rotary_factor) out.partial_rotary_factor = k.opt_float("partial_rotary_factor", Bound::Positive);
    } else if (!main && !compress) {
      hf = read_yarn(params);  // flat form: HF folds it into the compress parameters
    }
  }
  if (hub && hf && !same_yarn(*hub, *hf)) {
    f.errs().fail("field \"rope_parameters\" (" + describe_yarn(*hf) + ") disagrees with \"rope_scaling\" (" +
                  describe_yarn(*hub) + ")");
  }
  c.rope_scaling = hub ? *hub : hf.value_or(YarnScaling{});
  return out;
}

// qk_rope_head_dim (hub) or partial_rotary_factor * head_dim (HF).
void read_rope_dim(Fields& f, ModelConfig& c, const RopeRead& rope, bool transformers) {
  auto hub = f.opt_int("qk_rope_head_dim", 1);
  auto prf = f.opt_float("partial_rotary_factor", Bound::Positive);
  std::string prf_label = f.label("partial_rotary_factor");
  if (!prf && rope.partial_rotary_factor) {
    prf = rope.partial_rotary_factor;
    prf_label = "\"rope_parameters.main.partial_rotary_factor\"";
  }
  if (!f.errs().ok()) return;
  if (prf) {
    double r = double(c.head_dim) * *prf;
    if (std::abs(r - std::round(r)) > 1e-6 || r < 1) {
      f.errs().bad_value(
          prf_label, fmt_double(*prf),
          "head_dim (" + std::to_string(c.head_dim) + ") * partial_rotary_factor must be a whole number");
      return;
    }
    auto r_int = static_cast<int64_t>(std::llround(r));
    if (hub && *hub != r_int) {
      f.errs().bad_value(prf_label, fmt_double(*prf),
                         "gives " + std::to_string(r_int) +
                             " RoPE dims, disagrees with \"qk_rope_head_dim\" = " + std::to_string(*hub));
    }
    c.qk_rope_head_dim = hub.value_or(r_int);
  } else if (hub) {
    c.qk_rope_head_dim = *hub;
  } else if (transformers) {
    c.qk_rope_head_dim = c.head_dim / 8;  // HF default_partial_rotary_factor = 64 / 512
  } else {
    f.errs().missing("qk_rope_head_dim");
  }
}

// compress_rates (HF) or the legacy top-level compress_rate_csa / compress_rate_hca: only 4 and 128 exist.
void check_compress_rates(Fields& f) {
  if (const json* rates = f.opt_object("compress_rates")) {
    Fields r(*rates, "compress_rates.", f.errs());
    for (const auto& [key, value] : rates->items()) {
      int64_t want = key == kCsaType ? 4 : key == kHcaType ? 128 : 0;
      if (want == 0) {
        f.errs().bad_value(
            r.label(key), value.dump(),
            "unknown layer type: allowed keys are " + std::string(kCsaType) + ", " + std::string(kHcaType));
        return;
      }
      auto v = r.opt_int(key);
      if (v && *v != want) r.errs().bad_value(r.label(key), value.dump(), "allowed value is " + std::to_string(want));
    }
  }
  if (auto v = f.opt_int("compress_rate_csa"); v && *v != 4)
    f.errs().bad_value(f.label("compress_rate_csa"), std::to_string(*v), "allowed value is 4");
  if (auto v = f.opt_int("compress_rate_hca"); v && *v != 128)
    f.errs().bad_value(f.label("compress_rate_hca"), std::to_string(*v), "allowed value is 128");
}

std::optional<std::vector<int64_t>> read_compress_ratios(Fields& f, const ModelConfig& c) {
  const json* list = f.opt_array("compress_ratios");
  if (!list) return std::nullopt;
  const int64_t n = c.num_hidden_layers, n_mtp = c.num_nextn_predict_layers;
  const auto size = static_cast<int64_t>(list->size());
  if (size != n + n_mtp && size != n) {
    f.errs().fail("field \"compress_ratios\" has " + std::to_string(size) + " entries: expected num_hidden_layers + " +
                  "num_nextn_predict_layers = " + std::to_string(n + n_mtp) +
                  (n_mtp > 0 ? " (or " + std::to_string(n) + " without the MTP entries)" : ""));
    return std::nullopt;
  }
  std::vector<int64_t> ratios;
  for (size_t i = 0; i < list->size(); ++i) {
    auto v = f.int_value((*list)[i], indexed("compress_ratios", i), std::numeric_limits<int64_t>::min());
    if (!v) return std::nullopt;
    if (*v != 0 && *v != 4 && *v != 128) {
      f.errs().bad_value(indexed("compress_ratios", i), std::to_string(*v), "allowed values are 0, 4, 128");
      return std::nullopt;
    }
    if (static_cast<int64_t>(i) >= n && *v != 0) {
      f.errs().bad_value(indexed("compress_ratios", i), std::to_string(*v),
                         "entries past num_hidden_layers belong to the MTP layers, which must be 0 (sliding window)");
      return std::nullopt;
    }
    ratios.push_back(*v);
  }
  ratios.resize(static_cast<size_t>(n + n_mtp), 0);
  return ratios;
}

std::optional<std::vector<int64_t>> read_layer_types(Fields& f, const ModelConfig& c) {
  const json* list = f.opt_array("layer_types");
  if (!list) return std::nullopt;
  if (static_cast<int64_t>(list->size()) != c.num_hidden_layers) {
    f.errs().fail("field \"layer_types\" has " + std::to_string(list->size()) +
                  " entries: expected num_hidden_layers = " + std::to_string(c.num_hidden_layers));
    return std::nullopt;
  }
  std::vector<int64_t> ratios;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    std::string s = v.is_string() ? v.get<std::string>() : "";
    if (s == kSwaType || s == kCsaType || s == kHcaType) {
      ratios.push_back(s == kSwaType ? 0 : s == kCsaType ? 4 : 128);
      continue;
    }
    f.errs().bad_value(
        indexed("layer_types", i), v.dump(),
        "allowed values are " + std::string(kSwaType) + ", " + std::string(kCsaType) + ", " + std::string(kHcaType));
    return std::nullopt;
  }
  return ratios;
}

// HF DeepseekV4Config default when no layer_types are given (configuration_deepseek_v4.py __post_init__).
std::vector<int64_t> default_hf_layer_ratios(int64_t n) {
  std::vector<int64_t> r(static_cast<size_t>(std::min<int64_t>(n, 2)), 128);
  for (int64_t i = 0; i < n - 2; ++i) r.push_back(i % 2 ? 4 : 128);
  return r;
}

void read_attention_schedule(Fields& f, ModelConfig& c, bool transformers) {
  check_compress_rates(f);
  auto hub = read_compress_ratios(f, c);
  auto hf = read_layer_types(f, c);
  if (!f.errs().ok()) return;
  const auto n = static_cast<size_t>(c.num_hidden_layers);
  if (hub && hf) {
    for (size_t i = 0; i < n; ++i) {
      if ((*hub)[i] == (*hf)[i]) continue;
      f.errs().fail("field " + indexed("layer_types", i) + " disagrees with " + indexed("compress_ratios", i) + " = " +
                    std::to_string((*hub)[i]));
      return;
    }
  }
  if (hub) {
    c.compress_ratios = *hub;
    return;
  }
  if (!hf && !transformers) {
    f.errs().missing("compress_ratios");
    return;
  }
  c.compress_ratios = hf ? *hf : default_hf_layer_ratios(c.num_hidden_layers);
  c.compress_ratios.resize(static_cast<size_t>(c.n_layers_total()), 0);  // MTP layers are sliding-window only
}

void read_hash_schedule(Fields& f, ModelConfig& c, bool transformers) {
  auto hub = f.opt_int("num_hash_layers", 0);
  std::optional<int64_t> hf;
  if (const json* list = f.opt_array("mlp_layer_types")) {
    if (static_cast<int64_t>(list->size()) != c.num_hidden_layers) {
      f.errs().fail("field \"mlp_layer_types\" has " + std::to_string(list->size()) +
                    " entries: expected num_hidden_layers = " + std::to_string(c.num_hidden_layers));
      return;
    }
    hf = 0;
    for (size_t i = 0; i < list->size(); ++i) {
      const json& v = (*list)[i];
      std::string s = v.is_string() ? v.get<std::string>() : "";
      if (s == "hash_moe" && *hf == static_cast<int64_t>(i)) {
        ++*hf;
      } else if (s == "hash_moe") {
        f.errs().bad_value(indexed("mlp_layer_types", i), v.dump(), "hash_moe layers must come before all moe layers");
        return;
      } else if (s != "moe") {
        f.errs().bad_value(indexed("mlp_layer_types", i), v.dump(), "allowed values are hash_moe, moe");
        return;
      }
    }
  }
  if (hub && hf && *hub != *hf) {
    f.errs().fail("field \"mlp_layer_types\" has " + std::to_string(*hf) +
                  " hash_moe layers, disagrees with \"num_hash_layers\" = " + std::to_string(*hub));
    return;
  }
  if (!hub && !hf && !transformers) f.errs().missing("num_hash_layers");
  c.num_hash_layers = hub ? *hub : hf.value_or(std::min<int64_t>(3, c.num_hidden_layers));
  if (c.num_hash_layers > c.num_hidden_layers)
    f.errs().bad_value(f.label("num_hash_layers"), std::to_string(c.num_hash_layers),
                       "must be <= num_hidden_layers (" + std::to_string(c.num_hidden_layers) + ")");
}

void read_weight_formats(Fields& f, ModelConfig& c) {
  if (const json* q = f.opt_object("quantization_config")) {
    Fields qf(*q, "quantization_config.", f.errs());
    if (!qf.has("quant_method")) f.errs().missing("quantization_config.quant_method");
    c.fp8_weights = qf.opt_string("quant_method", {"fp8"}).has_value();
    qf.opt_string("fmt", {"e4m3"});
    qf.opt_string("scale_fmt", {"ue8m0"});
    qf.opt_string("activation_scheme", {"dynamic"});
    if (const json* b = qf.get("weight_block_size")) {
      if (*b != json::array({128, 128}))
        f.errs().bad_value(qf.label("weight_block_size"), b->dump(), "allowed value is [128, 128]");
    }
  }
  c.fp4_experts = f.opt_string("expert_dtype", {"fp4", "fp8", "bf16"}) == "fp4";
  if (!c.fp4_experts) return;
  for (auto [key, value] : {std::pair<std::string_view, int64_t>{"moe_intermediate_size", c.moe_intermediate_size},
                            {"hidden_size", c.hidden_size}}) {
    if (value % 32 != 0)
      f.errs().bad_value(f.label(key), std::to_string(value),
                         "must be a multiple of 32 with expert_dtype fp4 (MXFP4 blocks of 32)");
  }
}

// Relations between fields (spec §5, §13.4): the shapes the kernels and the KV layout rely on.
void check_relations(Fields& f, const ModelConfig& c) {
  Errors& e = f.errs();
  const int64_t r = c.qk_rope_head_dim;
  if (c.head_dim <= r) {
    e.bad_value(f.label("head_dim"), std::to_string(c.head_dim),
                "must be greater than qk_rope_head_dim (" + std::to_string(r) + ")");
  } else if ((c.head_dim - r) % 64 != 0) {
    e.bad_value(f.label("head_dim"), std::to_string(c.head_dim),
                "head_dim - qk_rope_head_dim (" + std::to_string(c.head_dim - r) +
                    ") must be a multiple of 64 (KV FP8 blocks of 64)");
  }
  if (r % 2 != 0) e.bad_value(f.label("qk_rope_head_dim"), std::to_string(r), "must be even (RoPE rotates pairs)");
  if (c.num_attention_heads % c.o_groups != 0)
    e.bad_value(f.label("o_groups"), std::to_string(c.o_groups),
                "must divide num_attention_heads (" + std::to_string(c.num_attention_heads) + ")");
  const int64_t ihd = c.index_head_dim;
  if ((ihd & (ihd - 1)) != 0 || ihd < r)
    e.bad_value(f.label("index_head_dim"), std::to_string(ihd),
                "must be a power of two (Hadamard size) and >= qk_rope_head_dim (" + std::to_string(r) + ")");
  if (c.num_experts_per_tok > c.n_routed_experts)
    e.bad_value(f.label("num_experts_per_tok"), std::to_string(c.num_experts_per_tok),
                "must be <= n_routed_experts (" + std::to_string(c.n_routed_experts) + ")");
}

}  // namespace

Result<ModelConfig> parse_config(const std::string& json_text, const std::string& origin) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& err) {
    return make_error(origin + ": malformed JSON at byte " + std::to_string(err.byte) + ": " + err.what());
  } catch (const json::exception& err) {  // e.g. out_of_range for a number literal that overflows
    return make_error(origin + ": malformed JSON: " + err.what());
  }
  if (!root.is_object()) return make_error(origin + ": the top level must be a JSON object, got " + root.type_name());
  Errors errs(origin);
  Fields f(root, "", errs);
  ModelConfig c;
  // The transformers schema is recognized by its own keys; the hub schema by compress_ratios.
  const bool transformers =
      !f.has("compress_ratios") && (f.has("layer_types") || f.has("mlp_layer_types") || f.has("rope_parameters") ||
                                    f.has("compress_rates") || f.has("partial_rotary_factor"));
  c.source_schema = transformers ? "transformers" : "hub";
  read_fixed_choices(f);
  read_sizes(f, c);
  if (errs.ok()) read_token_ids(f, c);
  RopeRead rope = read_rope(f, c);
  if (errs.ok()) read_rope_dim(f, c, rope, transformers);
  if (errs.ok()) read_attention_schedule(f, c, transformers);
  if (errs.ok()) read_hash_schedule(f, c, transformers);
  if (errs.ok()) read_weight_formats(f, c);
  if (errs.ok()) check_relations(f, c);
  if (!errs.ok()) return make_error(errs.message());
  return c;
}

Result<ModelConfig> load_config(const std::filesystem::path& model_dir) {
  const std::filesystem::path file = model_dir / "config.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(file.string() + ": cannot open (is " + model_dir.string() + " a model directory?)");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(file.string() + ": read error");
  return parse_config(text.str(), file.string());
}

}  // namespace dsv4::model
