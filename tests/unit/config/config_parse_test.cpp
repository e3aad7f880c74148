// parse_config / load_config on the released configs and on the HF-transformers schema. Expected values are
// the tables of spec §1.1 and §1.4 (not the parser's output); the transformers config must parse to the same
// ModelConfig as the equivalent hub config.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/config.h"

namespace dsv4::model {
namespace {

using json = nlohmann::json;

std::string configs_dir() { return std::string(DSV4_TEST_DATA) + "/configs"; }

std::string read_text(const std::string& name) {
  std::ifstream in(configs_dir() + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ModelConfig parse_ok(const std::string& text) {
  auto r = parse_config(text, "config.json");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
  return r.ok() ? r.value() : ModelConfig{};
}

ModelConfig parse_file(const std::string& name) { return parse_ok(read_text(name)); }

// Every field of ModelConfig except source_schema.
void expect_same_model(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.qk_rope_head_dim, b.qk_rope_head_dim);
  EXPECT_EQ(a.q_lora_rank, b.q_lora_rank);
  EXPECT_EQ(a.o_lora_rank, b.o_lora_rank);
  EXPECT_EQ(a.o_groups, b.o_groups);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.compress_ratios, b.compress_ratios);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.compress_rope_theta, b.compress_rope_theta);
  EXPECT_EQ(a.rope_scaling.enabled, b.rope_scaling.enabled);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.original_max_position, b.rope_scaling.original_max_position);
  EXPECT_EQ(a.rope_scaling.beta_fast, b.rope_scaling.beta_fast);
  EXPECT_EQ(a.rope_scaling.beta_slow, b.rope_scaling.beta_slow);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.index_n_heads, b.index_n_heads);
  EXPECT_EQ(a.index_head_dim, b.index_head_dim);
  EXPECT_EQ(a.index_topk, b.index_topk);
  EXPECT_EQ(a.n_routed_experts, b.n_routed_experts);
  EXPECT_EQ(a.n_shared_experts, b.n_shared_experts);
  EXPECT_EQ(a.num_experts_per_tok, b.num_experts_per_tok);
  EXPECT_EQ(a.moe_intermediate_size, b.moe_intermediate_size);
  EXPECT_EQ(a.routed_scaling_factor, b.routed_scaling_factor);
  EXPECT_EQ(a.norm_topk_prob, b.norm_topk_prob);
  EXPECT_EQ(a.num_hash_layers, b.num_hash_layers);
  EXPECT_EQ(a.swiglu_limit, b.swiglu_limit);
  EXPECT_EQ(a.hc_mult, b.hc_mult);
  EXPECT_EQ(a.hc_sinkhorn_iters, b.hc_sinkhorn_iters);
  EXPECT_EQ(a.hc_eps, b.hc_eps);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.num_nextn_predict_layers, b.num_nextn_predict_layers);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.fp8_weights, b.fp8_weights);
  EXPECT_EQ(a.fp4_experts, b.fp4_experts);
}

TEST(ConfigParse, FlashMatchesSpecTable) {
  ModelConfig c = parse_file("flash_config.json");
  EXPECT_EQ(c.source_schema, "hub");
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_hidden_layers, 43);
  EXPECT_EQ(c.num_attention_heads, 64);
  EXPECT_EQ(c.head_dim, 512);
  EXPECT_EQ(c.qk_rope_head_dim, 64);
  EXPECT_EQ(c.nope_head_dim(), 448);
  EXPECT_EQ(c.q_lora_rank, 1024);
  EXPECT_EQ(c.o_lora_rank, 1024);
  EXPECT_EQ(c.o_groups, 8);
  EXPECT_EQ(c.heads_per_group(), 8);
  EXPECT_EQ(c.sliding_window, 128);
  EXPECT_EQ(c.compress_rope_theta, 160000.0);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_TRUE(c.rope_scaling.enabled);
  EXPECT_EQ(c.rope_scaling.factor, 16.0);
  EXPECT_EQ(c.rope_scaling.original_max_position, 65536);
  EXPECT_EQ(c.rope_scaling.beta_fast, 32.0);
  EXPECT_EQ(c.rope_scaling.beta_slow, 1.0);
  EXPECT_EQ(c.max_position_embeddings, 1048576);
  EXPECT_EQ(c.index_n_heads, 64);
  EXPECT_EQ(c.index_head_dim, 128);
  EXPECT_EQ(c.index_topk, 512);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_EQ(c.num_experts_per_tok, 6);
  EXPECT_EQ(c.moe_intermediate_size, 2048);
  EXPECT_EQ(c.routed_scaling_factor, 1.5);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.num_hash_layers, 3);
  EXPECT_EQ(c.swiglu_limit, 10.0);
  EXPECT_EQ(c.hc_mult, 4);
  EXPECT_EQ(c.hc_sinkhorn_iters, 20);
  EXPECT_EQ(c.hc_eps, 1e-6);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  EXPECT_TRUE(c.fp8_weights);
  EXPECT_FALSE(c.fp4_experts);  // the Flash HF config carries no expert_dtype (spec §1.1)
}

TEST(ConfigParse, FlashLayerSchedule) {
  ModelConfig c = parse_file("flash_config.json");
  ASSERT_EQ(c.n_layers_total(), 44);
  ASSERT_EQ(c.compress_ratios.size(), 44u);
  // Spec §1.4: SWA 0,1; CSA 2,4,...,42; HCA 3,5,...,41; index 43 is the MTP block (ratio 0).
  EXPECT_EQ(c.compress_ratio(0), 0);
  EXPECT_EQ(c.compress_ratio(1), 0);
  for (int64_t il = 2; il <= 42; il += 2) EXPECT_EQ(c.compress_ratio(il), 4) << il;
  for (int64_t il = 3; il <= 41; il += 2) EXPECT_EQ(c.compress_ratio(il), 128) << il;
  EXPECT_EQ(c.compress_ratio(42), 4);  // the common pitfall: layer 42 is CSA
  EXPECT_EQ(c.compress_ratio(43), 0);  // the trailing 0 is the MTP block
  EXPECT_TRUE(c.is_hash_layer(0) && c.is_hash_layer(1) && c.is_hash_layer(2));
  EXPECT_FALSE(c.is_hash_layer(3));
  EXPECT_FALSE(c.is_hash_layer(43));
}

TEST(ConfigParse, ProMatchesSpecTable) {
  ModelConfig c = parse_file("pro_config.json");
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.num_attention_heads, 128);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.o_groups, 16);
  EXPECT_EQ(c.index_topk, 1024);
  EXPECT_EQ(c.n_routed_experts, 384);
  EXPECT_EQ(c.moe_intermediate_size, 3072);
  EXPECT_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_TRUE(c.fp4_experts);  // expert_dtype fp4
  ASSERT_EQ(c.n_layers_total(), 62);
  EXPECT_EQ(c.compress_ratio(0), 128);
  EXPECT_EQ(c.compress_ratio(1), 128);
  for (int64_t il = 2; il <= 60; il += 2) EXPECT_EQ(c.compress_ratio(il), 4) << il;
  for (int64_t il = 3; il <= 59; il += 2) EXPECT_EQ(c.compress_ratio(il), 128) << il;
  EXPECT_EQ(c.compress_ratio(61), 0);
}

TEST(ConfigParse, LoadConfigReadsDirectory) {
  auto dir = std::filesystem::temp_directory_path() / ("dsv4_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << read_text("pro_config.json");
  auto r = load_config(dir);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->num_hidden_layers, 61);
  std::filesystem::remove_all(dir);
}

TEST(ConfigParse, LoadConfigMissingFileNamesPath) {
  auto r = load_config("/nonexistent/dsv4-model");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("/nonexistent/dsv4-model/config.json"), std::string::npos) << r.message();
}

TEST(ConfigParse, ErrorsNameTheFileFromLoadConfig) {
  auto dir = std::filesystem::temp_directory_path() / ("dsv4_config_bad_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  json j = json::parse(read_text("flash_config.json"));
  j["sliding_window"] = 0;
  std::ofstream(dir / "config.json") << j.dump();
  auto r = load_config(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message().rfind((dir / "config.json").string() + ": ", 0), 0u) << r.message();
  std::filesystem::remove_all(dir);
}

TEST(ConfigParse, TransformersSchemaEqualsHubSchema) {
  ModelConfig hf = parse_file("tiny_transformers_config.json");
  ModelConfig hub = parse_file("tiny_hub_config.json");
  EXPECT_EQ(hf.source_schema, "transformers");
  EXPECT_EQ(hub.source_schema, "hub");
  expect_same_model(hf, hub);
  // Spot checks against the file contents (not against the other parse).
  EXPECT_EQ(hf.compress_ratios, (std::vector<int64_t>{0, 0, 4, 128, 4, 128, 0}));
  EXPECT_EQ(hf.num_hash_layers, 2);
  EXPECT_EQ(hf.qk_rope_head_dim, 64);
  EXPECT_TRUE(hf.rope_scaling.enabled);
  EXPECT_EQ(hf.rope_scaling.factor, 16.0);
}

TEST(ConfigParse, TransformersConfigOfFlashEqualsHubFlash) {
  // What transformers would save for Flash: layer_types (43, MTP entry dropped), mlp_layer_types,
  // partial_rotary_factor and nested rope_parameters instead of the hub keys.
  json j = json::parse(read_text("flash_config.json"));
  json types = json::array();
  for (int il = 0; il < 43; ++il)
    types.push_back(il < 2        ? "sliding_attention"
                    : il % 2 == 0 ? "compressed_sparse_attention"
                                  : "heavily_compressed_attention");
  json mlp = json::array();
  for (int il = 0; il < 43; ++il) mlp.push_back(il < 3 ? "hash_moe" : "moe");
  for (const char* k : {"compress_ratios", "num_hash_layers", "qk_rope_head_dim", "rope_scaling"}) j.erase(k);
  j["layer_types"] = types;
  j["mlp_layer_types"] = mlp;
  j["compress_rates"] = {{"compressed_sparse_attention", 4}, {"heavily_compressed_attention", 128}};
  j["partial_rotary_factor"] = 0.125;
  j["rope_parameters"] = {
      {"main", {{"rope_type", "default"}, {"rope_theta", 10000.0}, {"partial_rotary_factor", 0.125}}},
      {"compress",
       {{"rope_type", "yarn"},
        {"rope_theta", 160000.0},
        {"factor", 16.0},
        {"original_max_position_embeddings", 65536},
        {"beta_fast", 32.0},
        {"beta_slow", 1.0},
        {"attention_factor", 1.0},
        {"partial_rotary_factor", 0.125}}}};
  ModelConfig hf = parse_ok(j.dump());
  ModelConfig hub = parse_file("flash_config.json");
  EXPECT_EQ(hf.source_schema, "transformers");
  expect_same_model(hf, hub);
  EXPECT_EQ(hf.compress_ratio(42), 4);
  EXPECT_EQ(hf.compress_ratio(43), 0);
}

TEST(ConfigParse, BothSchemasPresentAndConsistent) {
  // A hub config that also carries transformers keys (e.g. re-saved by a tool): accepted when they agree.
  json j = json::parse(read_text("tiny_hub_config.json"));
  json hf = json::parse(read_text("tiny_transformers_config.json"));
  for (const char* k : {"layer_types", "mlp_layer_types", "rope_parameters", "partial_rotary_factor", "compress_rates"})
    j[k] = hf[k];
  ModelConfig c = parse_ok(j.dump());
  EXPECT_EQ(c.source_schema, "hub");
  expect_same_model(c, parse_file("tiny_hub_config.json"));
}

TEST(ConfigParse, TransformersDefaultsWhenSchedulesAbsent) {
  // configuration_deepseek_v4.py: layer_types default = 2x HCA, then "CSA if i % 2 else HCA" for
  // i in range(n - 2); mlp_layer_types default = 3x hash_moe; partial_rotary_factor default 64/512.
  json j = json::parse(read_text("tiny_transformers_config.json"));
  for (const char* k : {"layer_types", "mlp_layer_types", "partial_rotary_factor", "qk_rope_head_dim"}) j.erase(k);
  j["rope_parameters"]["main"].erase("partial_rotary_factor");
  j["rope_parameters"]["compress"].erase("partial_rotary_factor");
  j["head_dim"] = 512;  // so that the default factor 1/8 gives 64 RoPE dims and 448 no-RoPE dims
  ModelConfig c = parse_ok(j.dump());
  EXPECT_EQ(c.compress_ratios, (std::vector<int64_t>{128, 128, 128, 4, 128, 4, 0}));
  EXPECT_EQ(c.num_hash_layers, 3);
  EXPECT_EQ(c.qk_rope_head_dim, 64);  // 512 * 64 / 512
}

TEST(ConfigParse, TransformersConfigWithoutMtp) {
  json j = json::parse(read_text("tiny_transformers_config.json"));
  j.erase("num_nextn_predict_layers");
  ModelConfig c = parse_ok(j.dump());
  EXPECT_EQ(c.num_nextn_predict_layers, 0);
  EXPECT_EQ(c.compress_ratios, (std::vector<int64_t>{0, 0, 4, 128, 4, 128}));
}

TEST(ConfigParse, HubRatiosWithoutMtpEntryArePadded) {
  json j = json::parse(read_text("tiny_hub_config.json"));
  j["compress_ratios"] = {0, 0, 4, 128, 4, 128};
  ModelConfig c = parse_ok(j.dump());
  EXPECT_EQ(c.compress_ratios, (std::vector<int64_t>{0, 0, 4, 128, 4, 128, 0}));
}

TEST(ConfigParse, NoMtpLayers) {
  // Spec §13.5: num_nextn_predict_layers may be 0; then compress_ratios has one entry per layer.
  json j = json::parse(read_text("tiny_hub_config.json"));
  j["num_nextn_predict_layers"] = 0;
  j["compress_ratios"] = {0, 0, 4, 128, 4, 128};
  ModelConfig c = parse_ok(j.dump());
  EXPECT_EQ(c.n_layers_total(), 6);
}

TEST(ConfigParse, OptionalFieldsGetSpecDefaults) {
  json j = json::parse(read_text("tiny_hub_config.json"));
  for (const char* k : {"hc_eps", "rms_norm_eps", "hc_mult", "hc_sinkhorn_iters", "num_nextn_predict_layers",
                        "n_shared_experts", "norm_topk_prob", "bos_token_id", "eos_token_id", "rope_theta",
                        "compress_rope_theta", "scoring_func", "hidden_act", "topk_method", "model_type"})
    j.erase(k);
  j["compress_ratios"] = {0, 0, 4, 128, 4, 128};
  ModelConfig c = parse_ok(j.dump());
  EXPECT_EQ(c.hc_eps, 1e-6);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.hc_mult, 4);
  EXPECT_EQ(c.hc_sinkhorn_iters, 20);
  EXPECT_EQ(c.num_nextn_predict_layers, 0);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.compress_rope_theta, 160000.0);  // the released value, not ModelArgs' 40000
}

TEST(ConfigParse, EosTokenIdList) {
  json j = json::parse(read_text("tiny_hub_config.json"));
  j["eos_token_id"] = {1, 7};
  EXPECT_EQ(parse_ok(j.dump()).eos_token_ids, (std::vector<int64_t>{1, 7}));
}

TEST(ConfigParse, IgnoresUnknownFieldsAndFirstKDenseReplace) {
  json j = json::parse(read_text("tiny_hub_config.json"));
  j["first_k_dense_replace"] = 1;
  j["some_future_field"] = {{"x", 1}};
  EXPECT_TRUE(parse_config(j.dump(), "config.json").ok());
}

TEST(ConfigParse, NoRopeScalingMeansNoYarn) {
  json j = json::parse(read_text("tiny_hub_config.json"));
  j.erase("rope_scaling");
  EXPECT_FALSE(parse_ok(j.dump()).rope_scaling.enabled);
}

TEST(ConfigParse, MalformedJsonGivesPosition) {
  auto r = parse_config("{\n  \"hidden_size\": 4096,\n  \"vocab_size\": ,\n}", "config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("config.json: malformed JSON at byte"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("line 3"), std::string::npos) << r.message();
}

TEST(ConfigParse, TopLevelMustBeObject) {
  auto r = parse_config("[1, 2]", "config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("object"), std::string::npos) << r.message();
}

}  // namespace
}  // namespace dsv4::model
