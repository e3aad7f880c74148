// ForwardBatch: the plain-data description of one forward call over several sequences. Rows of all
// activations are the concatenation of the chunks; chunk c covers rows [row_begin, row_begin + n_rows) of
// sequence *seq at positions pos0 .. pos0 + n_rows - 1 (continuing that sequence: pos0 == its n_past).
// LayerContext: what one block needs to know about its layer (id, ratio, hash routing, RoPE table); `il` is
// also the layer's index into each SequenceCache.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/ops.h"
#include "model/sequence_state.h"

namespace dsv4::model {

struct BatchChunk {
  SequenceCache* seq = nullptr;
  int64_t row_begin = 0;
  int64_t n_rows = 0;
  int64_t pos0 = 0;
};

struct ForwardBatch {
  std::vector<int32_t> tokens;  // [T] token id of each row
  std::vector<int64_t> pos;     // [T] absolute position of each row
  std::vector<BatchChunk> chunks;
  int64_t n_rows() const { return static_cast<int64_t>(tokens.size()); }
};

struct LayerContext {
  int64_t il = 0;        // layer id; num_hidden_layers + i for MTP block i
  int64_t ratio = 0;     // compress ratio (0, 4, 128)
  bool hash = false;     // MoE routes through tid2eid
  int64_t mtp_index = -1;  // >= 0 for MTP blocks
  backend::RopeTable rope;
};

}  // namespace dsv4::model
