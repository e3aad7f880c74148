// The binder: walks the model structure a ModelConfig implies (spec §7.3, generalized to any config) and binds
// every tensor of an opened checkpoint into ModelWeights, with its expected shape and allowed dtypes.
// Shapes (D hidden, H heads, d head_dim, G o_groups, R o_lora_rank, E experts, I moe width, hc = hc_mult):
//   per layer with ratio m: compressor (m > 0) c = 2 if m == 4 else 1, wkv/wgate [c*d, D], ape [m, c*d],
//   norm [d]; indexer (m == 4) wq_b [index_n_heads*index_head_dim, q_lora], weights_proj [index_n_heads, D],
//   its compressor with d' = index_head_dim and c = 2; wo_a [G*R, (H/G)*d]. Hash layers (il < num_hash_layers)
//   carry tid2eid [vocab, top_k] (gate.bias optional), the others gate.bias [E]. An MTP block is a layer with
//   ratio compress_ratios[n_layers + k], a non-hash gate, e_proj/h_proj [D, D], enorm/hnorm/norm [D], hc_head.
// Every tensor of the checkpoint must be used, except `mtp.*` when the config has no MTP layer (warning).
// Nothing is copied: each Weight points into the checkpoint's mappings (HF fused experts: into the fused
// tensor at the expert's offset).
#pragma once
#include <memory>

#include "core/result.h"
#include "model/config.h"
#include "weights/checkpoint.h"
#include "weights/model_weights.h"

namespace dsv4::weights {

// Binds `ckpt` (kept alive as ModelWeights::storage) against `cfg`.
Result<ModelWeights> bind_weights(std::shared_ptr<Checkpoint> ckpt, const model::ModelConfig& cfg);

}  // namespace dsv4::weights
