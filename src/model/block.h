// One DeepSeek-V4 block (spec §3): mHC around attention and around the MoE. X is the 4-stream residual.
#pragma once
#include "backend/ops.h"
#include "model/config.h"
#include "model/forward_batch.h"
#include "weights/model_weights.h"

namespace dsv4::model {

backend::HcParams hc_params(const ModelConfig& cfg);

// X f32 [T, hc, D], updated in place.
void block_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                   const weights::BlockWeights& w, const ForwardBatch& batch, Tensor& X);

}  // namespace dsv4::model
