// Compressor (spec §5.7): pools every `ratio` tokens' projected KV into one compressed entry with a
// per-channel softmax over gate scores (ratio 4 overlaps the previous window's A-half). Runs for a whole
// ForwardBatch: projections for all rows at once, then each sequence's tokens are fed in order through its
// streaming state, and the emitted entries are normalised, rotated at position w·ratio and rounded to the
// cache dtype. Entries are appended to the sequence's cache (copied as f32 rows, or packed when the cache keeps
// Mxfp4 indexer keys / Fp8Kv entries), so a query at p sees the first floor((p+1)/ratio) entries.
#pragma once
#include "backend/ops.h"
#include "model/config.h"
#include "model/forward_batch.h"
#include "weights/model_weights.h"

namespace dsv4::model {

struct CompressorSpec {
  int64_t ratio = 0;
  int64_t dim = 0;         // d': head_dim (main) or index_head_dim (indexer)
  bool indexer = false;    // indexer keys: Hadamard + indexer dtype rounding; else KV cache rounding
};

// x f32 [T, D]: the attn_norm output of every row of the batch.
void compressor_forward(backend::Ops& ops, const ModelConfig& cfg, const LayerContext& layer,
                        const weights::CompressorWeights& w, const CompressorSpec& spec,
                        const ForwardBatch& batch, const Tensor& x);

}  // namespace dsv4::model
