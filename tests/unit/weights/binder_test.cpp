// Binding complete tiny checkpoints: both namings, BF16 / FP8 + MXFP4 / FP8 formats, single and sharded
// layouts. Every bound Weight is compared byte for byte with the tensor the fixture wrote under its official
// name, so a wrong translation, a wrong fused-expert offset or a wrong scale slice fails.
#include <gtest/gtest.h>

#include <memory>

#include "weights/checkpoint.h"
#include "weights_visit.h"

namespace dsv4::weights {
namespace {

using namespace dsv4::testing;

TEST(Binder, OfficialBf16) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c);
  auto mw = write_and_load(off, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  EXPECT_EQ(mw->naming, "official");
  ASSERT_EQ(mw->layers.size(), 2u);
  ASSERT_EQ(mw->mtp.size(), 1u);
  EXPECT_EQ(expect_matches_official(*mw, off), off.size());  // every tensor bound exactly once

  const auto& l0 = mw->layers[0];
  const auto& l1 = mw->layers[1];
  EXPECT_TRUE(l0.attn.compressor && l0.attn.indexer);  // ratio 4: CSA
  EXPECT_TRUE(l1.attn.compressor && !l1.attn.indexer);  // ratio 128: HCA
  EXPECT_FALSE(mw->mtp[0].block.attn.compressor);      // ratio 0
  EXPECT_EQ(l0.attn.compressor->ape.shape, (Shape{4, 256}));
  EXPECT_EQ(l1.attn.compressor->ape.shape, (Shape{128, 128}));
  EXPECT_EQ(l0.attn.indexer->compressor.wkv.shape, (Shape{256, 256}));
  EXPECT_EQ(l0.attn.wo_a.shape, (Shape{128, 128}));
  EXPECT_TRUE(l0.ffn.tid2eid.present());
  EXPECT_FALSE(l0.ffn.gate_bias.present());
  EXPECT_TRUE(l1.ffn.gate_bias.present());
  EXPECT_FALSE(l1.ffn.tid2eid.present());
  EXPECT_EQ(l0.ffn.experts.size(), 4u);
  EXPECT_EQ(l0.attn.wq_a.name, "layers.0.attn.wq_a.weight");

  // Views point into the mapping: no copies.
  auto ck = std::dynamic_pointer_cast<Checkpoint>(mw->storage);
  ASSERT_NE(ck, nullptr);
  EXPECT_EQ(mw->embed.data, ck->find("embed.weight")->data);
  EXPECT_EQ(l1.ffn.experts[3].w2.data, ck->find("layers.1.ffn.experts.3.w2.weight")->data);
}

TEST(Binder, TransformersBf16FusedExperts) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c);
  const TensorMap hf = to_transformers(off, c);
  auto mw = write_and_load(hf, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  EXPECT_EQ(mw->naming, "transformers");
  EXPECT_TRUE(mw->mtp.empty());  // transformers checkpoints carry no MTP
  expect_matches_official(*mw, off);
  const auto& x = mw->layers[1].ffn.experts[2];
  EXPECT_EQ(x.w1.name, "model.layers.1.mlp.experts.gate_up_proj[2].gate");
  EXPECT_EQ(x.w3.name, "model.layers.1.mlp.experts.gate_up_proj[2].up");
  EXPECT_EQ(x.w1.shape, (Shape{64, 256}));
  EXPECT_EQ(x.w2.shape, (Shape{256, 64}));
  auto ck = std::dynamic_pointer_cast<Checkpoint>(mw->storage);
  const auto* base = static_cast<const uint8_t*>(ck->find("model.layers.1.mlp.experts.gate_up_proj")->data);
  EXPECT_EQ(x.w1.data, base + (2 * 128) * 256 * 2);  // expert 2, row 0 of [E, 2I, D] bf16
  EXPECT_EQ(x.w3.data, base + (2 * 128 + 64) * 256 * 2);
}

TEST(Binder, OfficialFp8Mxfp4) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c, TinyFormat::Fp8Mxfp4);
  auto mw = write_and_load(off, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  EXPECT_EQ(expect_matches_official(*mw, off), off.size());
  const Weight& wq_b = mw->layers[0].attn.wq_b;
  EXPECT_EQ(wq_b.quant, Quant::Fp8Block128);
  EXPECT_EQ(wq_b.dtype, DType::F8_E4M3);
  EXPECT_EQ(wq_b.scale_dtype, DType::F8_E8M0);
  EXPECT_EQ(wq_b.scale_shape, (Shape{2, 1}));
  const Weight& w2 = mw->mtp[0].block.ffn.experts[1].w2;
  EXPECT_EQ(w2.quant, Quant::Mxfp4);
  EXPECT_EQ(w2.dtype, DType::I8);
  EXPECT_EQ(w2.shape, (Shape{256, 64}));  // logical, unpacked
  EXPECT_EQ(w2.scale_shape, (Shape{256, 2}));
  EXPECT_EQ(mw->mtp[0].e_proj.quant, Quant::Fp8Block128);
  EXPECT_EQ(mw->layers[0].attn.compressor->wkv.quant, Quant::None);
}

TEST(Binder, TransformersFp8F32ScalesMxfp4FusedExperts) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c, TinyFormat::Fp8Mxfp4, 5);
  const TensorMap hf = to_transformers(off, c, /*f32_scales=*/true);
  ASSERT_EQ(hf.at("model.layers.0.self_attn.q_a_proj.weight_scale_inv").dtype, "F32");
  auto mw = write_and_load(hf, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  expect_matches_official(*mw, off);
  EXPECT_EQ(mw->layers[0].attn.wq_a.scale_dtype, DType::F32);
  const Weight& w3 = mw->layers[0].ffn.experts[3].w3;
  EXPECT_EQ(w3.quant, Quant::Mxfp4);
  EXPECT_EQ(w3.scale_dtype, DType::F8_E8M0);
  EXPECT_EQ(w3.scale_shape, (Shape{64, 8}));
}

TEST(Binder, TransformersFp8FusedExpertsSliceScales) {
  auto c = tiny_config();
  c.moe_intermediate_size = 128;  // gate/up boundary on a 128-row block
  const TensorMap off = tiny_official(c, TinyFormat::Fp8, 9);
  auto mw = write_and_load(to_transformers(off, c), c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  expect_matches_official(*mw, off);
  const Weight& w3 = mw->layers[1].ffn.experts[1].w3;
  EXPECT_EQ(w3.quant, Quant::Fp8Block128);
  EXPECT_EQ(w3.scale_shape, (Shape{1, 2}));
}

TEST(Binder, ShardedOfficialWithIndex) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c, TinyFormat::Fp8Mxfp4, 11);
  auto mw = write_and_load(off, c, StLayout::Indexed);
  ASSERT_TRUE(mw.ok()) << mw.message();
  EXPECT_EQ(expect_matches_official(*mw, off), off.size());
  EXPECT_EQ(std::dynamic_pointer_cast<Checkpoint>(mw->storage)->n_files(), 4u);
}

TEST(Binder, TransformersSeveralFilesWithoutIndex) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c);
  auto mw = write_and_load(to_transformers(off, c), c, StLayout::MultiNoIndex);
  ASSERT_TRUE(mw.ok()) << mw.message();
  expect_matches_official(*mw, off);
}

TEST(Binder, MtpTensorsIgnoredWhenConfigHasNoMtp) {
  auto c = tiny_config();
  const TensorMap off = tiny_official(c);  // has mtp.0.*
  c.num_nextn_predict_layers = 0;
  c.compress_ratios = {4, 128};
  auto mw = write_and_load(off, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  EXPECT_TRUE(mw->mtp.empty());
}

TEST(Binder, CheckpointWithoutMtpLeavesMtpEmpty) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  std::erase_if(off, [](const auto& kv) { return kv.first.rfind("mtp.", 0) == 0; });
  auto mw = write_and_load(off, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  EXPECT_TRUE(mw->mtp.empty());
}

TEST(Binder, HashLayerMayCarryBias) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  off["layers.0.ffn.gate.bias"] = off.at("layers.1.ffn.gate.bias");
  off["layers.0.ffn.gate.bias"].name = "layers.0.ffn.gate.bias";
  auto mw = write_and_load(off, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  EXPECT_TRUE(mw->layers[0].ffn.gate_bias.present());
  EXPECT_TRUE(mw->layers[0].ffn.tid2eid.present());
}

TEST(Binder, Tid2eidAsI32) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  StTensor& t = off.at("layers.0.ffn.gate.tid2eid");
  std::vector<uint8_t> b;
  for (size_t i = 0; i < t.bytes.size(); i += 8) b.insert(b.end(), t.bytes.begin() + i, t.bytes.begin() + i + 4);
  t.bytes = b;
  t.dtype = "I32";
  auto mw = write_and_load(off, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  EXPECT_EQ(mw->layers[0].ffn.tid2eid.dtype, DType::I32);
}

TEST(Binder, TransformersNameVariants) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c);
  TensorMap hf = to_transformers(off, c);
  auto rename = [&](const std::string& from, const std::string& to) {
    auto node = hf.extract(from);
    ASSERT_FALSE(node.empty()) << from;
    node.key() = to;
    node.mapped().name = to;
    hf.insert(std::move(node));
  };
  rename("model.layers.0.self_attn.compressor.indexer.scorer.weights_proj.weight",
         "model.layers.0.self_attn.compressor.indexer.weights_proj.weight");
  rename("model.layers.1.attn_hc.fn", "model.layers.1.attn_hc.hc_fn");
  rename("model.hc_head.hc_base", "model.hc_head.base");
  rename("model.layers.0.mlp.experts.down_proj", "model.layers.0.mlp.experts.down_proj.weight");
  auto mw = write_and_load(hf, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  expect_matches_official(*mw, off);
}

TEST(Binder, TransformersUnfusedPerExpertNames) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c);
  TensorMap hf = to_transformers(off, c);
  for (int il = 0; il < 2; ++il) {
    const std::string p = "model.layers." + std::to_string(il) + ".mlp.experts.";
    hf.erase(p + "gate_up_proj");
    hf.erase(p + "down_proj");
    for (int e = 0; e < 4; ++e)
      for (auto [w, proj] : {std::pair{"w1", "gate_proj"}, {"w2", "down_proj"}, {"w3", "up_proj"}}) {
        StTensor t = off.at("layers." + std::to_string(il) + ".ffn.experts." + std::to_string(e) + "." + w + ".weight");
        t.name = p + std::to_string(e) + "." + proj + ".weight";
        hf[t.name] = t;
      }
  }
  auto mw = write_and_load(hf, c);
  ASSERT_TRUE(mw.ok()) << mw.message();
  expect_matches_official(*mw, off);
}

}  // namespace
}  // namespace dsv4::weights
