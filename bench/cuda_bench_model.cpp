// BenchModel: Flash-shaped config and random checkpoint-format weights; see cuda_bench_model.h.
#include "cuda_bench_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "core/check.h"

namespace dsv4::bench {

using weights::Quant;
using weights::Weight;

namespace {

constexpr size_t kSlot = 64;                    // bytes between the start offsets of two weights of a pool
constexpr size_t kRandomBlock = 4ull << 20;     // random bytes generated per pool, then tiled
constexpr size_t kScaleBytes = 1ull << 20;      // constant e8m0 scale arrays (the largest needs 256 KiB)

// The e8m0 byte of 2^-e.
uint8_t e8m0_pow2_neg(int e) { return static_cast<uint8_t>(127 - e); }

int log2_sqrt(int64_t k) { return static_cast<int>(std::lround(0.5 * std::log2(static_cast<double>(k)))); }

}  // namespace

struct BenchModel::Pool {
  std::vector<uint8_t> bytes;
  size_t max_weight = 0;  // largest weight this pool serves
  size_t next = 0;        // next slot
  size_t slots = 0;
};

LayerMix flash_layer_mix() {
  // compress_ratios = [0,0] + [4,128]x20 + [4] + [0]; the final 0 is the MTP block (spec §1.4).
  std::vector<int64_t> r = {0, 0};
  for (int i = 0; i < 20; ++i) r.insert(r.end(), {4, 128});
  r.push_back(4);
  LayerMix m;
  for (int64_t x : r) (x == 0 ? m.swa : x == 4 ? m.csa : m.hca) += 1;
  return m;  // 2 SWA, 21 CSA, 20 HCA = 43 layers
}

const char* kind_name(int64_t ratio) { return ratio == 0 ? "swa" : ratio == 4 ? "csa" : "hca"; }

model::ModelConfig flash_config(std::span<const int64_t> ratios) {
  nlohmann::json j = {
      {"architectures", {"DeepseekV4ForCausalLM"}},
      {"model_type", "deepseek_v4"},
      {"vocab_size", 129280},
      {"hidden_size", 4096},
      {"num_hidden_layers", static_cast<int64_t>(ratios.size())},
      {"num_attention_heads", 64},
      {"num_key_value_heads", 1},
      {"head_dim", 512},
      {"qk_rope_head_dim", 64},
      {"q_lora_rank", 1024},
      {"o_lora_rank", 1024},
      {"o_groups", 8},
      {"sliding_window", 128},
      {"compress_ratios", std::vector<int64_t>(ratios.begin(), ratios.end())},
      {"compress_rope_theta", 160000.0},
      {"rope_theta", 10000.0},
      {"rope_scaling",
       {{"type", "yarn"}, {"factor", 16}, {"original_max_position_embeddings", 65536}, {"beta_fast", 32},
        {"beta_slow", 1}}},
      {"max_position_embeddings", 1048576},
      {"index_n_heads", 64},
      {"index_head_dim", 128},
      {"index_topk", 512},
      {"n_routed_experts", 256},
      {"n_shared_experts", 1},
      {"num_experts_per_tok", 6},
      {"moe_intermediate_size", 2048},
      {"routed_scaling_factor", 1.5},
      {"scoring_func", "sqrtsoftplus"},
      {"topk_method", "noaux_tc"},
      {"norm_topk_prob", true},
      {"num_hash_layers", 0},
      {"swiglu_limit", 10.0},
      {"hc_mult", 4},
      {"hc_sinkhorn_iters", 20},
      {"hc_eps", 1e-6},
      {"rms_norm_eps", 1e-6},
      {"num_nextn_predict_layers", 0},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", false},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
      {"quantization_config",
       {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"scale_fmt", "ue8m0"}, {"activation_scheme", "dynamic"},
        {"weight_block_size", {128, 128}}}},
      {"expert_dtype", "fp4"},
  };
  auto cfg = model::parse_config(j.dump(), "<cuda_bench: DeepSeek-V4-Flash shapes>");
  check(cfg.ok(), cfg.ok() ? std::string() : cfg.message());
  return cfg.value();
}

int64_t stored_bytes(const Weight& w) {
  if (!w.present()) return 0;
  int64_t n = w.quant == Quant::Mxfp4 ? w.rows() * w.cols() / 2
                                      : shape_numel(w.shape) * static_cast<int64_t>(dtype_size(w.dtype));
  if (w.quant != Quant::None && w.scale) n += shape_numel(w.scale_shape) * static_cast<int64_t>(dtype_size(w.scale_dtype));
  return n;
}

BenchModel::BenchModel(std::span<const int64_t> ratios, uint64_t seed) : cfg_(flash_config(ratios)) {
  const auto& c = cfg_;
  const size_t n_layers = ratios.size();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> bit(0, 1), mant(0, 7), expo(4, 8), byte(0, 255);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  auto make = [&](size_t max_weight, size_t slots, auto&& gen) {
    auto p = std::make_unique<Pool>();
    p->max_weight = max_weight;
    p->slots = slots;
    p->bytes.resize(max_weight + slots * kSlot);
    const size_t block = std::min(kRandomBlock, p->bytes.size());
    gen(p->bytes.data(), block);
    for (size_t off = block; off < p->bytes.size(); off += block)
      std::memcpy(p->bytes.data() + off, p->bytes.data(), std::min(block, p->bytes.size() - off));
    pools_.push_back(std::move(p));
    return pools_.back().get();
  };
  const size_t D = static_cast<size_t>(c.hidden_size), V = static_cast<size_t>(c.vocab_size);
  // FP8 codes with exponent field 4..8 (|x| in [1/8, 4)): no NaN code (0x7F/0xFF) can occur.
  p_fp8_ = make(32ull << 20, 16 * n_layers + 16, [&](uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>((bit(rng) << 7) | (expo(rng) << 3) | mant(rng));
  });
  // Every e2m1 nibble is a number.
  p_fp4_ = make(4ull << 20, 800 * n_layers + 16, [&](uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(byte(rng));
  });
  auto bf16_gen = [&](float amp) {
    return [&, amp](uint8_t* p, size_t n) {
      for (size_t i = 0; i + 1 < n; i += 2) {
        const uint16_t b = f32_to_bf16(amp * uni(rng));
        std::memcpy(p + i, &b, 2);
      }
    };
  };
  p_bf16_ = make(V * D * 2, 16 * n_layers + 16, bf16_gen(1.0f / 37.0f));  // std ~1/64
  p_ones_ = make(D * 2, 16 * n_layers + 16, [&](uint8_t* p, size_t n) {
    const uint16_t one = f32_to_bf16(1.0f);
    for (size_t i = 0; i + 1 < n; i += 2) std::memcpy(p + i, &one, 2);
  });
  p_f32_ = make(2ull << 20, 16 * n_layers + 16, [&](uint8_t* p, size_t n) {
    for (size_t i = 0; i + 3 < n; i += 4) {
      const float v = uni(rng) / 128.0f;
      std::memcpy(p + i, &v, 4);
    }
  });
  p_zero_ = make(4096, 16 * n_layers + 16, [](uint8_t* p, size_t n) { std::memset(p, 0, n); });

  w_.naming = "official";
  w_.embed = bf16("embed.weight", {c.vocab_size, c.hidden_size});
  w_.head = bf16("head.weight", {c.vocab_size, c.hidden_size});
  w_.norm = bf16("norm.weight", {c.hidden_size}, true);
  w_.hc_head = {f32("hc_head_fn", {c.hc_mult, c.hc_mult * c.hidden_size}), f32("hc_head_base", {c.hc_mult}),
                f32("hc_head_scale", {1})};
  for (int64_t il = 0; il < c.num_hidden_layers; ++il) w_.layers.push_back(block(il));
}

BenchModel::~BenchModel() = default;

Weight BenchModel::take(Pool& pool, const std::string& name, Quant quant, DType dtype, Shape shape) {
  Weight w;
  w.name = name;
  w.quant = quant;
  w.dtype = dtype;
  w.shape = std::move(shape);
  const int64_t bytes = stored_bytes(w);  // scale not set yet: data bytes only
  check(static_cast<size_t>(bytes) <= pool.max_weight, "cuda_bench: pool too small for " + name);
  check(pool.next < pool.slots, "cuda_bench: pool out of slots at " + name);
  w.data = pool.bytes.data() + kSlot * pool.next++;
  return w;
}

namespace {

// Constant scale arrays, one per byte value, alive for the process (the weights point into them).
const uint8_t* scale_array(uint8_t value, int64_t n) {
  static std::vector<std::unique_ptr<std::vector<uint8_t>>> arrays(256);
  check(static_cast<size_t>(n) <= kScaleBytes, "cuda_bench: scale array too large");
  auto& a = arrays[value];
  if (!a) a = std::make_unique<std::vector<uint8_t>>(kScaleBytes, value);
  return a->data();
}

}  // namespace

Weight BenchModel::fp8(const std::string& name, int64_t out, int64_t in) {
  Weight w = take(*p_fp8_, name, Quant::Fp8Block128, DType::F8_E4M3, {out, in});
  w.scale_dtype = DType::F8_E8M0;
  w.scale_shape = {(out + 127) / 128, (in + 127) / 128};
  w.scale = scale_array(e8m0_pow2_neg(log2_sqrt(in)), shape_numel(w.scale_shape));
  return w;
}

Weight BenchModel::mxfp4(const std::string& name, int64_t out, int64_t in) {
  Weight w = take(*p_fp4_, name, Quant::Mxfp4, DType::I8, {out, in});
  w.scale_dtype = DType::F8_E8M0;
  w.scale_shape = {out, in / 32};
  w.scale = scale_array(e8m0_pow2_neg(log2_sqrt(in) + 2), shape_numel(w.scale_shape));
  return w;
}

Weight BenchModel::bf16(const std::string& name, Shape shape, bool ones) {
  return take(ones ? *p_ones_ : *p_bf16_, name, Quant::None, DType::BF16, std::move(shape));
}

Weight BenchModel::f32(const std::string& name, Shape shape, bool zero) {
  return take(zero ? *p_zero_ : *p_f32_, name, Quant::None, DType::F32, std::move(shape));
}

weights::CompressorWeights BenchModel::compressor(const std::string& p, int64_t ratio, int64_t dim) {
  const int64_t c = ratio == 4 ? 2 : 1, D = cfg_.hidden_size;
  return {.wkv = bf16(p + "wkv.weight", {c * dim, D}),
          .wgate = bf16(p + "wgate.weight", {c * dim, D}),
          .ape = f32(p + "ape", {ratio, c * dim}),
          .norm = bf16(p + "norm.weight", {dim}, true)};
}

weights::BlockWeights BenchModel::block(int64_t il) {
  const auto& c = cfg_;
  const std::string p = "layers." + std::to_string(il) + ".";
  const int64_t D = c.hidden_size, H = c.num_attention_heads, d = c.head_dim, hc = c.hc_mult;
  const int64_t ratio = c.compress_ratio(il), I = c.moe_intermediate_size;
  weights::BlockWeights b;
  auto hcw = [&](const std::string& n) {
    return weights::HcWeights{f32(p + n + "_fn", {(2 + hc) * hc, hc * D}), f32(p + n + "_base", {(2 + hc) * hc}),
                              f32(p + n + "_scale", {3})};
  };
  b.hc_attn = hcw("hc_attn");
  b.hc_ffn = hcw("hc_ffn");
  b.attn_norm = bf16(p + "attn_norm.weight", {D}, true);
  b.ffn_norm = bf16(p + "ffn_norm.weight", {D}, true);
  auto& a = b.attn;
  a.attn_sink = f32(p + "attn.attn_sink", {H}, true);
  a.wq_a = fp8(p + "attn.wq_a.weight", c.q_lora_rank, D);
  a.q_norm = bf16(p + "attn.q_norm.weight", {c.q_lora_rank}, true);
  a.wq_b = fp8(p + "attn.wq_b.weight", H * d, c.q_lora_rank);
  a.wkv = fp8(p + "attn.wkv.weight", d, D);
  a.kv_norm = bf16(p + "attn.kv_norm.weight", {d}, true);
  a.wo_a = fp8(p + "attn.wo_a.weight", c.o_groups * c.o_lora_rank, (H / c.o_groups) * d);
  a.wo_b = fp8(p + "attn.wo_b.weight", D, c.o_groups * c.o_lora_rank);
  if (ratio > 0) a.compressor = compressor(p + "attn.compressor.", ratio, d);
  if (ratio == 4) {
    weights::IndexerWeights ix;
    ix.wq_b = fp8(p + "attn.indexer.wq_b.weight", c.index_n_heads * c.index_head_dim, c.q_lora_rank);
    ix.weights_proj = bf16(p + "attn.indexer.weights_proj.weight", {c.index_n_heads, D});
    ix.compressor = compressor(p + "attn.indexer.compressor.", 4, c.index_head_dim);
    a.indexer = std::move(ix);
  }
  auto& m = b.ffn;
  m.gate_weight = bf16(p + "ffn.gate.weight", {c.n_routed_experts, D});
  m.gate_bias = f32(p + "ffn.gate.bias", {c.n_routed_experts}, true);
  for (int64_t e = 0; e < c.n_routed_experts; ++e) {
    const std::string ep = p + "ffn.experts." + std::to_string(e) + ".";
    m.experts.push_back({.w1 = mxfp4(ep + "w1.weight", I, D), .w2 = mxfp4(ep + "w2.weight", D, I),
                         .w3 = mxfp4(ep + "w3.weight", I, D)});
  }
  m.shared = {.w1 = fp8(p + "ffn.shared_experts.w1.weight", I, D), .w2 = fp8(p + "ffn.shared_experts.w2.weight", D, I),
              .w3 = fp8(p + "ffn.shared_experts.w3.weight", I, D)};
  return b;
}

namespace {

template <typename F>
void for_each_attention_weight(const weights::BlockWeights& b, F&& f) {
  for (const auto* h : {&b.hc_attn, &b.hc_ffn}) {
    f(h->fn);
    f(h->base);
    f(h->scale);
  }
  f(b.attn_norm);
  f(b.ffn_norm);
  const auto& a = b.attn;
  for (const Weight* w : {&a.attn_sink, &a.wq_a, &a.q_norm, &a.wq_b, &a.wkv, &a.kv_norm, &a.wo_a, &a.wo_b}) f(*w);
  auto cmp = [&](const weights::CompressorWeights& c) {
    f(c.wkv);
    f(c.wgate);
    f(c.ape);
    f(c.norm);
  };
  if (a.compressor) cmp(*a.compressor);
  if (a.indexer) {
    f(a.indexer->wq_b);
    f(a.indexer->weights_proj);
    cmp(a.indexer->compressor);
  }
  f(b.ffn.gate_weight);
  f(b.ffn.gate_bias);
}

int64_t expert_bytes(const weights::ExpertWeights& e) { return stored_bytes(e.w1) + stored_bytes(e.w2) + stored_bytes(e.w3); }

// 2 * out * in of a matrix weight (vectors and the small f32 tables contribute no matmul).
double matmul_flops(const Weight& w) { return w.shape.size() == 2 ? 2.0 * w.rows() * w.cols() : 0.0; }

bool fp8_rate(const Weight& w) { return w.quant != Quant::None; }

}  // namespace

LayerBytes BenchModel::layer_bytes(int64_t il) const {
  const auto& b = w_.layers.at(static_cast<size_t>(il));
  LayerBytes out;
  for_each_attention_weight(b, [&](const Weight& w) { out.attention += stored_bytes(w); });
  out.shared = expert_bytes(b.ffn.shared);
  out.expert = expert_bytes(b.ffn.experts.at(0));
  return out;
}

LayerFlops BenchModel::layer_flops(int64_t il) const {
  const auto& b = w_.layers.at(static_cast<size_t>(il));
  LayerFlops out;
  for_each_attention_weight(b, [&](const Weight& w) {
    if (w.name.find("ape") != std::string::npos) return;
    // wo_a is FP8 in the checkpoint but a bf16 einsum in the reference (spec §7.4).
    const bool fp8 = fp8_rate(w) && w.name.find("wo_a") == std::string::npos;
    (fp8 ? out.fp8 : out.bf16) += matmul_flops(w);
  });
  auto expert = [&](const weights::ExpertWeights& e) {
    return matmul_flops(e.w1) + matmul_flops(e.w2) + matmul_flops(e.w3);
  };
  out.fp8 += expert(b.ffn.shared) + static_cast<double>(cfg_.num_experts_per_tok) * expert(b.ffn.experts.at(0));
  return out;
}

int64_t BenchModel::embed_head_bytes() const {
  return stored_bytes(w_.head) + stored_bytes(w_.norm) + stored_bytes(w_.hc_head.fn) + stored_bytes(w_.hc_head.base) +
         stored_bytes(w_.hc_head.scale);
}

int64_t BenchModel::total_bytes() const {
  int64_t n = stored_bytes(w_.embed) + embed_head_bytes();
  for (size_t il = 0; il < w_.layers.size(); ++il) {
    const LayerBytes lb = layer_bytes(static_cast<int64_t>(il));
    n += lb.attention + lb.shared + lb.expert * cfg_.n_routed_experts;
  }
  return n;
}

}  // namespace dsv4::bench
