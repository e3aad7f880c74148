// Lightning indexer (spec §5.8, CSA layers): scores every visible compressed entry for each query with
// Σ_h w_h·ReLU(q_h·K_s) and keeps the top index_topk. Its own ratio-4 compressor (indexer_keys) runs first, so
// that keys emitted in this step are visible to the same step's queries.
#pragma once
#include <vector>

#include "backend/ops.h"
#include "model/config.h"
#include "model/forward_batch.h"
#include "weights/model_weights.h"

namespace dsv4::model {

// The indexer's keys: its ratio-4 compressor over x f32 [T, D] (attn_norm output), writing the keys emitted this
// step into the caches. Runs before indexer_select (possibly as a side branch, model/branches.h).
void indexer_keys(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                  const weights::IndexerWeights& w, const ForwardBatch& batch, const Tensor& x);

// Scores and top-k; qr f32 [T, q_lora_rank] (normalised query latent). The top-k reads the keys after
// Ops::branch_wait_mark() (indexer_keys on a side branch marked before this call).
// Returns i32 [T, index_topk] on the backend's device: row t's first min(index_topk, (pos[t] + 1) / 4) slots
// are its selected compressed-entry indices in descending score order (ties: lower index), the rest -1.
IndexTensor indexer_select(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                           const weights::IndexerWeights& w, const ForwardBatch& batch, const Tensor& x,
                           const Tensor& qr);

}  // namespace dsv4::model
