// Every way a checkpoint can disagree with its config is rejected with a message naming the tensor and the
// file or directory, plus the expected and actual shape / dtype where that applies.
#include <gtest/gtest.h>

#include <filesystem>

#include "weights_visit.h"

namespace dsv4::weights {
namespace {

using namespace dsv4::testing;

// Loads `m` expecting failure; returns the message.
std::string load_error(const TensorMap& m, const model::ModelConfig& c, std::filesystem::path* dir = nullptr,
                       StLayout layout = StLayout::Single) {
  auto r = write_and_load(m, c, layout, dir);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.message();
}

void set_ids(StTensor& t, int64_t row, std::vector<int64_t> ids) {
  std::memcpy(t.bytes.data() + row * 8 * static_cast<int64_t>(ids.size()), ids.data(), ids.size() * 8);
}

TEST(BinderErrors, MissingTensor) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  off.erase("layers.1.attn.wkv.weight");
  off.erase("layers.1.attn.wkv.scale");
  std::filesystem::path dir;
  const std::string msg = load_error(off, c, &dir);
  EXPECT_TRUE(contains(msg, "missing tensor 'layers.1.attn.wkv.weight'"));
  EXPECT_TRUE(contains(msg, dir.string()));
}

TEST(BinderErrors, MissingTensorTransformersNamesDiskName) {
  const auto c = tiny_config();
  TensorMap hf = to_transformers(tiny_official(c), c);
  hf.erase("model.layers.0.self_attn.compressor.indexer.position_bias");
  const std::string msg = load_error(hf, c);
  EXPECT_TRUE(contains(msg, "missing tensor 'model.layers.0.self_attn.compressor.indexer.position_bias'"));
  EXPECT_TRUE(contains(msg, "layers.0.attn.indexer.compressor.ape"));
}

TEST(BinderErrors, MissingFusedExperts) {
  const auto c = tiny_config();
  TensorMap hf = to_transformers(tiny_official(c), c);
  hf.erase("model.layers.1.mlp.experts.down_proj");
  EXPECT_TRUE(contains(load_error(hf, c), "missing tensor 'model.layers.1.mlp.experts.down_proj'"));
}

TEST(BinderErrors, UnexpectedTensor) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  off["layers.0.attn.bogus.weight"] = StTensor{"layers.0.attn.bogus.weight", "BF16", {2}, {0, 0, 0, 0}};
  std::filesystem::path dir;
  const std::string msg = load_error(off, c, &dir);
  EXPECT_TRUE(contains(msg, "unexpected tensor 'layers.0.attn.bogus.weight'"));
  EXPECT_TRUE(contains(msg, (dir / "model.safetensors").string()));
}

TEST(BinderErrors, UnexpectedExtraMtpLayerAndHashTableOnNonHashLayer) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  off["mtp.1.enorm.weight"] = StTensor{"mtp.1.enorm.weight", "BF16", {1}, {0, 0}};
  EXPECT_TRUE(contains(load_error(off, c), "unexpected tensor 'mtp.1.enorm.weight'"));
  TensorMap off2 = tiny_official(c);
  off2["layers.1.ffn.gate.tid2eid"] = off2.at("layers.0.ffn.gate.tid2eid");
  off2["layers.1.ffn.gate.tid2eid"].name = "layers.1.ffn.gate.tid2eid";
  EXPECT_TRUE(contains(load_error(off2, c), "unexpected tensor 'layers.1.ffn.gate.tid2eid'"));
}

TEST(BinderErrors, MisshapenTensor) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  std::mt19937_64 rng(1);
  off["layers.0.attn.q_norm.weight"] = st_random("layers.0.attn.q_norm.weight", "BF16", {127}, rng);
  const std::string msg = load_error(off, c);
  EXPECT_TRUE(contains(msg, "tensor 'layers.0.attn.q_norm.weight' in "));
  EXPECT_TRUE(contains(msg, "shape [127] but the config implies [128]"));
}

TEST(BinderErrors, MisshapenPackedMxfp4) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c, TinyFormat::Fp8Mxfp4);
  std::mt19937_64 rng(1);
  const std::string n = "layers.1.ffn.experts.0.w2.weight";
  off[n] = st_random(n, "I8", {256, 64}, rng);  // unpacked size stored as bytes
  const std::string msg = load_error(off, c);
  EXPECT_TRUE(contains(msg, n));
  EXPECT_TRUE(contains(msg, "shape [256, 64] but the config implies [256, 32]"));
}

TEST(BinderErrors, WrongDtype) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  StTensor& sink = off.at("layers.1.attn.attn_sink");
  sink.dtype = "I32";
  std::string msg = load_error(off, c);
  EXPECT_TRUE(contains(msg, "tensor 'layers.1.attn.attn_sink'"));
  EXPECT_TRUE(contains(msg, "dtype I32 is not allowed here; expected one of {F32, BF16}"));

  TensorMap off2 = tiny_official(c);
  StTensor& emb = off2.at("embed.weight");
  emb.dtype = "F8_E4M3";
  emb.bytes.resize(emb.bytes.size() / 2);
  EXPECT_TRUE(contains(load_error(off2, c), "'embed.weight' in"));

  TensorMap off3 = tiny_official(c, TinyFormat::Fp8Mxfp4);
  StTensor& sh = off3.at("layers.0.ffn.shared_experts.w1.weight");
  sh.dtype = "I8";  // MXFP4 is for routed experts only
  EXPECT_TRUE(contains(load_error(off3, c), "dtype I8 is not allowed here"));
}

TEST(BinderErrors, MissingScale) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c, TinyFormat::Fp8Mxfp4);
  off.erase("layers.1.attn.wo_b.scale");
  const std::string msg = load_error(off, c);
  EXPECT_TRUE(contains(msg, "tensor 'layers.1.attn.wo_b.weight'"));
  EXPECT_TRUE(contains(msg, "needs its block scale 'layers.1.attn.wo_b.scale', which is missing"));

  TensorMap hf = to_transformers(tiny_official(c, TinyFormat::Fp8Mxfp4), c);
  hf.erase("model.layers.0.mlp.experts.gate_up_proj_scale_inv");
  EXPECT_TRUE(contains(load_error(hf, c), "'model.layers.0.mlp.experts.gate_up_proj_scale_inv', which is missing"));
}

TEST(BinderErrors, MisshapenOrMistypedScale) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c, TinyFormat::Fp8Mxfp4);
  std::mt19937_64 rng(2);
  off["layers.0.attn.wq_a.scale"] = st_random("layers.0.attn.wq_a.scale", "F8_E8M0", {2, 2}, rng);
  std::string msg = load_error(off, c);
  EXPECT_TRUE(contains(msg, "tensor 'layers.0.attn.wq_a.scale'"));
  EXPECT_TRUE(contains(msg, "scale shape [2, 2] but weight 'layers.0.attn.wq_a.weight' [128, 256] needs [1, 2]"));

  TensorMap off2 = tiny_official(c, TinyFormat::Fp8Mxfp4);
  off2["layers.0.ffn.experts.0.w1.scale"] = st_random("layers.0.ffn.experts.0.w1.scale", "F32", {64, 8}, rng);
  EXPECT_TRUE(contains(load_error(off2, c), "scale dtype F32 is not allowed; expected {F8_E8M0}"));
}

TEST(BinderErrors, FusedFp8ExpertsNeedBlockAlignedSplit) {
  const auto c = tiny_config();  // moe_intermediate_size 64: gate and up share one 128-row scale block
  TensorMap hf = to_transformers(tiny_official(c, TinyFormat::Fp8), c);
  const std::string msg = load_error(hf, c);
  EXPECT_TRUE(contains(msg, "model.layers.0.mlp.experts.gate_up_proj"));
  EXPECT_TRUE(contains(msg, "128-row scale block"));
}

TEST(BinderErrors, Tid2eidDuplicateInRow) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  set_ids(off.at("layers.0.ffn.gate.tid2eid"), 5, {1, 1});
  const std::string msg = load_error(off, c);
  EXPECT_TRUE(contains(msg, "tensor 'layers.0.ffn.gate.tid2eid'"));
  EXPECT_TRUE(contains(msg, "row 5 (token id 5) names expert 1 twice"));
}

TEST(BinderErrors, Tid2eidOutOfRange) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  set_ids(off.at("layers.0.ffn.gate.tid2eid"), 9, {0, 4});
  EXPECT_TRUE(contains(load_error(off, c), "row 9 (token id 9) holds expert id 4 outside [0, 4)"));
  set_ids(off.at("layers.0.ffn.gate.tid2eid"), 9, {-1, 2});
  EXPECT_TRUE(contains(load_error(off, c), "row 9 (token id 9) holds expert id -1 outside"));
}

TEST(BinderErrors, NonHashLayerNeedsBias) {
  const auto c = tiny_config();
  TensorMap off = tiny_official(c);
  off.erase("layers.1.ffn.gate.bias");
  EXPECT_TRUE(contains(load_error(off, c), "missing tensor 'layers.1.ffn.gate.bias'"));
}

TEST(BinderErrors, MixedNaming) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c);
  TensorMap hf = to_transformers(off, c);
  hf["embed.weight"] = off.at("embed.weight");
  const std::string msg = load_error(hf, c);
  EXPECT_TRUE(contains(msg, "mix the official scheme (e.g. 'embed.weight')"));
}

TEST(BinderErrors, TruncatedFileNamesFileAndTensor) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c);
  auto dir = fresh_dir();
  write_checkpoint(dir, as_list(off), StLayout::Single);
  const auto file = dir / "model.safetensors";
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 100);
  auto r = load_weights(dir, c);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.message(), file.string()));
  EXPECT_TRUE(contains(r.message(), "tensor '" + off.rbegin()->first + "'"));  // laid out last
  EXPECT_TRUE(contains(r.message(), "truncated"));
}

TEST(BinderErrors, CorruptHeaderAndMissingShardThroughLoader) {
  const auto c = tiny_config();
  const TensorMap off = tiny_official(c);
  auto dir = fresh_dir();
  write_checkpoint(dir, as_list(off), StLayout::Indexed, 4);
  std::filesystem::remove(dir / shard_name(2, 4));
  auto r = load_weights(dir, c);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.message(), shard_name(2, 4) + " is missing"));

  auto dir2 = fresh_dir("_b");
  write_bytes(dir2 / "model.safetensors", {4, 0, 0, 0, 0, 0, 0, 0, '{', '"', 'a', ':'});
  auto r2 = load_weights(dir2, c);
  ASSERT_FALSE(r2.ok());
  EXPECT_TRUE(contains(r2.message(), "model.safetensors: header is not valid JSON at byte"));
}

TEST(BinderErrors, InconsistentConfig) {
  auto c = tiny_config();
  c.compress_ratios = {4, 128};  // MTP entry missing
  EXPECT_TRUE(contains(load_error(tiny_official(tiny_config()), c), "compress_ratios has 2 entries"));
}

}  // namespace
}  // namespace dsv4::weights
