// Figures derived from a validated ModelConfig, for `dsv4 inspect` and for sizing decisions: the layer
// schedule (spec §1.4), the parameter count from the tensor shapes of spec §7.3, and the KV-cache bytes of
// spec §9.2 for every storage format of the main KV rows and the indexer keys. Pure functions of the config;
// they assume the config passed parse_config's validation.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace dsv4::model {

// ---- layer schedule (spec §1.4) ----

enum class LayerKind : uint8_t {
  Swa,  // compress_ratio 0: sliding window only
  Csa,  // compress_ratio 4: compressor + lightning indexer, top-k of the compressed entries
  Hca,  // compress_ratio 128: compressor, all compressed entries attended
};
LayerKind layer_kind(const ModelConfig& cfg, int64_t il);  // il in [0, n_layers_total())
std::string_view to_string(LayerKind k);                   // "SWA", "CSA", "HCA"

struct LayerCounts {
  int64_t n_swa = 0;   // main layers with ratio 0
  int64_t n_csa = 0;   // main layers with ratio 4
  int64_t n_hca = 0;   // main layers with ratio 128
  int64_t n_mtp = 0;   // MTP layers (always SWA)
  int64_t n_hash = 0;  // main layers routed by tid2eid
};
LayerCounts count_layers(const ModelConfig& cfg);

// Multi-line text: counts and layer lists per kind, the MTP layers, the hash-routed layers, and one line
// with the kind of every layer ("0:SWA# 1:SWA# 2:CSA# 3:HCA ...", '#' marks hash routing).
std::string layer_schedule(const ModelConfig& cfg);

// ---- parameter count (spec §7.3 shapes; FP8/FP4 scale tensors and the tid2eid table not counted) ----

struct ParamCount {
  int64_t main = 0;         // main blocks + final norm + hc_head (embed and head excluded)
  int64_t embed_head = 0;   // embed.weight + head.weight
  int64_t mtp = 0;          // MTP blocks (they share embed and head)
  int64_t routed_main = 0;  // routed-expert weights of the main blocks (part of `main`)
  int64_t active = 0;       // used per token by the main model: main - routed + routed * k / E, + embed_head
  int64_t total() const { return main + embed_head + mtp; }
};
ParamCount count_parameters(const ModelConfig& cfg);

// ---- KV cache bytes (spec §9.2) ----

// Storage of a main KV row (head_dim values: no-RoPE dims then RoPE dims).
enum class KvRowFormat : uint8_t {
  F32,   // 4 * head_dim
  Bf16,  // 2 * head_dim (the reference's buffers)
  Fp8,   // Fp8Kv (core/row_blocks.h): nope e4m3 + rope bf16 + e8m0 per 64 nope dims, 8 B aligned (584 B at 512/64)
};
// Storage of an indexer key row (index_head_dim values).
enum class IndexerRowFormat : uint8_t {
  F32,   // 4 * ihd
  Bf16,  // 2 * ihd
  Fp8,   // ihd e4m3 + one f32 scale (132 B for 128)
  Fp4,   // ihd/2 B of e2m1 pairs + one e8m0 scale per 32 (68 B for 128)
};
std::string_view to_string(KvRowFormat f);
std::string_view to_string(IndexerRowFormat f);
int64_t kv_row_bytes(const ModelConfig& cfg, KvRowFormat f);
int64_t indexer_row_bytes(const ModelConfig& cfg, IndexerRowFormat f);

struct KvCacheBytes {
  KvRowFormat kv = KvRowFormat::Bf16;
  IndexerRowFormat indexer = IndexerRowFormat::Bf16;
  int64_t kv_row = 0;       // bytes of one main KV row
  int64_t indexer_row = 0;  // bytes of one indexer key row
  // Growing state per token of context: Σ_main layers with m > 0 of kv_row / m, + indexer_row / 4 for CSA.
  double per_token = 0;
  double per_mtokens = 0;  // per 2^20 tokens
  // Fixed state per sequence: window rings of every layer incl. MTP (n_layers_total * sliding_window * kv_row:
  // the deployment layout of spec §9.2 with window rows in the same format; the engine's store keeps f32 window
  // rows whatever the compressed format, see runtime::cache_shape)
  int64_t window_bytes = 0;
  // and the compressor state in the reference's f32 layout (kv_state + score_state [coff*m, coff*dim]).
  int64_t compressor_state_bytes = 0;
};
KvCacheBytes kv_cache_bytes(const ModelConfig& cfg, KvRowFormat kv, IndexerRowFormat indexer);
// All 12 combinations, kv format major.
std::vector<KvCacheBytes> kv_cache_table(const ModelConfig& cfg);

// The text `dsv4 inspect` prints: config summary, layer schedule, parameter count and the KV table.
std::string format_summary(const ModelConfig& cfg);

}  // namespace dsv4::model
