// Host entry points of the attention kernel family. Launches are asynchronous on `stream`, allocate nothing
// (split-K partials and score rows live in caller-owned workspaces) and are CUDA-graph safe; shapes are
// validated here (the message names the dimension) before any launch.
#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda/attention/params.h"
#include "backend/cuda/attention/plan.h"

namespace dsv4::cuda {

// Runs the path chosen by `plan`; p.part_o / p.part_ml must be set when plan.n_split > 1 and plan.cluster == 0.
void launch_sparse_attention(const SparseAttnParams& p, const SparseAttnPlan& plan, cudaStream_t stream);
// Largest cluster of key splits (16, 8 or 0: none) the device runs of the dim-512 wide (64-head) or 16-head
// tensor-core kernel (SparseAttnOptions::max_cluster_wide / max_cluster); queried once, also sets the cluster
// kernels' attributes.
int sparse_attention_max_cluster(bool wide);
// Indexer scores by the plan's kernel (tiled or the previous one); top-k by the previous one-CTA-per-row kernel
// (launch_topk) or the segmented one (launch_topk_segmented: p.radix, else p.cand_*, set when p.n_seg > 1).
void launch_indexer_scores(const IndexerScoreParams& p, const IndexerPlan& plan, cudaStream_t stream);
void launch_topk(const TopkParams& p, cudaStream_t stream);
void launch_topk_segmented(const TopkSegParams& p, cudaStream_t stream);
void launch_softmax_pool(const SoftmaxPoolParams& p, cudaStream_t stream);
void launch_copy_rows(const CopyRowsParams& p, cudaStream_t stream);
// Key pointer lists from row blocks (and selections) into p.out.
void launch_resolve_rows(const ResolveRowsParams& p, cudaStream_t stream);
void launch_rope(const RopeParams& p, cudaStream_t stream);
void launch_kv_round(const KvRoundParams& p, cudaStream_t stream);
void launch_indexer_round(const IndexerRoundParams& p, cudaStream_t stream);

}  // namespace dsv4::cuda
