// The model's view of one sequence's decoding state (spec §9.1), and its simple contiguous implementation.
// SequenceCache is what model code reads and writes: window rows by absolute position, compressed entries and
// indexer keys by entry index, and the compressors' streaming tail state, all per layer (`il` = layer id,
// num_hidden_layers + i for MTP block i). Rows are f32 values already rounded to the cache dtype.
// Two implementations: SequenceState (contiguous vectors, used by tests and single-sequence tools) and the
// paged store of the serving engine (runtime/paged_cache.h), which addresses rows through page tables.
// Indexer keys are f32 rows, or Mxfp4 rows (core/row_blocks.h: the packed FP4 form of the official numerics,
// 68 B instead of 512 B at index_head_dim 128) when the cache was made with RowFormat::Mxfp4: index_key_row then
// points at the packed bytes and writers pack (Ops::pack_rows_mxfp4) instead of copying. Likewise compressed
// entries (CSA/HCA main rows) are f32 rows, or Fp8Kv rows (the packed form of the FP8 KV cache, spec §5.3 step 4:
// 200 B instead of 512 B at head_dim 128, 584 B instead of 2 KB at Flash shapes) when the cache was made with
// RowFormat::Fp8Kv: compressed_row then points at the packed bytes and writers pack (Ops::pack_rows_fp8kv).
// Window rows are in the same format as the compressed entries (kv_format()): f32 rows, or Fp8Kv rows packed from
// the FP8-KV-rounded kv rows (lossless, so attention reads the same values; 584 B instead of 2 KB per row).
// Invariants after a forward over positions [0, n_past): window_row(il, p) holds the KV of p for
// p in [n_past - sliding_window, n_past); entries w < floor(n_past / ratio) are written.
#pragma once
#include <cstdint>
#include <vector>

#include "core/row_blocks.h"
#include "core/tensor.h"
#include "model/config.h"

namespace dsv4::model {

// Streaming state of one compressor (spec §5.7), in the reference's f32 layout: the tokens of the current
// window (slot = pos % ratio) and, for the overlapping ratio-4 compressor, the previous complete window.
// Rows are c·d' wide (kv, and gate score including ape). Which slots are valid follows from the position
// alone, so a fresh sequence needs no reset.
struct CompressorState {
  int64_t ratio = 0;
  int64_t width = 0;            // c·d'
  float* cur_kv = nullptr;      // f32 [ratio, width]
  float* cur_score = nullptr;   // f32 [ratio, width]
  float* prev_kv = nullptr;     // f32 [ratio, width] (ratio 4 only)
  float* prev_score = nullptr;  // f32 [ratio, width] (ratio 4 only)
};

// f32 floats of one compressor's state: 2 (kv, score) x (1 + overlap) x ratio x width.
int64_t compressor_state_floats(int64_t ratio, int64_t width);

class SequenceCache {
 public:
  virtual ~SequenceCache() = default;
  virtual float* window_row(int64_t il, int64_t pos) = 0;       // one row in kv_format()
  virtual float* compressed_row(int64_t il, int64_t w) = 0;     // one row in kv_format()
  virtual float* index_key_row(int64_t il, int64_t w) = 0;      // one row in index_key_format()
  virtual RowFormat index_key_format() const = 0;
  // Format of the compressed entries and window rows: F32 [head_dim] or Fp8Kv (rope_dim = qk_rope_head_dim).
  virtual RowFormat kv_format() const = 0;
  virtual CompressorState compressor(int64_t il, bool indexer) = 0;
  // Entries [0, n) of layer il as row blocks (what the attention and indexer ops read): row s of the result
  // is compressed_row(il, s) / index_key_row(il, s), and the blocks carry the rows' format (and rope_dim for
  // Fp8Kv). Valid until the rows move (see core/row_blocks.h).
  virtual RowBlocks compressed_rows(int64_t il, int64_t n) = 0;
  virtual RowBlocks index_key_rows(int64_t il, int64_t n) = 0;

  int64_t n_past = 0;      // tokens already processed by the main model
  int64_t mtp_n_past = 0;  // tokens already processed by the MTP block
};

// Contiguous implementation: a window ring of sliding_window rows per layer and growing entry vectors.
class SequenceState final : public SequenceCache {
 public:
  // Rows live on `device` (the backend's: Ops::device()); indexer keys in `index_format` (F32 or Mxfp4),
  // compressed entries in `kv_format` (F32 or Fp8Kv).
  explicit SequenceState(const ModelConfig& cfg, Device device = Device::Host,
                         RowFormat index_format = RowFormat::F32, RowFormat kv_format = RowFormat::F32);
  void reset();

  float* window_row(int64_t il, int64_t pos) override;
  float* compressed_row(int64_t il, int64_t w) override;
  float* index_key_row(int64_t il, int64_t w) override;
  RowFormat index_key_format() const override { return index_format_; }
  RowFormat kv_format() const override { return kv_format_; }
  CompressorState compressor(int64_t il, bool indexer) override;
  RowBlocks compressed_rows(int64_t il, int64_t n) override;  // one block
  RowBlocks index_key_rows(int64_t il, int64_t n) override;   // one block

 private:
  struct Layer {
    int64_t ratio = 0;
    Tensor window;      // [sliding_window, row words], slot pos % window: f32 [head_dim] or one Fp8Kv row
    Tensor compressed;  // [n, row words]: f32 [head_dim] or one Fp8Kv row
    Tensor index_keys;  // [n, row words]: f32 [index_head_dim] or one Mxfp4 row
    Tensor cmp, idx_cmp;
  };
  static float* grow_row(Tensor& v, int64_t row);
  static RowBlocks one_block(Tensor& v, int64_t n);
  const ModelConfig& cfg_;
  Device device_;
  RowFormat index_format_;
  RowFormat kv_format_;
  std::vector<Layer> layers_;  // n_layers_total
};

}  // namespace dsv4::model
