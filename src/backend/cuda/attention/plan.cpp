// Attention schedules: tensor-core vs generic sparse attention, the split-K factor, indexer chunking.
#include "backend/cuda/attention/plan.h"

#include <algorithm>

#include "core/row_blocks.h"

namespace dsv4::cuda {

size_t sparse_attention_mma_smem(int dim) {
  const size_t q = size_t(kAttnHeadGroup) * (dim + 8) * 2;
  const size_t k = size_t(kAttnKeyTile) * (dim + 8) * 2;
  const size_t p = size_t(kAttnHeadGroup) * (kAttnKeyTile + 8) * 2;
  const size_t red = size_t(2) * (kAttnMmaThreads / 32) * kAttnHeadGroup * 4;
  return q + k + p + red;
}

size_t sparse_attention_wide_smem(int dim) {
  const size_t q = size_t(kAttnWideHeads) * (dim + 8) * 2;                // Qs bf16
  const size_t k = size_t(kAttnWideKeyTile) * (dim + 8) * 2;              // Ks bf16
  const size_t stage = size_t(kAttnWideKeyTile) * dim * 4;                // f32 cp.async staging
  const size_t s = size_t(kAttnWideHeads) * (kAttnWideKeyTile + 8) * 4;   // scores f32
  const size_t pp = size_t(kAttnWideHeads) * (kAttnWideKeyTile + 8) * 2;  // P bf16
  const size_t red = size_t(3) * kAttnWideHeads * 4;                      // alpha, final max, final sum
  return q + k + stage + s + pp + red;
}

size_t sparse_attention_wgmma_smem() {
  const size_t q = size_t(kAttnWideHeads) * kAttnWideDim * 2, k = size_t(kAttnWgKeyTile) * kAttnWideDim * 2;
  const size_t raw_pitch = size_t(fp8kv_row_bytes(kAttnWideDim, 64)) + 8;  // 584 + 8: 16-aligned raw rows
  const size_t ptrs = size_t(kAttnWgStages + 1) * kAttnWgKeyTile * 8;
  return q + kAttnWgKeyBufs * k + size_t(kAttnWgStages) * kAttnWgKeyTile * raw_pitch + ptrs + 1024;
}

namespace {

// Split-K of a dim-kAttnWideDim plan as thread-block clusters of at most `limit` CTAs: cluster_split >= 2
// (sweeps) replaces the split count (splits of whole `granule`-key multiples); 2..limit splits run as a cluster.
void plan_cluster(SparseAttnPlan& p, int64_t dim, int64_t max_keys, int64_t granule, int limit, int cluster_split) {
  if (dim != kAttnWideDim || limit < 2) return;
  if (cluster_split >= 2) {
    const int64_t granules = (max_keys + granule - 1) / granule;
    const int64_t want = std::min<int64_t>({cluster_split, limit, granules});
    const int64_t per = (granules + want - 1) / want;
    p.n_split = static_cast<int>((granules + per - 1) / per);
    p.keys_per_split = p.n_split > 1 ? static_cast<int>(per * granule) : 0;
  }
  if (p.n_split >= 2 && p.n_split <= limit) p.cluster = p.n_split;
}

}  // namespace

SparseAttnPlan plan_sparse_attention(int64_t n_q, int64_t n_heads, int64_t dim, int64_t max_keys,
                                     bool tensor_cores, int sm_count, const SparseAttnOptions& opt) {
  SparseAttnPlan p;
  if (n_heads <= 0 || dim <= 0 || max_keys <= 0) {
    p.unsupported = "sparse_attention: n_heads, dim and the key count must be positive (n_heads " +
                    std::to_string(n_heads) + ", dim " + std::to_string(dim) + ", max keys " +
                    std::to_string(max_keys) + ")";
    return p;
  }
  p.mma = tensor_cores && (dim == 64 || dim == 128 || dim == 256 || dim == 512);
  if (!p.mma) {
    if (max_keys > kAttnGenericMaxKeys) {
      p.unsupported = "sparse_attention: " + std::to_string(max_keys) + " keys for one query exceed the generic "
                      "kernel's maximum " + std::to_string(kAttnGenericMaxKeys) + " (dim " + std::to_string(dim) +
                      ")";
      return p;
    }
    p.smem_bytes = size_t(max_keys) * 4;
    return p;
  }
  // The 64-head CTA reads each key once per query, which pays off with many queries; a single query is
  // latency-bound and the 16-head kernel's 4x more CTAs win (H200 run 4: nq=1 21.3 vs 29.4 µs; nq=64 148 vs 115).
  // (Also for long HCA lists at 1M context: one query over 8320 keys, the 64-head kernel split over the SMs
  // took 51.9 us, the 16-head kernel 41.7 us; H200, 2026-11-28.)
  // That holds for the mma.sync 64-head kernel; the wgmma one beats the 16-head kernel from one query on (run 130,
  // kernel only: B=1 14.7 + 5.6 us combine against 26.3; the HCA layer at 1M 0.220 vs 0.227 ms, run 129).
  const int64_t min_q = opt.allow_wgmma ? opt.wgmma_min_queries : kAttnWideMinQueries;
  p.wide = opt.allow_wide && dim == kAttnWideDim && n_heads % kAttnWideHeads == 0 && n_q >= min_q;
  if (p.wide) {
    // One CTA per (query, 64-head group, key split), one CTA per SM (shared memory). Split count s minimizes
    // waves(s) x (tiles per split + 1), the +1 standing for the per-CTA Q load and prologue.
    p.wgmma = opt.allow_wgmma;
    p.smem_bytes = p.wgmma ? sparse_attention_wgmma_smem() : sparse_attention_wide_smem(static_cast<int>(dim));
    const int64_t base = n_q * (n_heads / kAttnWideHeads);
    const int64_t tiles = (max_keys + kAttnWideKeyTile - 1) / kAttnWideKeyTile;
    const int64_t sms = std::max(sm_count, 1);
    int64_t best_s = 1, best_cost = -1;
    for (int64_t s = 1; s <= std::min<int64_t>(tiles, 64); ++s) {
      const int64_t per = (tiles + s - 1) / s;
      const int64_t used = (tiles + per - 1) / per;  // splits actually non-empty
      if (used != s) continue;
      const int64_t waves = (base * s + sms - 1) / sms;
      const int64_t cost = waves * (per + 1);
      if (best_cost < 0 || cost < best_cost) best_cost = cost, best_s = s;
    }
    if (p.wgmma && opt.wide_split >= 1) {  // forced (sweeps): the splits its tiles fill
      const int64_t want = std::min<int64_t>(opt.wide_split, tiles), per_forced = (tiles + want - 1) / want;
      best_s = (tiles + per_forced - 1) / per_forced;
    }
    const int64_t per = (tiles + best_s - 1) / best_s;
    p.n_split = static_cast<int>(best_s);
    p.keys_per_split = best_s > 1 ? static_cast<int>(per * kAttnWideKeyTile) : 0;
    static_assert(kAttnWgKeyTile == kAttnWideKeyTile, "one split granule for both wide kernels");
    if (!p.wgmma) plan_cluster(p, dim, max_keys, kAttnWideKeyTile, opt.max_cluster_wide, opt.cluster_split);
    return p;
  }
  p.smem_bytes = sparse_attention_mma_smem(static_cast<int>(dim));
  const int64_t base = n_q * ((n_heads + kAttnHeadGroup - 1) / kAttnHeadGroup);
  const int64_t tiles = (max_keys + kAttnKeyTile - 1) / kAttnKeyTile;
  const int64_t want = 2 * int64_t(std::max(sm_count, 1));
  if (base < want && tiles > 1) {
    const int64_t split = std::min<int64_t>(tiles, (want + base - 1) / base);
    const int64_t tiles_per = (tiles + split - 1) / split;
    p.keys_per_split = static_cast<int>(tiles_per * kAttnKeyTile);
    p.n_split = static_cast<int>((tiles + tiles_per - 1) / tiles_per);
  }
  plan_cluster(p, dim, max_keys, 8, opt.max_cluster, opt.cluster_split);  // any split length works here
  return p;
}

size_t indexer_tiled_smem(int64_t n_heads, int64_t head_dim) {
  const int64_t groups = (n_heads + kIdxHeadsPerThread - 1) / kIdxHeadsPerThread;
  const int64_t heads = groups * kIdxHeadsPerThread;
  return size_t(heads * head_dim + head_dim * (kIdxTileKeys + 1) + heads * (kIdxTileKeys + 1)) * 4;
}

size_t indexer_mma_smem(int64_t head_dim) {  // the term matrix is laid out for kIdxMmaMaxHeads
  return size_t(kIdxMmaTileKeys * (head_dim + 8)) * 2 + size_t(kIdxMmaMaxHeads * kIdxMmaTermLd) * 2 +
         size_t(kIdxMmaTileKeys) * sizeof(void*);
}

IndexerPlan plan_indexer(int64_t T, int64_t max_keys, int64_t n_heads, int64_t head_dim, int64_t top_k,
                         int sm_count, bool legacy, bool bf16_scores, bool allow_mma) {
  IndexerPlan p;
  if (n_heads <= 0 || head_dim <= 0 || top_k <= 0 || top_k > kTopkMaxK) {
    p.unsupported = "indexer_topk: n_heads " + std::to_string(n_heads) + ", head_dim " + std::to_string(head_dim) +
                    ", top_k " + std::to_string(top_k) + " (top_k at most " + std::to_string(kTopkMaxK) + ")";
    return p;
  }
  const int64_t row_bytes = std::max<int64_t>(max_keys, 1) * 4;
  p.rows_per_chunk = std::clamp<int64_t>(kIndexerScratchBytes / row_bytes, 1, std::max<int64_t>(T, 1));
  p.rows_per_chunk = std::min<int64_t>(p.rows_per_chunk, 65535);
  const int64_t groups = (n_heads + kIdxHeadsPerThread - 1) / kIdxHeadsPerThread;
  p.tiled = !legacy && head_dim % 8 == 0 && groups <= kIdxMaxHeadGroups &&
            indexer_tiled_smem(n_heads, head_dim) <= 200 * 1024;
  if (p.tiled) {
    p.score_smem = indexer_tiled_smem(n_heads, head_dim);
    p.head_groups = static_cast<int>(groups);
    const int64_t tiles = (std::max<int64_t>(max_keys, 1) + kIdxTileKeys - 1) / kIdxTileKeys;
    const int64_t rows = std::max<int64_t>(std::min(p.rows_per_chunk, T), 1);
    const int64_t want = 4 * int64_t(std::max(sm_count, 1));  // resident CTAs: ~2-3 per SM, a little over
    p.key_ctas = static_cast<int>(std::clamp<int64_t>((want + rows - 1) / rows, 1, std::min<int64_t>(tiles, 65535)));
    p.mma = bf16_scores && allow_mma && n_heads <= 64 && (head_dim == 64 || head_dim == 128);
    if (p.mma) {
      p.mma_smem = indexer_mma_smem(head_dim);
      const int64_t mtiles = (std::max<int64_t>(max_keys, 1) + kIdxMmaTileKeys - 1) / kIdxMmaTileKeys;
      const int64_t mwant = 4 * int64_t(std::max(sm_count, 1));  // 4 resident CTAs per SM (52 KB each)
      p.mma_key_ctas =
          static_cast<int>(std::clamp<int64_t>((mwant + rows - 1) / rows, 1, std::min<int64_t>(mtiles, 65535)));
      // wgmma kernel: 3 resident CTAs per SM (60 KB each), and only where a CTA gets at least 2 tiles: its
      // per-CTA set-up (q into shared memory, the first tile's loads) is not hidden otherwise (run 86: 4K context,
      // B=64, one tile per CTA: 40.9 us against 33.0 us on mma.sync; 1M, B=1, 5.2 tiles per CTA: 67.9 vs 75.8 us).
      const int64_t wwant = 3 * int64_t(std::max(sm_count, 1));
      const int64_t wctas = std::clamp<int64_t>((wwant + rows - 1) / rows, 1, std::min<int64_t>(mtiles, 65535));
      p.wgmma_key_ctas = mtiles >= 2 * wctas ? static_cast<int>(wctas) : 0;
    }
  } else {
    p.score_smem = size_t(n_heads * head_dim + head_dim * (kIndexerKeyTile + 1)) * 4;
    if (p.score_smem > 200 * 1024) {
      p.unsupported = "indexer_topk: n_heads x head_dim = " + std::to_string(n_heads * head_dim) +
                      " does not fit the score kernel's shared memory";
      return p;
    }
  }
  p.segmented_topk = !legacy;
  p.n_seg = static_cast<int>(std::max<int64_t>(1, (max_keys + kTopkSegment - 1) / kTopkSegment));
  return p;
}

}  // namespace dsv4::cuda
