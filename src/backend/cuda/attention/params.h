// Parameter structs of the attention kernel family: sparse attention with sink (spec §5.5), the lightning
// indexer's scores and top-k (§5.8 steps 6-7), the compressor's softmax pooling (§5.7), row copies, RoPE
// (§2.8) and the cache roundings (FP8 KV §5.3, Hadamard + FP4 indexer §5.8). One struct per kernel, passed
// as `const __grid_constant__`; every pointer is __restrict__ and carries its dtype and shape. All
// activations are f32 (values bf16-representable where the numerics round).
#pragma once
#include <cstdint>

namespace dsv4::cuda {

// Row blocks of one key list (core/row_blocks.h): entry e at blocks[block_begin + e / rows_per_block] +
// (e % rows_per_block) * stride.
struct RowBlocksDesc {
  int64_t stride = 0;        // floats
  int32_t block_begin = 0;   // first block of the list in ResolveRowsParams::blocks
  int32_t rows_per_block = 1;
};

// Key pointer lists built on the device from compact plan data (no per-entry host list): list i fills
// out[out_offsets[i] .. out_offsets[i+1]) with its n_direct = direct_offsets[i+1] - direct_offsets[i] direct
// rows (host-built, e.g. a query's window rows), then entries e_j for j < len - n_direct resolved through
// desc[i]: e_j = selected[i, j] (selected != nullptr: the indexer's selections) or j.
struct ResolveRowsParams {
  const float* const* __restrict__ direct = nullptr;        // [direct_offsets[n]] device pointers, or nullptr
  const int32_t* __restrict__ direct_offsets = nullptr;     // [n + 1], or nullptr (no direct rows)
  const int64_t* __restrict__ out_offsets = nullptr;        // [n + 1]
  const RowBlocksDesc* __restrict__ desc = nullptr;         // [n]
  const float* const* __restrict__ blocks = nullptr;        // block bases of all lists, each f32 [rows, stride]
  const int32_t* __restrict__ selected = nullptr;           // i32 [n, sel_ld], valid where read, or nullptr
  const float** __restrict__ out = nullptr;                 // [out_offsets[n]] device pointers
  int64_t sel_ld = 0;
  int32_t n = 0;
  int32_t max_len = 0;  // longest list
  // The block rows (compressed KV entries) are Fp8Kv rows (core/row_blocks.h): their pointers carry tag bit 0
  // (kv_fp8_tag, attention/kv_fp8.cuh); direct rows (window rows) pass through as given: f32 rows, or Fp8Kv rows
  // the host tagged.
  bool tag_fp8 = false;
};

// Sparse attention over per-query key lists (K = V). Query i attends keys[key_offsets[i] .. key_offsets[i+1]).
// out[i, h] = Σ_s p_s k_s / (Σ_s e^{z_s - m} + e^{sink_h - m}), z_s = (q_h · k_s) · scale.
// Split-K (n_split > 1): split j of query i covers keys [j·keys_per_split, (j+1)·keys_per_split) of its list
// and writes unnormalized partials; sparse_attention_combine_kernel merges them (or, launched as thread-block
// clusters of n_split CTAs, the splits merge in distributed shared memory and part_* are unused).
struct SparseAttnParams {
  const float* const* __restrict__ q_rows = nullptr;  // [n_q] device pointers, each f32 [n_heads, dim]
  const float* const* __restrict__ keys = nullptr;    // [key_offsets[n_q]] device pointers, each f32 [dim], or
                                                      // nullptr: 16-head kernel, pointers resolved inline (rows)
  const int32_t* __restrict__ key_offsets = nullptr;  // [n_q + 1]
  const float* __restrict__ sink = nullptr;           // f32 [n_heads]
  float* __restrict__ out = nullptr;                  // f32 [n_q, n_heads, dim]
  float* __restrict__ part_o = nullptr;               // f32 [n_q, n_heads, n_split, dim] (split only)
  float* __restrict__ part_ml = nullptr;              // f32 [n_q, n_heads, n_split, 2]: running max, sum
  int32_t n_q = 0;
  int32_t n_heads = 0;
  int32_t dim = 0;
  int32_t n_split = 1;
  int32_t keys_per_split = 0;  // n_split > 1: any length (16-head kernel), a multiple of 32 (wide kernel)
  int32_t heads_per_cta = 64;  // the two-warpgroup wgmma kernel: 16, 32 or 64 heads per CTA (grid.y = n_heads / it)
  bool rescale_first = false;  // the two-warpgroup wgmma kernel: O rescaled on a CTA's first tile too (no-op x 0)
  float scale = 1.0f;
  bool round_bf16 = false;  // probabilities rounded to bf16 before P·V, output rounded to bf16
  // Fp8Kv key rows (rows.tag_fp8: compressed entries, tagged pointers): the first dim - rope_dim values are e4m3
  // codes with an e8m0 scale per 64, the rest bf16 (attention/kv_fp8.cuh). Read by the tensor-core kernels;
  // the generic kernel gets them decoded into f32 rows first (CudaOps::sparse_attention).
  int32_t rope_dim = 0;
  int32_t kv_row_bytes = 0;  // bytes of one Fp8Kv row (fp8kv_row_bytes)
  // keys == nullptr: query i's key list is list i of rows (window rows, then compressed entries through the row
  // blocks), resolved by the 16-head kernel itself instead of a resolve_rows_kernel launch (rows.out unused).
  ResolveRowsParams rows;
};

// Lightning-indexer scores: scores[t, s] = Σ_h w[t,h]·relu(q[t,h]·K_t[s]) for s < n_keys[t], K_t[s] =
// keys[key_begin[t] + s] (reference rounding order, bf16 after every step when round_bf16).
struct IndexerScoreParams {
  const float* __restrict__ q = nullptr;            // f32 [T, n_heads, head_dim]
  const float* __restrict__ w = nullptr;            // f32 [T, n_heads]
  const float* const* __restrict__ keys = nullptr;  // device pointers (concatenated per-sequence lists) to key rows
  const int64_t* __restrict__ key_begin = nullptr;  // [T] start of row t's list in keys
  const int32_t* __restrict__ n_keys = nullptr;     // [T], each <= max_keys
  float* __restrict__ scores = nullptr;             // f32 [T, ld]
  int64_t ld = 0;                                   // >= max_keys
  int32_t T = 0;
  int32_t max_keys = 0;
  int32_t n_heads = 0;
  int32_t head_dim = 0;
  bool round_bf16 = false;
  bool vec4 = false;  // every key row 16-byte aligned and head_dim % 4 == 0 (tiled kernel: float4 key loads)
  bool packed = false;  // key rows are Mxfp4 rows (core/row_blocks.h), else f32 [head_dim]
};

// Top-k of every score row: the min(top_k, n_keys[t]) largest scores, ties to the lower index, descending
// score order; unused slots of a row are -1.
struct TopkParams {
  const float* __restrict__ scores = nullptr;     // f32 [T, ld]
  const int32_t* __restrict__ n_keys = nullptr;   // [T]
  int32_t* __restrict__ out = nullptr;            // i32 [T, top_k]
  int64_t ld = 0;
  int32_t T = 0;
  int32_t top_k = 0;  // <= kTopkMaxK
};

// Segmented top-k (multi-CTA per row): stage 1 selects the top-k of every kTopkSegment-key segment of a row
// (rows of one segment write `out` directly), stage 2 merges a row's segment candidates. cand_* hold
// [T, cand_ld] entries: segment j's candidates at [j * top_k, ...), order keys and row indices.
struct TopkSegParams {
  const float* __restrict__ scores = nullptr;    // f32 [T, ld]
  const int32_t* __restrict__ n_keys = nullptr;  // [T]
  int32_t* __restrict__ out = nullptr;           // i32 [T, top_k]
  uint32_t* __restrict__ cand_key = nullptr;     // [T, cand_ld] (merge path, some row has > kTopkSegment keys)
  int32_t* __restrict__ cand_idx = nullptr;      // [T, cand_ld]
  int64_t ld = 0;
  int64_t cand_ld = 0;  // max segments x top_k
  int32_t T = 0;
  int32_t top_k = 0;    // <= kTopkMaxK
  int32_t n_seg = 1;    // segments of the longest row
  // Every score is a bf16 value (the bf16 numerics): an order key's bits 15..0 are then 0 (positive) or all ones
  // (negative), so the fused radix select stops after its second digit (bits 20..10).
  bool bf16_scores = false;
  // Rows of top_k < keys <= kTopkMaxK in one segment: selected by one block radix sort (sort_row_topk) instead of
  // block_topk's bitonic sort (KernelPaths::topk_sort_rows); the same selection and order.
  bool sort_rows = false;
  // Two-level merge (rows of more than kTopkMergeGroup segments): stage 2a merges each group of kTopkMergeGroup
  // segments' candidates into cand2_* [T, cand2_ld] (group g at [g * top_k, ...)), stage 2b merges the groups.
  uint32_t* __restrict__ cand2_key = nullptr;
  int32_t* __restrict__ cand2_idx = nullptr;
  int64_t cand2_ld = 0;  // max groups x top_k; 0: one-level merge
  // Radix select (topk_radix.cuh; rows of more than one segment, replaces the merge stages when radix != nullptr):
  // per row radix_ld words (topk_radix_words: histograms, state, per-chunk tie counts and lists), the counters
  // zeroed by the launcher.
  uint32_t* __restrict__ radix = nullptr;
  int64_t radix_ld = 0;
};


// Compressor pooling: out[i, c] = Σ_j softmax_j(g_j[c]) · a_j[c] over rows j in [offsets[i], offsets[i+1]).
struct SoftmaxPoolParams {
  const float* const* __restrict__ a_rows = nullptr;  // [offsets[n]] device pointers, each f32 [dim]
  const float* const* __restrict__ g_rows = nullptr;  // same count
  const int64_t* __restrict__ offsets = nullptr;      // [n + 1]
  float* __restrict__ out = nullptr;                  // f32 [n, dim]
  int32_t n = 0;
  int32_t dim = 0;
};

// dst[i][0, width) = src[i][0, width) for i < n (no two destinations of one launch alias a source or each other).
struct CopyRowsParams {
  const float* const* __restrict__ src = nullptr;  // [n] device pointers
  float* const* __restrict__ dst = nullptr;        // [n] device pointers
  int32_t n = 0;
  int32_t width = 0;
};

// Interleaved RoPE on the last rope_dim values of each segment of `dim` values; row t (segs segments) at pos[t].
struct RopeParams {
  float* __restrict__ x = nullptr;                // f32 [T, segs, dim], in place
  const int64_t* __restrict__ pos = nullptr;      // [T]
  const float* __restrict__ freqs = nullptr;      // f32 [rope_dim / 2]
  int64_t T = 0;
  int32_t segs = 0;
  int32_t dim = 0;
  int32_t rope_dim = 0;
  bool inverse = false;
  bool round_bf16 = false;
};

// KV cache rounding of rows x f32 [n_rows, dim]: bf16 rounding of every value, then (fp8) FP8 e4m3 fake-quant in
// blocks of 64 of the first nope = dim - rope_dim values.
struct KvRoundParams {
  float* __restrict__ x = nullptr;  // f32 [n_rows, dim], in place
  int64_t n_rows = 0;
  int32_t dim = 0;
  int32_t nope = 0;  // multiple of 64 when fp8
  bool fp8 = false;
};

// Indexer rounding of rows x f32 [n_rows, dim]: bf16 rounding, Walsh-Hadamard (dim a power of two, scaled by
// 1/sqrt(dim), bf16 result) and FP4 e2m1 fake-quant in blocks of 32 (ue8m0 scales).
struct IndexerRoundParams {
  float* __restrict__ x = nullptr;  // f32 [n_rows, dim], in place
  int64_t n_rows = 0;
  int32_t dim = 0;  // power of two, 32 <= dim <= kIndexerRoundMaxDim
  float hadamard_scale = 1.0f;  // f32(1 / sqrt(dim)) computed in double on the host, as the reference
};

}  // namespace dsv4::cuda
