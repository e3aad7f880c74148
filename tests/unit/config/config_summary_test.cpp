// Layer schedule, parameter count and KV-cache sizes of the released configs against the spec's own figures:
// §1.4 (schedule, parameter totals: Flash 284.3B + 6.6B MTP, ~13.8B active; Pro 1573B + 25.8B MTP, ~49.8B
// active) and §9.2 (Flash 6,880 / 3,850 / 3,514 B per token, row sizes 584 / 132 / 68 B, fixed state; Pro
// 30 x 179 + 31 x 4.56 = 5,511 B per token).
#include "model/config_summary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "model/config.h"

namespace dsv4::model {
namespace {

ModelConfig load(const char* name) {
  std::ifstream in(std::string(DSV4_TEST_DATA) + "/configs/" + name);
  std::ostringstream s;
  s << in.rdbuf();
  auto r = parse_config(s.str(), name);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
  return r.ok() ? r.value() : ModelConfig{};
}

const ModelConfig& flash() {
  static const ModelConfig c = load("flash_config.json");
  return c;
}
const ModelConfig& pro() {
  static const ModelConfig c = load("pro_config.json");
  return c;
}

constexpr double kB = 1e9;
constexpr double kMiB = 1024.0 * 1024.0;

// ---- schedule (§1.4) ----

TEST(ConfigSummary, FlashLayerCounts) {
  LayerCounts n = count_layers(flash());
  EXPECT_EQ(n.n_swa, 2);
  EXPECT_EQ(n.n_csa, 21);
  EXPECT_EQ(n.n_hca, 20);
  EXPECT_EQ(n.n_mtp, 1);
  EXPECT_EQ(n.n_hash, 3);
  EXPECT_EQ(layer_kind(flash(), 42), LayerKind::Csa);
  EXPECT_EQ(layer_kind(flash(), 43), LayerKind::Swa);
}

TEST(ConfigSummary, ProLayerCounts) {
  LayerCounts n = count_layers(pro());
  EXPECT_EQ(n.n_swa, 0);
  EXPECT_EQ(n.n_csa, 30);
  EXPECT_EQ(n.n_hca, 31);
  EXPECT_EQ(n.n_mtp, 1);
  EXPECT_EQ(layer_kind(pro(), 0), LayerKind::Hca);
  EXPECT_EQ(layer_kind(pro(), 1), LayerKind::Hca);
}

TEST(ConfigSummary, FlashScheduleText) {
  const std::string s = layer_schedule(flash());
  EXPECT_NE(s.find("SWA (m=0)   2 layers: 0, 1\n"), std::string::npos) << s;
  EXPECT_NE(s.find("CSA (m=4)   21 layers: 2, 4, ..., 42\n"), std::string::npos) << s;
  EXPECT_NE(s.find("HCA (m=128) 20 layers: 3, 5, ..., 41\n"), std::string::npos) << s;
  EXPECT_NE(s.find("MTP         1 layers: 43"), std::string::npos) << s;
  EXPECT_NE(s.find("hash-routed MoE 3 layers: 0, 1, 2\n"), std::string::npos) << s;
  EXPECT_NE(s.find(" 42:CSA "), std::string::npos) << s;
  EXPECT_NE(s.find(" 43:SWA(MTP)"), std::string::npos) << s;
}

TEST(ConfigSummary, ProScheduleText) {
  const std::string s = layer_schedule(pro());
  EXPECT_NE(s.find("SWA (m=0)   0 layers: none\n"), std::string::npos) << s;
  EXPECT_NE(s.find("CSA (m=4)   30 layers: 2, 4, ..., 60\n"), std::string::npos) << s;
  EXPECT_NE(s.find("HCA (m=128) 31 layers: 0, 1, 3, ..., 59\n"), std::string::npos) << s;
}

// ---- parameters (§1.4, §7.3) ----

TEST(ConfigSummary, FlashParameterCount) {
  ParamCount p = count_parameters(flash());
  EXPECT_EQ(p.embed_head, 2LL * 129280 * 4096);            // §7.3 embed + head
  EXPECT_EQ(p.routed_main, 43LL * 256 * 3 * 2048 * 4096);  // §7.3 experts w1, w2, w3
  EXPECT_NEAR(double(p.main) / kB, 283.3, 0.1);
  EXPECT_NEAR(double(p.main + p.embed_head) / kB, 284.3, 0.1);
  EXPECT_NEAR(double(p.mtp) / kB, 6.6, 0.1);
  EXPECT_NEAR(double(p.active) / kB, 13.8, 0.1);
  EXPECT_EQ(p.total(), p.main + p.embed_head + p.mtp);
}

TEST(ConfigSummary, ProParameterCount) {
  ParamCount p = count_parameters(pro());
  EXPECT_EQ(p.embed_head, 2LL * 129280 * 7168);
  EXPECT_NEAR(double(p.main + p.embed_head) / kB, 1573.0, 0.5);
  EXPECT_NEAR(double(p.mtp) / kB, 25.8, 0.1);
  EXPECT_NEAR(double(p.active) / kB, 49.8, 0.1);
}

// ---- KV cache (§9.2) ----

TEST(ConfigSummary, FlashRowBytes) {
  EXPECT_EQ(kv_row_bytes(flash(), KvRowFormat::Fp8), 584);  // 448 e4m3 + 128 B rope + 7 scales + 1 pad
  EXPECT_EQ(kv_row_bytes(flash(), KvRowFormat::Bf16), 1024);
  EXPECT_EQ(kv_row_bytes(flash(), KvRowFormat::F32), 2048);
  EXPECT_EQ(indexer_row_bytes(flash(), IndexerRowFormat::Fp8), 132);
  EXPECT_EQ(indexer_row_bytes(flash(), IndexerRowFormat::Fp4), 68);
  EXPECT_EQ(indexer_row_bytes(flash(), IndexerRowFormat::Bf16), 256);
  EXPECT_EQ(indexer_row_bytes(flash(), IndexerRowFormat::F32), 512);
}

TEST(ConfigSummary, FlashBytesPerTokenBf16) {
  KvCacheBytes b = kv_cache_bytes(flash(), KvRowFormat::Bf16, IndexerRowFormat::Bf16);
  EXPECT_EQ(b.per_token, 6880.0);                       // 21 x 320 + 20 x 8
  EXPECT_NEAR(b.per_mtokens / 1e9, 7.21, 0.005);        // 7.21 GB
  EXPECT_NEAR(b.per_mtokens / (1 << 30), 6.72, 0.005);  // 6.72 GiB
}

TEST(ConfigSummary, FlashBytesPerTokenFp8Fp8) {
  KvCacheBytes b = kv_cache_bytes(flash(), KvRowFormat::Fp8, IndexerRowFormat::Fp8);
  EXPECT_EQ(std::llround(b.per_token), 3850);  // 21 x 179 + 20 x 4.56
  EXPECT_NEAR(b.per_mtokens / 1e9, 4.04, 0.005);
  EXPECT_EQ((b.kv_row + b.indexer_row) / 4, 179);  // CSA per layer-token
}

TEST(ConfigSummary, FlashBytesPerTokenFp8Fp4) {
  KvCacheBytes b = kv_cache_bytes(flash(), KvRowFormat::Fp8, IndexerRowFormat::Fp4);
  EXPECT_EQ(std::llround(b.per_token), 3514);  // 21 x 163 + 20 x 4.56
  EXPECT_NEAR(b.per_mtokens / 1e9, 3.68, 0.005);
  EXPECT_NEAR(b.per_mtokens / (1 << 30), 3.43, 0.005);
}

TEST(ConfigSummary, FlashFixedPerSequenceState) {
  KvCacheBytes bf = kv_cache_bytes(flash(), KvRowFormat::Bf16, IndexerRowFormat::Bf16);
  EXPECT_EQ(bf.window_bytes, 44LL * 128 * 512 * 2);  // 5.5 MiB
  EXPECT_EQ(double(bf.window_bytes) / kMiB, 5.5);
  KvCacheBytes f8 = kv_cache_bytes(flash(), KvRowFormat::Fp8, IndexerRowFormat::Fp4);
  EXPECT_NEAR(double(f8.window_bytes) / kMiB, 3.1, 0.05);
  // 21 x (64 KiB + 16 KiB) + 20 x 512 KiB = 11.6 MiB, whatever the row formats.
  EXPECT_EQ(f8.compressor_state_bytes, 21LL * (64 + 16) * 1024 + 20LL * 512 * 1024);
  EXPECT_EQ(bf.compressor_state_bytes, f8.compressor_state_bytes);
  EXPECT_NEAR(double(f8.compressor_state_bytes) / kMiB, 11.6, 0.05);
}

TEST(ConfigSummary, ProBytesPerTokenFp8) {
  KvCacheBytes b = kv_cache_bytes(pro(), KvRowFormat::Fp8, IndexerRowFormat::Fp8);
  EXPECT_EQ(std::llround(b.per_token), 5511);  // 30 x 179 + 31 x 4.56
  EXPECT_NEAR(b.per_mtokens / 1e9, 5.8, 0.05);
}

TEST(ConfigSummary, KvTableHasAllCombinations) {
  auto rows = kv_cache_table(flash());
  ASSERT_EQ(rows.size(), 12u);
  int found = 0;
  for (const auto& r : rows) {
    if (r.kv == KvRowFormat::Fp8 && r.indexer == IndexerRowFormat::Fp4) {
      EXPECT_EQ(std::llround(r.per_token), 3514);
      ++found;
    }
  }
  EXPECT_EQ(found, 1);
}

TEST(ConfigSummary, FormatSummaryHasAllSections) {
  const std::string s = format_summary(flash());
  for (const char* part : {"hub schema", "layers: 43 main + 1 MTP", "CSA (m=4)   21 layers", "parameters: main", "MTP",
                           "active per token", "KV cache", "fp8   fp4", "bf16  bf16"})
    EXPECT_NE(s.find(part), std::string::npos) << "missing '" << part << "' in:\n" << s;
}

}  // namespace
}  // namespace dsv4::model
