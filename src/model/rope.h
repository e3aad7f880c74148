// RoPE frequency tables (spec §2.8): plain θ = rope_theta for ratio-0 layers; θ = compress_rope_theta with
// YaRN (factor, original length, β_fast/β_slow; no mscale) for layers with a compressor. One table per layer
// kind is used for q, window KV, compressed KV and the indexer alike.
#pragma once
#include "backend/ops.h"
#include "model/config.h"

namespace dsv4::model {

backend::RopeTable make_rope_table(int64_t rope_dim, double base, const YarnScaling* yarn);
// The table of layer il (il == num_hidden_layers.. for MTP blocks).
backend::RopeTable layer_rope_table(const ModelConfig& cfg, int64_t il);

}  // namespace dsv4::model
