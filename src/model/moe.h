// MoE sublayer (spec §6): router (hash or bias-selected), routed experts accumulated in ascending expert
// id, then the shared expert, one rounding at the end.
#pragma once
#include "backend/ops.h"
#include "model/config.h"
#include "model/forward_batch.h"
#include "weights/model_weights.h"

namespace dsv4::model {

// x f32 [T, D] ffn_norm output; out f32 [T, D].
void moe_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                 const weights::MoEWeights& w, const ForwardBatch& batch, const Tensor& x, Tensor& out);

}  // namespace dsv4::model
