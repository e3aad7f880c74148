// Launch schedules of the attention kernels (host-side heuristics, kept out of the kernels).
// Sparse attention: the tensor-core path (bf16 numerics, dim in {64, 128, 256, 512}) runs one CTA per (query,
// group of 16 heads, key split); split-K over the key list (flash-decoding) is chosen when the (query, head
// group) CTAs alone would leave the GPU under-filled (small decode batches). dim 512 with a multiple of 64
// heads (the Flash/Pro decode shape) runs the wide variant instead: one CTA per (query, 64 heads, key split),
// split count minimizing waves x tiles per split (batch 1: one 32-key tile per CTA). At dim 512, up to
// kAttnMaxCluster splits run as one thread-block cluster merged in shared memory (no combine kernel).
// Other shapes and the f32 numerics run the generic CUDA-core kernel: one CTA per (query, head), scores kept in
// shared memory.
// Indexer: scores are computed for chunks of query rows whose f32 [rows, max_keys] score matrix fits the
// scratch budget, then selected. Scores: the tiled kernel (n_heads <= 64, head_dim % 8 == 0) runs one CTA per
// (row, key slice) with one warp per 8 heads, looping over 32-key tiles; key_ctas spreads a row over enough
// CTAs to fill ~4 per SM. Selection: the segmented radix top-k (8192-key segments in shared memory, one CTA
// each, then one merge CTA per row with more than one segment). Other shapes, or DSV4_INDEXER_LEGACY=1, run
// the previous kernels (one CTA per (row, 128 keys) and one CTA per row).
#pragma once
#include <cstdint>
#include <string>

namespace dsv4::cuda {

inline constexpr int kAttnKeyTile = 64;         // keys per tile of the tensor-core path
inline constexpr int kAttnLoadBatch = 16;      // float4 key loads in flight per thread (16-head kernel)
inline constexpr int kAttnHeadGroup = 16;       // heads per CTA of the tensor-core path (one m16 MMA tile)
inline constexpr int kAttnMmaThreads = 128;     // 4 warps
inline constexpr int kAttnWideHeads = 64;      // heads per CTA of the wide tensor-core path (4 m16 tiles)
inline constexpr int kAttnWideKeyTile = 32;     // keys per tile of the wide path (one lane per key in the softmax)
inline constexpr int kAttnWideThreads = 512;    // 16 warps
inline constexpr int kAttnWideDim = 512;        // the only head dim the wide path is compiled for
inline constexpr int kAttnWgKeyTile = 32;       // keys per tile of the wgmma wide kernel
inline constexpr int kAttnWgThreads = 256;      // its CTA: two warpgroups
inline constexpr int kAttnWgStages = 3;         // its raw Fp8Kv tile slots
inline constexpr int kAttnWgKeyBufs = 3;        // its bf16 key tiles: i - 1 (P·V), i (S), i + 1 (converted)
inline constexpr int64_t kAttnWideMinQueries = 8; // fewer queries: the 16-head kernel (more CTAs) is faster
inline constexpr int kAttnCombineMaxSplit = 1024;  // split weights the combine kernel keeps in shared memory
inline constexpr int kAttnMaxCluster = 16;      // most key splits merged in one thread-block cluster (non-portable)
inline constexpr int kAttnGenericThreads = 128;
inline constexpr int kAttnGenericMaxKeys = 16384;  // scores of one (query, head) in shared memory
inline constexpr int kTopkThreads = 512;
inline constexpr int kTopkMaxK = 2048;
inline constexpr int kIndexerKeyTile = 128;     // keys per CTA of the score kernel (one per thread)
inline constexpr int kIdxTileKeys = 32;          // keys per tile of the tiled score kernel (one lane per key)
inline constexpr int kIdxHeadsPerThread = 8;     // heads per thread of the tiled score kernel
inline constexpr int kIdxMaxHeadGroups = 8;      // warps (head groups) per CTA: n_heads <= 64
inline constexpr int kIdxMmaTileKeys = 128;     // keys per tile of the tensor-core score kernel
inline constexpr int kIdxMmaThreads = 128;       // its CTA: 4 warps x 16 heads
inline constexpr int kIdxMmaTermLd = kIdxMmaTileKeys + 8;
inline constexpr int kIdxMmaMaxHeads = 64;
inline constexpr int kTopkSegment = 8192;        // keys per CTA of the segmented top-k (held in shared memory)
inline constexpr int kTopkMergeGroup = 8;        // segments merged per CTA in the first of two merge levels
// Radix top-k (topk_radix.cuh): chunks of kTopkRadixChunk keys per CTA, digits of 11, 11 and 10 bits of the
// order key; per-row words: three histograms, kTopkRadixState state words, a tie count per chunk, the
// threshold-exceeding keys and indices (top_k each), then top_k tie slots per chunk.
inline constexpr int kTopkRadixChunk = 2048;
inline constexpr int kTopkRadixBins = 2048;
inline constexpr int kTopkRadixBins3 = 1024;
inline constexpr int kTopkRadixHist = 2 * kTopkRadixBins + kTopkRadixBins3;
inline constexpr int kTopkRadixState = 16;
constexpr int64_t topk_radix_chunks(int64_t n_seg) { return n_seg * (kTopkSegment / kTopkRadixChunk); }
constexpr int64_t topk_radix_words(int64_t n_seg, int64_t top_k) {
  const int64_t chunks = topk_radix_chunks(n_seg);
  return (kTopkRadixHist + kTopkRadixState + chunks + 2 * top_k + chunks * top_k + 63) / 64 * 64;
}
inline constexpr int kIndexerRoundMaxDim = 8192;
inline constexpr int64_t kIndexerScratchBytes = int64_t(256) << 20;

struct SparseAttnPlan {
  bool mma = false;       // tensor-core path
  bool wide = false;      // tensor-core path, 64 heads per CTA (each key tile read once per query)
  bool wgmma = false;     // wide on wgmma (sparse_attention_wgmma.cuh) instead of mma.sync; no clusters
  int n_split = 1;
  int keys_per_split = 0;
  int cluster = 0;        // > 0 (= n_split): the splits of one (query, head group) run as one thread-block
                          // cluster and merge in distributed shared memory (no partials, no combine kernel)
  size_t smem_bytes = 0;  // dynamic shared memory of the chosen kernel
  std::string unsupported;
};

// Path choices of plan_sparse_attention, read by the caller from kernel_paths() and the device.
struct SparseAttnOptions {
  bool allow_wide = true;  // false forces the 16-head tensor-core kernel (the previous path, before/after timing)
  bool allow_wgmma = true;  // the wide path on wgmma (needs Fp8Kv rows, if any, with 64 RoPE values)
  int64_t wgmma_min_queries = kAttnWideMinQueries;  // with allow_wgmma: the wide path from this many queries
  int max_cluster = 0;       // largest cluster the device runs of the dim-512 16-head kernel (0: combine kernel)
  int max_cluster_wide = 0;  // the same for the wide kernel
  int cluster_split = -1;    // >= 2: key splits per cluster forced (sweeps), clamped to the kernel's limit
  int wide_split = 0;        // >= 1: key splits of the wgmma wide path forced (sweeps; 0: the wave cost model)
};

// n_q queries, longest key list max_keys; tensor_cores: bf16 numerics (q and keys bf16 values) and 16-byte
// aligned rows, so the tensor-core path is exact. Split-K at dim kAttnWideDim within the kernel's cluster limit
// runs as clusters (plan.cluster); other splits write partials for the combine kernel.
SparseAttnPlan plan_sparse_attention(int64_t n_q, int64_t n_heads, int64_t dim, int64_t max_keys,
                                     bool tensor_cores, int sm_count, const SparseAttnOptions& opt = {});

// Dynamic shared memory of the wide tensor-core path (dim kAttnWideDim).
size_t sparse_attention_wide_smem(int dim);

// Dynamic shared memory of the wgmma wide kernel: bf16 q, kAttnWgKeyBufs key tiles, kAttnWgStages raw slots of
// 32 Fp8Kv rows (584 B + 8), the key pointer ring, 1024 bytes of alignment slack.
size_t sparse_attention_wgmma_smem();

// Dynamic shared memory of the tensor-core path for a head dim.
size_t sparse_attention_mma_smem(int dim);

struct IndexerPlan {
  int64_t rows_per_chunk = 0;  // query rows scored then selected per pass
  size_t score_smem = 0;       // dynamic shared memory of the score kernel
  bool tiled = false;          // tiled score kernel (head groups per warp, key tiles looped per CTA)
  bool mma = false;            // tensor-core score kernel (bf16 numerics; falls back to tiled for unaligned keys)
  int mma_key_ctas = 1;        // mma: CTAs per row along the key list
  size_t mma_smem = 0;         // mma: dynamic shared memory
  int wgmma_key_ctas = 0;      // mma on Mxfp4 rows at head_dim 128 (indexer_wgmma.cuh): CTAs per row, 0: not used
  int key_ctas = 1;            // tiled: CTAs per row along the key list (each loops over tiles)
  int head_groups = 1;         // tiled: warps per CTA
  bool segmented_topk = false; // multi-CTA segmented top-k (else the one-CTA-per-row kernel)
  int n_seg = 1;               // segments of the longest row
  std::string unsupported;
};

// legacy = true: the previous kernels (one CTA per (row, 128 keys) scores, one CTA per row top-k), kept as a
// fallback and for before/after timing (DSV4_CUDA_PATHS=indexer_fast=0). bf16_scores: the bf16 numerics
// (q and keys are bf16 values), where the tensor-core score kernel may run (allow_mma; n_heads <= 64,
// head_dim 64 or 128).
IndexerPlan plan_indexer(int64_t T, int64_t max_keys, int64_t n_heads, int64_t head_dim, int64_t top_k,
                         int sm_count = 132, bool legacy = false, bool bf16_scores = false, bool allow_mma = true);

// Dynamic shared memory of the tensor-core score kernel.
size_t indexer_mma_smem(int64_t head_dim);

// Dynamic shared memory of the tiled score kernel.
size_t indexer_tiled_smem(int64_t n_heads, int64_t head_dim);

}  // namespace dsv4::cuda
