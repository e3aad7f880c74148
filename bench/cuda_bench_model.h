// The model of the GPU benchmark (bench/cuda_bench.cpp): DeepSeek-V4-Flash shapes (spec §1.1, §7.3) with a
// chosen list of layers (one compress ratio each), and random weights in the checkpoint dtypes: FP8 e4m3 with
// e8m0 128x128 block scales for the default linears, MXFP4 (e2m1 + e8m0 per 32) routed experts, BF16 embed,
// head, norms, gate and compressor projections, F32 hc_*, attn_sink, ape and gate bias.
// Owns the host bytes every Weight points into. The bytes come from a few small random pools; each Weight gets
// its own start offset in its pool because DeviceWeights keys its device copies by the host data pointer, so
// every weight still gets its own device buffer (and the benchmark streams distinct memory, as the real model).
// Also the accounting the floors need: stored bytes per layer part and matmul FLOPs per token.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"
#include "weights/model_weights.h"

namespace dsv4::bench {

// The real Flash layer mix (spec §1.1 compress_ratios, main layers only): counts per kind.
struct LayerMix {
  int64_t swa = 0, csa = 0, hca = 0;
};
LayerMix flash_layer_mix();

// "swa" (ratio 0), "csa" (4), "hca" (128).
const char* kind_name(int64_t ratio);

// Flash hyper-parameters with num_hidden_layers = ratios.size(), compress_ratios = ratios, no MTP block and
// num_hash_layers = 0 (every layer routes by gate + bias; the real model hash-routes layers 0-2).
model::ModelConfig flash_config(std::span<const int64_t> ratios);

// Stored bytes (data + scales) of one layer, split as the decode floor needs them.
struct LayerBytes {
  int64_t attention = 0;  // everything but the routed and shared experts: attention, compressor, indexer, hc, norms, gate
  int64_t shared = 0;     // the shared expert (FP8)
  int64_t expert = 0;     // one routed expert (MXFP4 w1, w2, w3 + scales)
};

// Matmul FLOPs per token of one layer (2 * out * in per linear), split by the tensor-core rate a floor uses:
// FP8/MXFP4 weights (act_quant'ed inputs) at the FP8 rate, everything else at the bf16 rate. Routed experts
// count num_experts_per_tok experts. Attention score/value FLOPs are separate (they depend on positions).
struct LayerFlops {
  double fp8 = 0;
  double bf16 = 0;
};

class BenchModel {
 public:
  BenchModel(std::span<const int64_t> ratios, uint64_t seed);
  ~BenchModel();
  BenchModel(const BenchModel&) = delete;
  BenchModel& operator=(const BenchModel&) = delete;

  const model::ModelConfig& cfg() const { return cfg_; }
  const weights::ModelWeights& weights() const { return w_; }
  LayerBytes layer_bytes(int64_t il) const;
  LayerFlops layer_flops(int64_t il) const;
  int64_t embed_head_bytes() const;  // head + norm + hc_head (embed rows are counted per token)
  int64_t total_bytes() const;       // every stored byte

 private:
  struct Pool;
  weights::Weight take(Pool& pool, const std::string& name, weights::Quant quant, DType dtype, Shape shape);
  weights::Weight fp8(const std::string& name, int64_t out, int64_t in);
  weights::Weight mxfp4(const std::string& name, int64_t out, int64_t in);
  weights::Weight bf16(const std::string& name, Shape shape, bool ones = false);
  weights::Weight f32(const std::string& name, Shape shape, bool zero = false);
  weights::CompressorWeights compressor(const std::string& p, int64_t ratio, int64_t dim);
  weights::BlockWeights block(int64_t il);

  model::ModelConfig cfg_;
  weights::ModelWeights w_;
  std::vector<std::unique_ptr<Pool>> pools_;
  Pool* p_fp8_ = nullptr;
  Pool* p_fp4_ = nullptr;
  Pool* p_bf16_ = nullptr;
  Pool* p_ones_ = nullptr;
  Pool* p_f32_ = nullptr;
  Pool* p_zero_ = nullptr;
};

// Stored bytes of one weight (data + scales), as DeviceWeights uploads it.
int64_t stored_bytes(const weights::Weight& w);

}  // namespace dsv4::bench
