// Per-sequence decoding state of the CPU reference (spec §9.1): for every layer the sliding-window ring,
// the compressed KV entries, the indexer keys and the compressors' streaming tail state. Values are stored
// as f32 already rounded to the cache dtype. This is the simple contiguous layout used by the model; the
// paged pools of the serving engine live in src/kv.
// Invariant: after a forward over positions [0, n_past), ring slot p % window holds the KV of position p
// for p in [n_past - window, n_past); compressed holds floor(n_past / ratio) entries.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dsv4::model {

// Streaming state of one compressor (spec §5.7): the pending tokens of the current window and, for the
// overlapping ratio-4 compressor, the previous complete window. Rows are c·d' wide (kv and gate score,
// the score already including ape).
struct CompressorState {
  int64_t ratio = 0;
  int64_t width = 0;               // c·d'
  std::vector<float> cur_kv, cur_score;   // f32 [ratio, width], rows [0, n_cur) valid
  std::vector<float> prev_kv, prev_score; // f32 [ratio, width], valid when has_prev (ratio 4 only)
  int64_t n_cur = 0;
  bool has_prev = false;
  void init(int64_t ratio_, int64_t width_);
};

struct LayerCache {
  int64_t ratio = 0;
  std::vector<float> window;       // f32 [sliding_window, head_dim] ring indexed by pos % window
  std::vector<float> compressed;   // f32 [n_compressed, head_dim]
  std::vector<float> index_keys;   // f32 [n_compressed, index_head_dim] (ratio 4)
  CompressorState cmp, idx_cmp;
  int64_t n_compressed() const;
  int64_t head_dim = 0;
};

struct SequenceState {
  int64_t n_past = 0;                 // tokens already processed by the main model
  std::vector<LayerCache> layers;     // num_hidden_layers
  int64_t mtp_n_past = 0;             // tokens already processed by the MTP block
  std::vector<LayerCache> mtp;        // num_nextn_predict_layers

  explicit SequenceState(const ModelConfig& cfg);
  void reset(const ModelConfig& cfg);
};

}  // namespace dsv4::model
