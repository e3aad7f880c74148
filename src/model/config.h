// ModelConfig: the validated DeepSeek-V4 hyper-parameters (spec §1), read from a model directory's
// config.json in either the HF-hub schema (compress_ratios, rope_scaling, num_hash_layers, quantization_config)
// or the HF-transformers schema (layer_types, mlp_layer_types, rope_parameters). After load_config()
// succeeds every field is in the range the spec and the engine allow, so model code may assume it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/result.h"

namespace dsv4::model {

struct YarnScaling {
  bool enabled = false;           // rope_scaling present with type yarn
  double factor = 1.0;            // 16 (Flash/Pro)
  int64_t original_max_position = 0;  // 65536
  double beta_fast = 32.0;
  double beta_slow = 1.0;
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;         // D
  int64_t num_hidden_layers = 0;   // main blocks, MTP not counted
  int64_t num_attention_heads = 0; // H
  int64_t head_dim = 0;            // d (512)
  int64_t qk_rope_head_dim = 0;    // r (64), RoPE on the last r dims
  int64_t q_lora_rank = 0;
  int64_t o_lora_rank = 0;         // R per group
  int64_t o_groups = 0;            // G
  int64_t sliding_window = 0;      // W (128)
  // One entry per main layer followed by one per MTP layer (size n_layers + num_nextn_predict_layers).
  // Values: 0 (SWA), 4 (CSA), 128 (HCA).
  std::vector<int64_t> compress_ratios;
  double rope_theta = 10000.0;           // m = 0 layers, no YaRN
  double compress_rope_theta = 160000.0; // m > 0 layers, with YaRN
  YarnScaling rope_scaling;
  int64_t max_position_embeddings = 0;
  int64_t index_n_heads = 0;
  int64_t index_head_dim = 0;      // power of two (Hadamard size)
  int64_t index_topk = 0;
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 1;    // must be 1
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  double routed_scaling_factor = 1.0;
  bool norm_topk_prob = true;
  int64_t num_hash_layers = 0;     // layers [0, num_hash_layers) route through tid2eid
  double swiglu_limit = 0.0;       // 0 disables the clamp
  int64_t hc_mult = 4;
  int64_t hc_sinkhorn_iters = 20;
  double hc_eps = 1e-6;
  double rms_norm_eps = 1e-6;
  int64_t num_nextn_predict_layers = 0;
  int64_t bos_token_id = 0;
  std::vector<int64_t> eos_token_ids = {1};
  // Weight formats announced by quantization_config / expert_dtype (informational: the binder checks the
  // actual tensor dtypes).
  bool fp8_weights = false;         // quantization_config.quant_method == fp8
  bool fp4_experts = false;         // expert_dtype == fp4 (or inferred from I8 expert tensors)
  std::string source_schema;        // "hub" or "transformers"

  // Derived helpers.
  int64_t n_layers_total() const { return num_hidden_layers + num_nextn_predict_layers; }
  int64_t compress_ratio(int64_t il) const { return compress_ratios.at(static_cast<size_t>(il)); }
  bool is_hash_layer(int64_t il) const { return il < num_hash_layers; }  // MTP layers are never hash layers
  int64_t nope_head_dim() const { return head_dim - qk_rope_head_dim; }
  int64_t heads_per_group() const { return num_attention_heads / o_groups; }
};

// Parses and validates config JSON text. `origin` names the file in error messages.
Result<ModelConfig> parse_config(const std::string& json_text, const std::string& origin);
// Reads DIR/config.json.
Result<ModelConfig> load_config(const std::filesystem::path& model_dir);

}  // namespace dsv4::model
