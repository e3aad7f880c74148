// Layer schedule, parameter count and KV-cache sizes of a ModelConfig (see config_summary.h). The parameter
// count sums the tensor shapes of spec §7.3 (a layer's tensors depend on its compress ratio and on whether it
// is hash-routed); the KV sizes follow the row layouts of spec §9.2.
#include "model/config_summary.h"

#include <cstdio>
#include <sstream>

#include "core/row_blocks.h"

namespace dsv4::model {
namespace {

std::string join_ids(const std::vector<int64_t>& ids) {
  // An equally spaced run of >= 4 ids starting at the current id prints as "a, b, ..., z"; others one by one.
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  size_t i = 0;
  while (i < ids.size()) {
    size_t j = i + 1;
    while (j + 1 < ids.size() && ids[j + 1] - ids[j] == ids[i + 1] - ids[i]) ++j;
    if (j < ids.size() && j - i >= 3) {
      add(std::to_string(ids[i]) + ", " + std::to_string(ids[i + 1]) + ", ..., " + std::to_string(ids[j]));
      i = j + 1;
    } else {
      add(std::to_string(ids[i]));
      ++i;
    }
  }
  return out.empty() ? "none" : out;
}

std::string billions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fB", double(n) / 1e9);
  return buf;
}

// mHC parameters of one sublayer: fn [(2+hc)*hc, hc*D], base [(2+hc)*hc], scale [3].
int64_t hc_params(const ModelConfig& c) {
  const int64_t mix = (2 + c.hc_mult) * c.hc_mult;
  return mix * c.hc_mult * c.hidden_size + mix + 3;
}

// Compressor (spec §5.7) of output width `dim`: wkv, wgate [coff*dim, D], ape [m, coff*dim], norm [dim].
int64_t compressor_params(const ModelConfig& c, int64_t m, int64_t dim) {
  const int64_t coff = m == 4 ? 2 : 1;
  return 2 * coff * dim * c.hidden_size + m * coff * dim + dim;
}

int64_t attention_params(const ModelConfig& c, int64_t m) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, d = c.head_dim, ql = c.q_lora_rank;
  const int64_t GR = c.o_groups * c.o_lora_rank;
  int64_t n = H                            // attn_sink
              + ql * D + ql + H * d * ql   // wq_a, q_norm, wq_b
              + d * D + d                  // wkv, kv_norm
              + GR * (H * d / c.o_groups)  // wo_a
              + D * GR;                    // wo_b
  if (m > 0) n += compressor_params(c, m, d);
  if (m == 4) {
    const int64_t ihd = c.index_head_dim, ih = c.index_n_heads;
    n += ih * ihd * ql + ih * D + compressor_params(c, 4, ihd);  // indexer wq_b, weights_proj, compressor
  }
  return n;
}

int64_t expert_params(const ModelConfig& c) { return 3 * c.moe_intermediate_size * c.hidden_size; }

int64_t block_params(const ModelConfig& c, int64_t m, bool hash) {
  const int64_t D = c.hidden_size, E = c.n_routed_experts;
  int64_t n = 2 * hc_params(c) + 2 * D;  // hc_attn_*, hc_ffn_*, attn_norm, ffn_norm
  n += attention_params(c, m);
  n += E * D + (hash ? 0 : E);  // gate weight, gate bias (non-hash layers)
  n += (E + c.n_shared_experts) * expert_params(c);
  return n;
}

// Fixed compressor state of one layer with ratio m, reference layout: f32 kv_state + score_state.
int64_t compressor_state_bytes(const ModelConfig& c, int64_t m) {
  if (m == 0) return 0;
  const int64_t coff = m == 4 ? 2 : 1;
  int64_t n = 2 * (coff * m) * (coff * c.head_dim) * 4;
  if (m == 4) n += 2 * (coff * m) * (coff * c.index_head_dim) * 4;
  return n;
}

}  // namespace

LayerKind layer_kind(const ModelConfig& cfg, int64_t il) {
  const int64_t m = cfg.compress_ratio(il);
  return m == 0 ? LayerKind::Swa : m == 4 ? LayerKind::Csa : LayerKind::Hca;
}

std::string_view to_string(LayerKind k) {
  switch (k) {
    case LayerKind::Swa: return "SWA";
    case LayerKind::Csa: return "CSA";
    case LayerKind::Hca: return "HCA";
  }
  return "?";
}

LayerCounts count_layers(const ModelConfig& cfg) {
  LayerCounts n;
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il) {
    switch (layer_kind(cfg, il)) {
      case LayerKind::Swa: ++n.n_swa; break;
      case LayerKind::Csa: ++n.n_csa; break;
      case LayerKind::Hca: ++n.n_hca; break;
    }
  }
  n.n_mtp = cfg.num_nextn_predict_layers;
  n.n_hash = cfg.num_hash_layers;
  return n;
}

std::string layer_schedule(const ModelConfig& cfg) {
  std::vector<int64_t> ids[3], hash, mtp;
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il) {
    ids[static_cast<int>(layer_kind(cfg, il))].push_back(il);
    if (cfg.is_hash_layer(il)) hash.push_back(il);
  }
  for (int64_t il = cfg.num_hidden_layers; il < cfg.n_layers_total(); ++il) mtp.push_back(il);
  std::ostringstream s;
  s << "layers: " << cfg.num_hidden_layers << " main + " << cfg.num_nextn_predict_layers << " MTP\n";
  const char* names[3] = {"SWA (m=0)  ", "CSA (m=4)  ", "HCA (m=128)"};
  for (int k = 0; k < 3; ++k) s << "  " << names[k] << " " << ids[k].size() << " layers: " << join_ids(ids[k]) << "\n";
  s << "  MTP         " << mtp.size() << " layers: " << join_ids(mtp);
  if (!mtp.empty()) s << " (sliding window only)";
  s << "\n  hash-routed MoE " << hash.size() << " layers: " << join_ids(hash) << "\n  per layer:";
  for (int64_t il = 0; il < cfg.n_layers_total(); ++il) {
    s << (il % 16 == 0 ? "\n   " : "") << " " << il << ":" << to_string(layer_kind(cfg, il))
      << (cfg.is_hash_layer(il) ? "#" : "") << (il >= cfg.num_hidden_layers ? "(MTP)" : "");
  }
  s << "\n";
  return s.str();
}

ParamCount count_parameters(const ModelConfig& cfg) {
  const int64_t D = cfg.hidden_size, hc = cfg.hc_mult;
  const int64_t hc_head = hc * hc * D + hc + 1;  // hc_head_fn [hc, hc*D], _base [hc], _scale [1]
  ParamCount p;
  p.embed_head = 2 * cfg.vocab_size * D;
  p.main = D + hc_head;  // final norm + hc_head
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il)
    p.main += block_params(cfg, cfg.compress_ratio(il), cfg.is_hash_layer(il));
  p.routed_main = cfg.num_hidden_layers * cfg.n_routed_experts * expert_params(cfg);
  for (int64_t il = cfg.num_hidden_layers; il < cfg.n_layers_total(); ++il) {
    // MTP: a non-hash block plus e_proj, h_proj [D, D], enorm, hnorm, norm [D] and its own hc_head.
    p.mtp += block_params(cfg, cfg.compress_ratio(il), false) + 2 * D * D + 3 * D + hc_head;
  }
  const int64_t routed_active = cfg.num_hidden_layers * cfg.num_experts_per_tok * expert_params(cfg);
  p.active = p.main - p.routed_main + routed_active + p.embed_head;
  return p;
}

std::string_view to_string(KvRowFormat f) {
  switch (f) {
    case KvRowFormat::F32: return "f32";
    case KvRowFormat::Bf16: return "bf16";
    case KvRowFormat::Fp8: return "fp8";
  }
  return "?";
}

std::string_view to_string(IndexerRowFormat f) {
  switch (f) {
    case IndexerRowFormat::F32: return "f32";
    case IndexerRowFormat::Bf16: return "bf16";
    case IndexerRowFormat::Fp8: return "fp8";
    case IndexerRowFormat::Fp4: return "fp4";
  }
  return "?";
}

int64_t kv_row_bytes(const ModelConfig& cfg, KvRowFormat f) {
  const int64_t d = cfg.head_dim, rope = cfg.qk_rope_head_dim;
  switch (f) {
    case KvRowFormat::F32: return 4 * d;
    case KvRowFormat::Bf16: return 2 * d;
    case KvRowFormat::Fp8: return fp8kv_row_bytes(d, rope);  // e4m3 nope, bf16 rope, e8m0 per 64, 8 B aligned
  }
  return 0;
}

int64_t indexer_row_bytes(const ModelConfig& cfg, IndexerRowFormat f) {
  const int64_t ihd = cfg.index_head_dim;
  switch (f) {
    case IndexerRowFormat::F32: return 4 * ihd;
    case IndexerRowFormat::Bf16: return 2 * ihd;
    case IndexerRowFormat::Fp8: return ihd + 4;
    case IndexerRowFormat::Fp4: return ihd / 2 + (ihd + 31) / 32;
  }
  return 0;
}

KvCacheBytes kv_cache_bytes(const ModelConfig& cfg, KvRowFormat kv, IndexerRowFormat indexer) {
  KvCacheBytes b;
  b.kv = kv;
  b.indexer = indexer;
  b.kv_row = kv_row_bytes(cfg, kv);
  b.indexer_row = indexer_row_bytes(cfg, indexer);
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il) {
    const int64_t m = cfg.compress_ratio(il);
    if (m > 0) b.per_token += double(b.kv_row) / double(m);
    if (m == 4) b.per_token += double(b.indexer_row) / double(m);
  }
  for (int64_t il = 0; il < cfg.n_layers_total(); ++il)
    b.compressor_state_bytes += compressor_state_bytes(cfg, cfg.compress_ratio(il));
  b.per_mtokens = b.per_token * double(1 << 20);
  b.window_bytes = cfg.n_layers_total() * cfg.sliding_window * b.kv_row;
  return b;
}

std::vector<KvCacheBytes> kv_cache_table(const ModelConfig& cfg) {
  std::vector<KvCacheBytes> rows;
  for (auto kv : {KvRowFormat::F32, KvRowFormat::Bf16, KvRowFormat::Fp8})
    for (auto ix : {IndexerRowFormat::F32, IndexerRowFormat::Bf16, IndexerRowFormat::Fp8, IndexerRowFormat::Fp4})
      rows.push_back(kv_cache_bytes(cfg, kv, ix));
  return rows;
}

std::string format_summary(const ModelConfig& c) {
  std::ostringstream s;
  s << "DeepSeek-V4 config (" << c.source_schema << " schema)\n"
    << "  vocab " << c.vocab_size << ", hidden " << c.hidden_size << ", layers " << c.num_hidden_layers << " + "
    << c.num_nextn_predict_layers << " MTP\n"
    << "  attention: " << c.num_attention_heads << " heads x " << c.head_dim << " (RoPE on last " << c.qk_rope_head_dim
    << "), q_lora " << c.q_lora_rank << ", o_groups " << c.o_groups << " x o_lora " << c.o_lora_rank << ", window "
    << c.sliding_window << "\n"
    << "  indexer: " << c.index_n_heads << " heads x " << c.index_head_dim << ", top-k " << c.index_topk << "\n"
    << "  MoE: " << c.n_routed_experts << " routed + " << c.n_shared_experts << " shared, top-" << c.num_experts_per_tok
    << ", width " << c.moe_intermediate_size << ", scale " << c.routed_scaling_factor << ", swiglu_limit "
    << c.swiglu_limit << ", hash layers " << c.num_hash_layers << "\n"
    << "  mHC: " << c.hc_mult << " streams, " << c.hc_sinkhorn_iters << " Sinkhorn iters, eps " << c.hc_eps
    << "; rms_norm_eps " << c.rms_norm_eps << "\n"
    << "  RoPE: theta " << c.rope_theta << " (m=0), " << c.compress_rope_theta << " (m>0)";
  if (c.rope_scaling.enabled) {
    s << " with YaRN factor " << c.rope_scaling.factor << ", original " << c.rope_scaling.original_max_position
      << ", beta " << c.rope_scaling.beta_fast << "/" << c.rope_scaling.beta_slow;
  }
  s << "; max positions " << c.max_position_embeddings << "\n"
    << "  weights: " << (c.fp8_weights ? "FP8 e4m3, 128x128 ue8m0 scales" : "no quantization_config")
    << (c.fp4_experts ? "; routed experts MXFP4" : "") << "\n  tokens: bos " << c.bos_token_id << ", eos";
  for (int64_t id : c.eos_token_ids) s << " " << id;
  s << "\n\n" << layer_schedule(c);

  const ParamCount p = count_parameters(c);
  s << "\nparameters: main " << billions(p.main) << " + embed/head " << billions(p.embed_head) << " = "
    << billions(p.main + p.embed_head) << "; MTP " << billions(p.mtp) << "; total " << billions(p.total())
    << "; active per token " << billions(p.active) << "\n";

  s << "\nKV cache (growing bytes per token of context; fixed bytes per sequence):\n";
  char line[200];
  std::snprintf(line, sizeof line, "  %-5s %-7s %8s %8s %12s %12s %12s %14s\n", "kv", "indexer", "kv row", "idx row",
                "B/token", "GiB/2^20 tok", "window MiB", "compressor MiB");
  s << line;
  for (const KvCacheBytes& b : kv_cache_table(c)) {
    std::snprintf(line, sizeof line, "  %-5s %-7s %8lld %8lld %12.2f %12.3f %12.2f %14.2f\n",
                  std::string(to_string(b.kv)).c_str(), std::string(to_string(b.indexer)).c_str(),
                  static_cast<long long>(b.kv_row), static_cast<long long>(b.indexer_row), b.per_token,
                  b.per_mtokens / double(1 << 30), double(b.window_bytes) / double(1 << 20),
                  double(b.compressor_state_bytes) / double(1 << 20));
    s << line;
  }
  return s.str();
}

}  // namespace dsv4::model
