// Attention schedules: tensor-core vs generic sparse attention, the split-K factor, indexer chunking.
#include "backend/cuda/attention/plan.h"

#include <algorithm>

namespace dsv4::cuda {

size_t sparse_attention_mma_smem(int dim) {
  const size_t q = size_t(kAttnHeadGroup) * (dim + 8) * 2;
  const size_t k = size_t(kAttnKeyTile) * (dim + 8) * 2;
  const size_t p = size_t(kAttnHeadGroup) * (kAttnKeyTile + 8) * 2;
  const size_t red = size_t(2) * (kAttnMmaThreads / 32) * kAttnHeadGroup * 4;
  return q + k + p + red;
}

SparseAttnPlan plan_sparse_attention(int64_t n_q, int64_t n_heads, int64_t dim, int64_t max_keys,
                                     bool tensor_cores, int sm_count) {
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
  return p;
}

IndexerPlan plan_indexer(int64_t T, int64_t max_keys, int64_t n_heads, int64_t head_dim, int64_t top_k) {
  IndexerPlan p;
  if (n_heads <= 0 || head_dim <= 0 || top_k <= 0 || top_k > kTopkMaxK) {
    p.unsupported = "indexer_topk: n_heads " + std::to_string(n_heads) + ", head_dim " + std::to_string(head_dim) +
                    ", top_k " + std::to_string(top_k) + " (top_k at most " + std::to_string(kTopkMaxK) + ")";
    return p;
  }
  p.score_smem = size_t(n_heads * head_dim + head_dim * (kIndexerKeyTile + 1)) * 4;
  if (p.score_smem > 200 * 1024) {
    p.unsupported = "indexer_topk: n_heads x head_dim = " + std::to_string(n_heads * head_dim) +
                    " does not fit the score kernel's shared memory";
    return p;
  }
  const int64_t row_bytes = std::max<int64_t>(max_keys, 1) * 4;
  p.rows_per_chunk = std::clamp<int64_t>(kIndexerScratchBytes / row_bytes, 1, std::max<int64_t>(T, 1));
  return p;
}

}  // namespace dsv4::cuda
