// Naming detection and official -> transformers name translation.
#include "weights/names.h"

#include <gtest/gtest.h>

#include "tiny_checkpoint.h"

namespace dsv4::weights {
namespace {

using dsv4::testing::contains;

TEST(Names, DetectsOfficial) {
  auto n = detect_naming({"embed.weight", "layers.0.attn.wq_a.weight", "mtp.0.e_proj.weight"}, "ck");
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(*n, Naming::Official);
  EXPECT_EQ(naming_name(*n), "official");
}

TEST(Names, DetectsTransformers) {
  auto n = detect_naming({"lm_head.weight", "model.embed_tokens.weight", "mtp.0.e_proj.weight"}, "ck");
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(*n, Naming::Transformers);
  EXPECT_EQ(naming_name(*n), "transformers");
}

TEST(Names, MixedNamingIsAnError) {
  auto n = detect_naming({"embed.weight", "model.layers.0.self_attn.sinks"}, "/ck");
  ASSERT_FALSE(n.ok());
  EXPECT_TRUE(contains(n.message(), "/ck"));
  EXPECT_TRUE(contains(n.message(), "'embed.weight'"));
  EXPECT_TRUE(contains(n.message(), "'model.layers.0.self_attn.sinks'"));
}

TEST(Names, UnknownNamesAreAnError) {
  EXPECT_FALSE(detect_naming({"foo.bar"}, "ck").ok());
  EXPECT_FALSE(detect_naming({}, "ck").ok());
}

TEST(Names, OfficialIsIdentityWithScaleVariant) {
  EXPECT_EQ(disk_names(Naming::Official, "layers.2.attn.wq_a.weight"),
            (std::vector<std::string>{"layers.2.attn.wq_a.weight"}));
  auto s = disk_names(Naming::Official, "layers.2.attn.wq_a.scale");
  EXPECT_EQ(s.front(), "layers.2.attn.wq_a.scale");
}

// Canonical transformers names (modeling_deepseek_v4.py state_dict).
TEST(Names, TransformersCanonical) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"embed.weight", "model.embed_tokens.weight"},
      {"head.weight", "lm_head.weight"},
      {"norm.weight", "model.norm.weight"},
      {"hc_head_fn", "model.hc_head.hc_fn"},
      {"hc_head_scale", "model.hc_head.hc_scale"},
      {"layers.3.attn_norm.weight", "model.layers.3.input_layernorm.weight"},
      {"layers.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight"},
      {"layers.3.hc_attn_fn", "model.layers.3.attn_hc.fn"},
      {"layers.3.hc_ffn_base", "model.layers.3.ffn_hc.base"},
      {"layers.3.attn.attn_sink", "model.layers.3.self_attn.sinks"},
      {"layers.3.attn.wq_a.weight", "model.layers.3.self_attn.q_a_proj.weight"},
      {"layers.3.attn.wq_a.scale", "model.layers.3.self_attn.q_a_proj.weight_scale_inv"},
      {"layers.3.attn.q_norm.weight", "model.layers.3.self_attn.q_a_norm.weight"},
      {"layers.3.attn.wkv.weight", "model.layers.3.self_attn.kv_proj.weight"},
      {"layers.3.attn.wo_a.weight", "model.layers.3.self_attn.o_a_proj.weight"},
      {"layers.3.attn.compressor.ape", "model.layers.3.self_attn.compressor.position_bias"},
      {"layers.3.attn.compressor.norm.weight", "model.layers.3.self_attn.compressor.kv_norm.weight"},
      {"layers.3.attn.indexer.wq_b.weight", "model.layers.3.self_attn.compressor.indexer.q_b_proj.weight"},
      {"layers.3.attn.indexer.weights_proj.weight",
       "model.layers.3.self_attn.compressor.indexer.scorer.weights_proj.weight"},
      {"layers.3.attn.indexer.compressor.wgate.weight",
       "model.layers.3.self_attn.compressor.indexer.gate_proj.weight"},
      {"layers.3.ffn.gate.bias", "model.layers.3.mlp.gate.e_score_correction_bias"},
      {"layers.3.ffn.gate.tid2eid", "model.layers.3.mlp.gate.tid2eid"},
      {"layers.3.ffn.shared_experts.w2.weight", "model.layers.3.mlp.shared_experts.down_proj.weight"},
      {"layers.3.ffn.experts.7.w3.weight", "model.layers.3.mlp.experts.7.up_proj.weight"},
      {"mtp.0.e_proj.weight", "mtp.0.e_proj.weight"},
  };
  for (const auto& [off, hf] : cases) {
    auto names = disk_names(Naming::Transformers, off);
    ASSERT_FALSE(names.empty()) << off;
    EXPECT_EQ(names.front(), hf) << off;
  }
}

TEST(Names, TransformersVariants) {
  auto wp = disk_names(Naming::Transformers, "layers.0.attn.indexer.weights_proj.weight");
  EXPECT_NE(std::find(wp.begin(), wp.end(), "model.layers.0.self_attn.compressor.indexer.weights_proj.weight"),
            wp.end());
  auto hc = disk_names(Naming::Transformers, "layers.0.hc_attn_fn");
  EXPECT_NE(std::find(hc.begin(), hc.end(), "model.layers.0.attn_hc.hc_fn"), hc.end());
  auto head = disk_names(Naming::Transformers, "hc_head_base");
  EXPECT_NE(std::find(head.begin(), head.end(), "model.hc_head.base"), head.end());
  EXPECT_TRUE(disk_names(Naming::Transformers, "layers.0.attn.bogus.weight").empty());
}

TEST(Names, FusedExperts) {
  EXPECT_EQ(fused_expert_names(5, true).front(), "model.layers.5.mlp.experts.gate_up_proj");
  EXPECT_EQ(fused_expert_names(5, false).front(), "model.layers.5.mlp.experts.down_proj");
  EXPECT_EQ(fused_scale_names("model.layers.5.mlp.experts.gate_up_proj").front(),
            "model.layers.5.mlp.experts.gate_up_proj_scale_inv");
}

}  // namespace
}  // namespace dsv4::weights
