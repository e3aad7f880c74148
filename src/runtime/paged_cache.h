// PagedKvStore: the memory behind the paged hybrid KV cache on the CPU backend, and the SequenceCache views
// through which the model reads and writes it. kv::HybridKvManager owns the page tables (host metadata);
// this store owns the bytes of its three pools (window pages, compressed pages, compressor-state slots) laid
// out exactly as kv::CacheLayout says, with rows already rounded to the cache dtype, on the host or in device
// memory. Window rows and compressed entries are f32 rows or, with the official FP8 KV cache numerics, packed
// Fp8Kv rows (584 B at Flash shapes, 200 B at head_dim 128, core/row_blocks.h); indexer keys are f32 rows or,
// with the official FP4 indexer numerics, packed Mxfp4 rows (68 B at index_head_dim 128). Packing is lossless for rows the numerics rounded.
// A view is valid while the manager's page tables of that sequence are unchanged (one engine step).
#pragma once
#include <memory>
#include <vector>

#include "backend/ops.h"
#include "kv/cache_layout.h"
#include "kv/hybrid_kv_manager.h"
#include "kv/memory_budget.h"
#include "model/config.h"
#include "model/sequence_state.h"

namespace dsv4::runtime {

// The CacheShape of a model with window rows and compressed entries in kv_format (window_row_bytes =
// kv_row_bytes = 4·head_dim, or fp8kv_row_bytes(head_dim, qk_rope_head_dim)) and indexer keys in
// index_format (indexer_row_bytes = 4·index_head_dim, or mxfp4_row_bytes(index_head_dim)).
kv::CacheShape cache_shape(const model::ModelConfig& cfg, RowFormat index_format = RowFormat::F32,
                           RowFormat kv_format = RowFormat::F32);
// The indexer key format that holds the numerics' keys exactly: Mxfp4 for the FP4 indexer, else F32.
RowFormat index_row_format(const backend::Numerics& numerics);
// The compressed entry format that holds the numerics' entries exactly: Fp8Kv for the FP8 KV cache when
// (head_dim - qk_rope_head_dim) % 64 == 0 (the FP8 blocks tile the no-RoPE dims), else F32.
RowFormat kv_row_format(const backend::Numerics& numerics, const model::ModelConfig& cfg);

class PagedKvStore {
 public:
  // Pools live on `device` (the backend's: Ops::device()). layout must come from
  // cache_shape(cfg, index_format, kv_format).
  PagedKvStore(const model::ModelConfig& cfg, const kv::CacheLayout& layout, const kv::PoolSizes& sizes,
               Device device = Device::Host, RowFormat index_format = RowFormat::F32,
               RowFormat kv_format = RowFormat::F32);

  // View of sequence `id` at position n_past (the start of its chunk in this step).
  std::unique_ptr<model::SequenceCache> view(const kv::HybridKvManager& kv, kv::SeqId id, int64_t n_past);
  int64_t bytes() const;
  // Copies whole compressor-state slots, copies[i].first -> copies[i].second, in order (prefix caching).
  void copy_states(backend::Ops& ops, std::span<const std::pair<kv::PageId, kv::PageId>> copies);

 private:
  friend class PagedSequence;
  const model::ModelConfig& cfg_;
  kv::CacheLayout layout_;
  RowFormat index_format_;
  RowFormat kv_format_;
  std::vector<int64_t> csa_index_, hca_index_;    // per layer: index among CSA / HCA layers, -1 if not
  std::vector<int64_t> state_offset_;             // per layer: float offset of its main compressor state
  std::vector<int64_t> idx_state_offset_;         // per layer: float offset of its indexer compressor state
  // Pool memory is not initialised: pages are committed by the OS when first written, and every row is
  // written before it is read (docs/contracts.md).
  struct Pool {
    std::unique_ptr<float[]> host;  // host pools: uninitialised, committed by the OS on first write
    Tensor dev;                     // device pools
    int64_t n_floats = 0;
    float* ptr() { return host ? host.get() : dev.data(); }
  };
  Pool window_, compressed_, state_;
};

}  // namespace dsv4::runtime
