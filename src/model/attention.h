// Attention sublayer (spec §5): low-rank query with per-head norm, the shared K=V latent, the sliding
// window, compressed entries (all for HCA, indexer top-k for CSA), sparse attention with sink, inverse RoPE
// and the grouped low-rank output projection. Reads and updates each sequence's LayerCache.
#pragma once
#include "backend/ops.h"
#include "model/config.h"
#include "model/forward_batch.h"
#include "weights/model_weights.h"

namespace dsv4::model {

// x f32 [T, D] attn_norm output; out f32 [T, D].
void attention_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                       const weights::AttentionWeights& w, const ForwardBatch& batch, const Tensor& x,
                       Tensor& out);

}  // namespace dsv4::model
