// Synthetic sequence caches for the GPU benchmark (bench/cuda_bench.cpp): the decode batch's sequences stand
// at a chosen context length without running a prefill. Each sequence is a SequenceState on the GPU whose
// compressed rows and indexer keys are allocated once up to a last entry (by asking for that row, so no growth
// happens inside a timed step) and, like the window ring, filled with small random values (copied from a random
// device block); the values matter only to the indexer's top-k, which always selects index_topk entries. Indexer
// keys are Mxfp4 rows and window and compressed KV rows Fp8Kv rows (the engine's formats with the official
// numerics; f32 KV rows on request, --kv-rows f32), packed from random values.
// When the batch's rows do not fit the memory budget (1M context at large batch: a CSA layer holds
// 262144 x 584 B compressed rows + 262144 x 68 B indexer keys per sequence), every sequence of the
// batch becomes a SharedRowsCache view of one SequenceState: same rows for all sequences, own n_past. The
// kernels then read the same bytes for every sequence (L2 may serve part of them); the report says so.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "model/sequence_state.h"

namespace dsv4::bench {

// A block of small random f32 values on the device, copied (device to device) into cache rows, and the same
// values packed as Mxfp4 rows of index_head_dim (core/row_blocks.h) for the indexer keys and, FP8-KV-rounded, as
// Fp8Kv rows of head_dim for the compressed KV rows.
class RandomRows {
 public:
  RandomRows(uint64_t seed, const model::ModelConfig& cfg);
  void fill(float* dst, int64_t n) const;              // dst: n floats on the device
  void fill_mxfp4(float* dst, int64_t n_rows) const;  // dst: n_rows Mxfp4 rows of index_head_dim on the device
  void fill_fp8kv(float* dst, int64_t n_rows) const;  // dst: n_rows Fp8Kv rows of head_dim on the device

 private:
  // dst: n_rows rows of `words` 4-byte words on the device, the rows of src (device [rows, words]) repeated.
  static void repeat_rows(const Tensor& src, int64_t words, float* dst, int64_t n_rows);
  Tensor block_;
  Tensor packed_;  // Mxfp4 rows of the first values of block_
  Tensor kv_packed_;  // Fp8Kv rows of the first values of block_
  int64_t row_words_ = 0, kv_words_ = 0;
};

// A sequence whose rows live in a shared SequenceState.
class SharedRowsCache final : public model::SequenceCache {
 public:
  explicit SharedRowsCache(model::SequenceState& store) : store_(store) {}
  float* window_row(int64_t il, int64_t pos) override { return store_.window_row(il, pos); }
  float* compressed_row(int64_t il, int64_t w) override { return store_.compressed_row(il, w); }
  float* index_key_row(int64_t il, int64_t w) override { return store_.index_key_row(il, w); }
  RowFormat index_key_format() const override { return store_.index_key_format(); }
  RowFormat kv_format() const override { return store_.kv_format(); }
  model::CompressorState compressor(int64_t il, bool indexer) override { return store_.compressor(il, indexer); }
  RowBlocks compressed_rows(int64_t il, int64_t n) override { return store_.compressed_rows(il, n); }
  RowBlocks index_key_rows(int64_t il, int64_t n) override { return store_.index_key_rows(il, n); }

 private:
  model::SequenceState& store_;
};

// The sequences of one benchmark condition.
struct SequenceSet {
  std::vector<std::unique_ptr<model::SequenceState>> states;
  std::vector<std::unique_ptr<SharedRowsCache>> views;
  std::vector<model::SequenceCache*> seqs;  // batch order
  bool shared = false;
  int64_t bytes = 0;  // device bytes of the rows allocated
};

// Device bytes of one sequence's rows when every layer holds entries up to position end_pos (exclusive).
int64_t sequence_bytes(const model::ModelConfig& cfg, int64_t end_pos, RowFormat kv_format);

// `batch` sequences ready to continue at any position < end_pos (entries allocated up to end_pos / ratio
// for every compressed layer, all rows random). Per-sequence storage when batch * sequence_bytes <= budget,
// else one shared storage. Compressed KV rows in kv_format (F32 or Fp8Kv).
SequenceSet make_sequences(const model::ModelConfig& cfg, int64_t batch, int64_t end_pos, int64_t budget_bytes,
                           const RandomRows& rnd, RowFormat kv_format);

// Gives cached stream-ordered allocations back to the device (between conditions).
void trim_device_pool();
// Free device memory now (after trim_device_pool()).
int64_t device_free_bytes();

}  // namespace dsv4::bench
