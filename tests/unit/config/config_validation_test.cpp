// One case per validation rule of config.cpp: a valid config (Flash, Pro or the tiny transformers-schema
// config) is broken in exactly one way and must be rejected with a message that names the file, the field
// and the offending value. Each case is its own test (ConfigReject/<rule>).
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/config.h"

namespace dsv4::model {
namespace {

using json = nlohmann::json;

json load_json(const std::string& name) {
  std::ifstream in(std::string(DSV4_TEST_DATA) + "/configs/" + name);
  std::ostringstream s;
  s << in.rdbuf();
  return json::parse(s.str());
}

struct RejectCase {
  const char* name;
  const char* base;  // file under tests/data/configs
  std::function<void(json&)> mutate;
  std::vector<std::string> expect;  // substrings of the error message, besides the file name
};

constexpr const char* kFlash = "flash_config.json";
constexpr const char* kPro = "pro_config.json";
constexpr const char* kHf = "tiny_transformers_config.json";
constexpr const char* kTinyHub = "tiny_hub_config.json";

const std::vector<RejectCase>& cases() {
  static const std::vector<RejectCase> all = {
      // ---- types, presence ----
      {"MissingHiddenSize", kFlash, [](json& j) { j.erase("hidden_size"); }, {"\"hidden_size\"", "missing"}},
      {"MissingNumHiddenLayers",
       kFlash,
       [](json& j) { j.erase("num_hidden_layers"); },
       {"\"num_hidden_layers\"", "missing"}},
      {"MissingVocabSize", kFlash, [](json& j) { j.erase("vocab_size"); }, {"\"vocab_size\"", "missing"}},
      {"MissingRoutedScalingFactor",
       kFlash,
       [](json& j) { j.erase("routed_scaling_factor"); },
       {"\"routed_scaling_factor\"", "missing"}},
      {"MissingQkRopeHeadDim",
       kFlash,
       [](json& j) { j.erase("qk_rope_head_dim"); },
       {"\"qk_rope_head_dim\"", "missing"}},
      {"MissingCompressRatios",
       kFlash,
       [](json& j) { j.erase("compress_ratios"); },
       {"\"compress_ratios\"", "missing"}},
      {"MissingNumHashLayers", kFlash, [](json& j) { j.erase("num_hash_layers"); }, {"\"num_hash_layers\"", "missing"}},
      {"StringWhereIntExpected",
       kFlash,
       [](json& j) { j["hidden_size"] = "4096"; },
       {"\"hidden_size\" = \"4096\"", "integer"}},
      {"FloatWhereIntExpected",
       kFlash,
       [](json& j) { j["num_hidden_layers"] = 43.5; },
       {"\"num_hidden_layers\" = 43.5", "integer"}},
      {"BoolWhereNumberExpected",
       kFlash,
       [](json& j) { j["routed_scaling_factor"] = true; },
       {"\"routed_scaling_factor\" = true", "number"}},
      {"StringWhereBoolExpected",
       kFlash,
       [](json& j) { j["norm_topk_prob"] = "yes"; },
       {"\"norm_topk_prob\" = \"yes\""}},
      {"StringInCompressRatios",
       kFlash,
       [](json& j) { j["compress_ratios"][2] = "4"; },
       {"\"compress_ratios\"[2] = \"4\"", "integer"}},
      {"QuantizationConfigNotObject",
       kFlash,
       [](json& j) { j["quantization_config"] = "fp8"; },
       {"\"quantization_config\" = \"fp8\"", "object"}},
      // ---- fixed choices ----
      {"ModelType",
       kFlash,
       [](json& j) { j["model_type"] = "deepseek_v3"; },
       {"\"model_type\" = \"deepseek_v3\"", "deepseek_v4"}},
      {"HiddenAct", kFlash, [](json& j) { j["hidden_act"] = "gelu"; }, {"\"hidden_act\" = \"gelu\"", "silu"}},
      {"ScoringFunc",
       kFlash,
       [](json& j) { j["scoring_func"] = "softmax"; },
       {"\"scoring_func\" = \"softmax\"", "sqrtsoftplus"}},
      {"TopkMethod",
       kFlash,
       [](json& j) { j["topk_method"] = "greedy"; },
       {"\"topk_method\" = \"greedy\"", "noaux_tc"}},
      {"NumKeyValueHeads", kFlash, [](json& j) { j["num_key_value_heads"] = 8; }, {"\"num_key_value_heads\" = 8", "1"}},
      {"TieWordEmbeddings",
       kFlash,
       [](json& j) { j["tie_word_embeddings"] = true; },
       {"\"tie_word_embeddings\" = true", "false"}},
      {"AttentionBias", kFlash, [](json& j) { j["attention_bias"] = true; }, {"\"attention_bias\" = true"}},
      {"SharedExperts", kFlash, [](json& j) { j["n_shared_experts"] = 2; }, {"\"n_shared_experts\" = 2"}},
      // ---- ranges ----
      {"ZeroHeads", kFlash, [](json& j) { j["num_attention_heads"] = 0; }, {"\"num_attention_heads\" = 0", ">= 1"}},
      {"NegativeQLoraRank", kFlash, [](json& j) { j["q_lora_rank"] = -5; }, {"\"q_lora_rank\" = -5"}},
      {"ZeroMaxPositions",
       kFlash,
       [](json& j) { j["max_position_embeddings"] = 0; },
       {"\"max_position_embeddings\" = 0"}},
      {"SlidingWindow", kFlash, [](json& j) { j["sliding_window"] = 0; }, {"\"sliding_window\" = 0"}},
      {"HcMult", kFlash, [](json& j) { j["hc_mult"] = 0; }, {"\"hc_mult\" = 0"}},
      {"HcSinkhornIters", kFlash, [](json& j) { j["hc_sinkhorn_iters"] = 0; }, {"\"hc_sinkhorn_iters\" = 0"}},
      {"RmsNormEps", kFlash, [](json& j) { j["rms_norm_eps"] = 0; }, {"\"rms_norm_eps\" = 0", "> 0"}},
      {"HcEps", kFlash, [](json& j) { j["hc_eps"] = -1e-6; }, {"\"hc_eps\" = -1e-06"}},
      {"RoutedScalingFactor",
       kFlash,
       [](json& j) { j["routed_scaling_factor"] = -1.5; },
       {"\"routed_scaling_factor\" = -1.5"}},
      {"SwigluLimit", kFlash, [](json& j) { j["swiglu_limit"] = -10.0; }, {"\"swiglu_limit\" = -10.0"}},
      {"RopeTheta", kFlash, [](json& j) { j["compress_rope_theta"] = 0; }, {"\"compress_rope_theta\" = 0"}},
      {"NegativeMtpLayers",
       kFlash,
       [](json& j) { j["num_nextn_predict_layers"] = -1; },
       {"\"num_nextn_predict_layers\" = -1"}},
      {"ExpertsPerTokZero", kFlash, [](json& j) { j["num_experts_per_tok"] = 0; }, {"\"num_experts_per_tok\" = 0"}},
      {"ExpertsPerTokAboveExperts",
       kFlash,
       [](json& j) { j["num_experts_per_tok"] = 257; },
       {"\"num_experts_per_tok\" = 257", "n_routed_experts (256)"}},
      {"HashLayersAboveLayers",
       kFlash,
       [](json& j) { j["num_hash_layers"] = 44; },
       {"\"num_hash_layers\" = 44", "num_hidden_layers (43)"}},
      {"EosNotInt", kFlash, [](json& j) { j["eos_token_id"] = "1"; }, {"\"eos_token_id\" = \"1\""}},
      {"EosOutOfVocab",
       kFlash,
       [](json& j) {
         j["eos_token_id"] = {1, 200000};
       },
       {"\"eos_token_id\"[1] = 200000", "vocab_size"}},
      {"BosOutOfVocab", kFlash, [](json& j) { j["bos_token_id"] = 129280; }, {"\"bos_token_id\" = 129280"}},
      // ---- shapes ----
      {"HeadDimNotAboveRope",
       kFlash,
       [](json& j) { j["head_dim"] = 64; },
       {"\"head_dim\" = 64", "qk_rope_head_dim (64)"}},
      {"NopeNotMultipleOf64", kFlash, [](json& j) { j["head_dim"] = 544; }, {"\"head_dim\" = 544", "64"}},
      {"RopeDimOdd",
       kFlash,
       [](json& j) {
         j["head_dim"] = 513;
         j["qk_rope_head_dim"] = 65;
       },
       {"\"qk_rope_head_dim\" = 65", "even"}},
      {"OGroupsDivideHeads",
       kFlash,
       [](json& j) { j["o_groups"] = 7; },
       {"\"o_groups\" = 7", "num_attention_heads (64)"}},
      {"IndexHeadDimPowerOfTwo",
       kFlash,
       [](json& j) { j["index_head_dim"] = 96; },
       {"\"index_head_dim\" = 96", "power of two"}},
      {"IndexHeadDimBelowRope", kFlash, [](json& j) { j["index_head_dim"] = 32; }, {"\"index_head_dim\" = 32"}},
      {"MoeWidthFp4Blocks",
       kPro,
       [](json& j) { j["moe_intermediate_size"] = 3080; },
       {"\"moe_intermediate_size\" = 3080", "32"}},
      {"HiddenSizeFp4Blocks", kPro, [](json& j) { j["hidden_size"] = 7176; }, {"\"hidden_size\" = 7176", "32"}},
      // ---- layer schedule (hub) ----
      {"CompressRatiosLength",
       kFlash,
       [](json& j) { j["compress_ratios"].push_back(0); },
       {"\"compress_ratios\" has 45 entries", "44"}},
      {"CompressRatiosNotList", kFlash, [](json& j) { j["compress_ratios"] = 4; }, {"\"compress_ratios\" = 4"}},
      {"MtpRatioNonZero",
       kFlash,
       [](json& j) { j["compress_ratios"][43] = 4; },
       {"\"compress_ratios\"[43] = 4", "MTP"}},
      // ---- layer schedule (transformers) ----
      {"LayerTypesValue",
       kHf,
       [](json& j) { j["layer_types"][1] = "full_attention"; },
       {"\"layer_types\"[1] = \"full_attention\"", "sliding_attention"}},
      {"LayerTypesLength", kHf, [](json& j) { j["layer_types"].erase(0); }, {"\"layer_types\" has 5 entries", "6"}},
      {"LayerTypesDisagreeWithRatios",
       kTinyHub,
       [](json& j) {
         j["layer_types"] = {"sliding_attention",
                             "sliding_attention",
                             "heavily_compressed_attention",
                             "heavily_compressed_attention",
                             "compressed_sparse_attention",
                             "heavily_compressed_attention"};
       },
       {"\"layer_types\"[2]", "\"compress_ratios\"[2] = 4"}},
      {"CompressRatesCsa",
       kHf,
       [](json& j) { j["compress_rates"]["compressed_sparse_attention"] = 8; },
       {"\"compress_rates.compressed_sparse_attention\" = 8", "4"}},
      {"CompressRatesUnknownKey",
       kHf,
       [](json& j) { j["compress_rates"]["sliding_attention"] = 1; },
       {"\"compress_rates.sliding_attention\" = 1"}},
      {"LegacyCompressRateHca",
       kHf,
       [](json& j) { j["compress_rate_hca"] = 64; },
       {"\"compress_rate_hca\" = 64", "128"}},
      {"MlpLayerTypesValue",
       kHf,
       [](json& j) { j["mlp_layer_types"][4] = "dense"; },
       {"\"mlp_layer_types\"[4] = \"dense\"", "hash_moe, moe"}},
      {"MlpLayerTypesOrder",
       kHf,
       [](json& j) { j["mlp_layer_types"] = {"hash_moe", "moe", "hash_moe", "moe", "moe", "moe"}; },
       {"\"mlp_layer_types\"[2] = \"hash_moe\""}},
      {"MlpLayerTypesDisagreeWithHashLayers",
       kTinyHub,
       [](json& j) { j["mlp_layer_types"] = {"hash_moe", "hash_moe", "hash_moe", "moe", "moe", "moe"}; },
       {"\"mlp_layer_types\"", "\"num_hash_layers\" = 2"}},
      // ---- RoPE ----
      {"RopeScalingType",
       kFlash,
       [](json& j) { j["rope_scaling"]["type"] = "linear"; },
       {"\"rope_scaling.type\" = \"linear\"", "yarn"}},
      {"RopeScalingFactor",
       kFlash,
       [](json& j) { j["rope_scaling"]["factor"] = 0.5; },
       {"\"rope_scaling.factor\" = 0.5"}},
      {"RopeScalingBetas",
       kFlash,
       [](json& j) {
         j["rope_scaling"]["beta_fast"] = 1;
         j["rope_scaling"]["beta_slow"] = 32;
       },
       {"\"rope_scaling.beta_fast\" = 1", "beta_slow"}},
      {"RopeScalingMissingOriginal",
       kFlash,
       [](json& j) { j["rope_scaling"].erase("original_max_position_embeddings"); },
       {"\"rope_scaling.original_max_position_embeddings\"", "missing"}},
      {"YarnAttentionFactor",
       kHf,
       [](json& j) { j["rope_parameters"]["compress"]["attention_factor"] = 1.277; },
       {"\"rope_parameters.compress.attention_factor\" = 1.277", "mscale"}},
      {"MainRopeType",
       kHf,
       [](json& j) { j["rope_parameters"]["main"]["rope_type"] = "yarn"; },
       {"\"rope_parameters.main.rope_type\" = \"yarn\"", "default"}},
      {"MainRopeThetaDisagrees",
       kHf,
       [](json& j) { j["rope_parameters"]["main"]["rope_theta"] = 20000.0; },
       {"\"rope_parameters.main.rope_theta\" = 20000", "\"rope_theta\" = 10000"}},
      {"CompressRopeThetaDisagrees",
       kHf,
       [](json& j) { j["rope_parameters"]["compress"]["rope_theta"] = 40000.0; },
       {"\"rope_parameters.compress.rope_theta\" = 40000", "\"compress_rope_theta\" = 160000"}},
      {"RopeParametersDisagreeWithRopeScaling",
       kTinyHub,
       [](json& j) {
         j["rope_parameters"] = {{"main", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
                                 {"compress",
                                  {{"rope_type", "yarn"},
                                   {"rope_theta", 160000.0},
                                   {"factor", 8.0},
                                   {"original_max_position_embeddings", 65536}}}};
       },
       {"\"rope_parameters\"", "factor 8", "\"rope_scaling\"", "factor 16"}},
      {"PartialRotaryNotWhole",
       kHf,
       [](json& j) { j["partial_rotary_factor"] = 0.3; },
       {"\"partial_rotary_factor\" = 0.3", "whole number"}},
      {"PartialRotaryDisagreesWithQkRope",
       kHf,
       [](json& j) { j["partial_rotary_factor"] = 0.25; },
       {"\"partial_rotary_factor\" = 0.25", "\"qk_rope_head_dim\" = 64"}},
      // ---- weight formats ----
      {"QuantMethod",
       kFlash,
       [](json& j) { j["quantization_config"]["quant_method"] = "awq"; },
       {"\"quantization_config.quant_method\" = \"awq\"", "fp8"}},
      {"QuantFmt",
       kFlash,
       [](json& j) { j["quantization_config"]["fmt"] = "e5m2"; },
       {"\"quantization_config.fmt\" = \"e5m2\""}},
      {"ScaleFmt",
       kFlash,
       [](json& j) { j["quantization_config"]["scale_fmt"] = "fp32"; },
       {"\"quantization_config.scale_fmt\" = \"fp32\"", "ue8m0"}},
      {"WeightBlockSize",
       kFlash,
       [](json& j) {
         j["quantization_config"]["weight_block_size"] = {128, 64};
       },
       {"\"quantization_config.weight_block_size\" = [128,64]", "[128, 128]"}},
      {"ExpertDtype", kPro, [](json& j) { j["expert_dtype"] = "int4"; }, {"\"expert_dtype\" = \"int4\"", "fp4"}},
  };
  return all;
}

class ConfigReject : public ::testing::TestWithParam<RejectCase> {};

TEST_P(ConfigReject, NamesFieldAndValue) {
  const RejectCase& c = GetParam();
  json j = load_json(c.base);
  c.mutate(j);
  auto r = parse_config(j.dump(), "config.json");
  ASSERT_FALSE(r.ok()) << c.name << " was accepted";
  EXPECT_EQ(r.message().rfind("config.json: ", 0), 0u) << r.message();
  for (const std::string& s : c.expect)
    EXPECT_NE(r.message().find(s), std::string::npos) << "missing '" << s << "' in: " << r.message();
}

INSTANTIATE_TEST_SUITE_P(Rules, ConfigReject, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<RejectCase>& info) { return std::string(info.param.name); });

// The example message of the task, verbatim.
TEST(ConfigRejectMessage, CompressRatioExactMessage) {
  json j = load_json(kFlash);
  j["compress_ratios"][3] = 8;
  auto r = parse_config(j.dump(), "config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "config.json: field \"compress_ratios\"[3] = 8: allowed values are 0, 4, 128");
}

// The base configs are valid, so every rejection above is caused by its mutation alone.
TEST(ConfigRejectMessage, BaseConfigsAreValid) {
  for (const char* name : {kFlash, kPro, kHf, kTinyHub}) {
    auto r = parse_config(load_json(name).dump(), "config.json");
    EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.message());
  }
}

// The MXFP4 width rule applies only to FP4 experts.
TEST(ConfigRejectMessage, MoeWidthFreeWithoutFp4) {
  json j = load_json(kFlash);
  j["moe_intermediate_size"] = 3080;
  EXPECT_TRUE(parse_config(j.dump(), "config.json").ok());
}

}  // namespace
}  // namespace dsv4::model

namespace dsv4::model {
namespace {

// A number literal that overflows a double must be a malformed-JSON error, not an escaping exception.
TEST(ConfigValidation, OverflowingNumberIsAJsonError) {
  auto r = parse_config("{\"hidden_size\": 1E99999}", "config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("config.json"), std::string::npos) << r.message();
}

}  // namespace
}  // namespace dsv4::model
