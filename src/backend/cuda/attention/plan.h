// Launch schedules of the attention kernels (host-side heuristics, kept out of the kernels).
// Sparse attention: the tensor-core path (bf16 numerics, dim in {64, 128, 256, 512}) runs one CTA per (query,
// group of 16 heads, key split); split-K over the key list (flash-decoding) is chosen when the (query, head
// group) CTAs alone would leave the GPU under-filled (small decode batches). Other shapes and the f32 numerics
// run the generic CUDA-core kernel: one CTA per (query, head), scores kept in shared memory.
// Indexer: scores are computed for chunks of query rows whose f32 [rows, max_keys] score matrix fits the
// scratch budget, then selected by a per-row radix select.
#pragma once
#include <cstdint>
#include <string>

namespace dsv4::cuda {

inline constexpr int kAttnKeyTile = 64;         // keys per tile of the tensor-core path
inline constexpr int kAttnHeadGroup = 16;       // heads per CTA of the tensor-core path (one m16 MMA tile)
inline constexpr int kAttnMmaThreads = 128;     // 4 warps
inline constexpr int kAttnGenericThreads = 128;
inline constexpr int kAttnGenericMaxKeys = 16384;  // scores of one (query, head) in shared memory
inline constexpr int kTopkThreads = 512;
inline constexpr int kTopkMaxK = 2048;
inline constexpr int kIndexerKeyTile = 128;     // keys per CTA of the score kernel (one per thread)
inline constexpr int kIndexerRoundMaxDim = 8192;
inline constexpr int64_t kIndexerScratchBytes = int64_t(256) << 20;

struct SparseAttnPlan {
  bool mma = false;       // tensor-core path
  int n_split = 1;
  int keys_per_split = 0;
  size_t smem_bytes = 0;  // dynamic shared memory of the chosen kernel
  std::string unsupported;
};

// n_q queries, longest key list max_keys; tensor_cores: bf16 numerics (q and keys bf16 values) and 16-byte
// aligned rows, so the tensor-core path is exact.
SparseAttnPlan plan_sparse_attention(int64_t n_q, int64_t n_heads, int64_t dim, int64_t max_keys,
                                     bool tensor_cores, int sm_count);

// Dynamic shared memory of the tensor-core path for a head dim.
size_t sparse_attention_mma_smem(int dim);

struct IndexerPlan {
  int64_t rows_per_chunk = 0;  // query rows scored then selected per pass
  size_t score_smem = 0;       // dynamic shared memory of the score kernel
  std::string unsupported;
};

IndexerPlan plan_indexer(int64_t T, int64_t max_keys, int64_t n_heads, int64_t head_dim, int64_t top_k);

}  // namespace dsv4::cuda
