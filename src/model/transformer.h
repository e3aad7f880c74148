// Transformer: the whole DeepSeek-V4 forward pass (spec §3) over a ForwardBatch of sequences, plus the MTP
// block (spec §8). The layer sequence is written once here; the backend is whatever Ops it is given.
// forward() advances each chunk's SequenceState (n_past += n_rows); chunked prefill, decode and batches of
// several sequences all go through the same code.
#pragma once
#include <span>

#include "backend/ops.h"
#include "model/config.h"
#include "model/forward_batch.h"
#include "weights/model_weights.h"

namespace dsv4::model {

struct ForwardOptions {
  bool all_logits = false;   // logits of every row (else only the last row of each chunk)
  bool keep_hidden = false;  // return the final residual streams (MTP input)
  bool logits_on_device = false;  // leave the logits on the backend's device (a device sampler reads them)
};

struct ForwardOutput {
  Tensor logits;  // f32 [n_out, vocab], on the host (on the backend's device with opt.logits_on_device)
  Tensor hidden;  // f32 [T, hc, D] final block output before hc_head (when keep_hidden), on the backend's device
};

class Transformer {
 public:
  Transformer(const ModelConfig& cfg, const weights::ModelWeights& w, backend::Ops& ops);

  void forward(const ForwardBatch& batch, const ForwardOptions& opt, ForwardOutput& out);

  // MTP block 0 (spec §8): for each row, hidden = the main model's final streams at position p and
  // batch.tokens = the token at p+1; returns logits predicting p+2 for every row. batch chunks continue
  // each sequence's MTP state (pos0 == seq->mtp_n_past).
  void mtp_forward(const ForwardBatch& batch, const Tensor& hidden, Tensor& logits);

  const ModelConfig& config() const { return cfg_; }
  backend::Ops& ops() { return ops_; }

 private:
  void head(const Tensor& X, const weights::HcWeights& hc, const weights::Weight& norm, Tensor& logits);

  const ModelConfig& cfg_;
  const weights::ModelWeights& w_;
  backend::Ops& ops_;
  std::vector<LayerContext> layers_;
  std::vector<LayerContext> mtp_layers_;
};

// A batch of one chunk: tokens continuing `seq` from seq.n_past (or seq.mtp_n_past when for_mtp).
ForwardBatch single_batch(SequenceCache& seq, std::span<const int32_t> tokens, bool for_mtp = false);

}  // namespace dsv4::model
