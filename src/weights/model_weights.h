// The one internal weight structure of a DeepSeek-V4 checkpoint, independent of the tensor naming on disk
// (official `layers.L.attn.wq_a.weight` or HF-transformers `model.layers.L.self_attn.q_a_proj.weight`).
// Every Weight is a non-owning view into the mmapped checkpoint (kept alive by ModelWeights::storage).
// Invariants after bind_weights() succeeds: every required tensor is present with the shape the config
// implies and an allowed dtype; quantized weights carry their scales; tid2eid rows are distinct and in range.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace dsv4::weights {

enum class Quant : uint8_t {
  None,        // F32 / BF16 / F16 stored values, used as they are
  Fp8Block128, // F8_E4M3 values, scale e8m0 [ceil(out/128), ceil(in/128)] (or F32 scale_inv, see below)
  Mxfp4,       // I8 bytes [out, in/2], low nibble = element 2k; scale e8m0 [out, in/32]
};

// A weight matrix [out, in] (or vector [n]) in its checkpoint format.
struct Weight {
  std::string name;       // checkpoint tensor name, for messages
  Quant quant = Quant::None;
  DType dtype = DType::F32;  // storage dtype of `data` (F32, BF16, F16, F8_E4M3, I8, I64)
  Shape shape;            // logical shape: for Mxfp4 the unpacked [out, in]
  const void* data = nullptr;
  // Block scales: for Fp8Block128 / Mxfp4. scale_dtype F8_E8M0 (official) or F32 (HF weight_scale_inv
  // stored as float; value used as a multiplier).
  const void* scale = nullptr;
  DType scale_dtype = DType::F8_E8M0;
  Shape scale_shape;

  bool present() const { return data != nullptr; }
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
};

struct CompressorWeights {
  Weight wkv;    // [c*d', D]
  Weight wgate;  // [c*d', D]
  Weight ape;    // f32 [m, c*d']
  Weight norm;   // [d']
};

struct IndexerWeights {
  Weight wq_b;          // [index_n_heads*index_head_dim, q_lora_rank]
  Weight weights_proj;  // [index_n_heads, D]
  CompressorWeights compressor;  // d' = index_head_dim, m = 4
};

struct AttentionWeights {
  Weight attn_sink;  // f32 [H]
  Weight wq_a;       // [q_lora, D]
  Weight q_norm;     // [q_lora]
  Weight wq_b;       // [H*d, q_lora]
  Weight wkv;        // [d, D]
  Weight kv_norm;    // [d]
  Weight wo_a;       // [G*R, (H/G)*d]
  Weight wo_b;       // [D, G*R]
  std::optional<CompressorWeights> compressor;  // m > 0
  std::optional<IndexerWeights> indexer;        // m == 4
};

struct ExpertWeights {
  Weight w1;  // gate [I, D]
  Weight w2;  // down [D, I]
  Weight w3;  // up   [I, D]
};

struct MoEWeights {
  Weight gate_weight;  // [E, D]
  Weight gate_bias;    // f32 [E], non-hash layers
  Weight tid2eid;      // i64 (or i32) [vocab, top_k], hash layers
  std::vector<ExpertWeights> experts;  // n_routed_experts
  ExpertWeights shared;
};

struct HcWeights {
  Weight fn;     // f32 [(2+hc)*hc, hc*D] for sublayers, [hc, hc*D] for the head
  Weight base;   // f32 [(2+hc)*hc] or [hc]
  Weight scale;  // f32 [3] or [1]
};

struct BlockWeights {
  HcWeights hc_attn, hc_ffn;
  Weight attn_norm, ffn_norm;  // [D]
  AttentionWeights attn;
  MoEWeights ffn;
};

struct MtpWeights {
  BlockWeights block;
  Weight e_proj, h_proj;       // [D, D]
  Weight enorm, hnorm, norm;   // [D]
  HcWeights hc_head;
};

// Keeps mmapped files alive; implemented by the checkpoint reader.
struct Storage {
  virtual ~Storage() = default;
};

struct ModelWeights {
  Weight embed;  // [vocab, D]
  Weight head;   // [vocab, D]
  Weight norm;   // [D]
  HcWeights hc_head;
  std::vector<BlockWeights> layers;  // num_hidden_layers
  std::vector<MtpWeights> mtp;       // num_nextn_predict_layers (empty when the checkpoint has none)
  std::string naming;                // "official" or "transformers"
  std::shared_ptr<Storage> storage;
};

}  // namespace dsv4::weights
