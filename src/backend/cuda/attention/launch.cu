// Launchers of the attention family: validate, pick the compiled instance from the plan, launch, check.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "backend/cuda/common/clusters.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/attention/indexer.cuh"
#include "backend/cuda/attention/topk_radix.cuh"
#include "backend/cuda/attention/indexer_mma.cuh"
#include "backend/cuda/attention/indexer_wgmma.cuh"
#include "backend/cuda/attention/launch.h"
#include "backend/cuda/attention/rowwise.cuh"
#include "backend/cuda/attention/sparse_attention.cuh"
#include "backend/cuda/attention/sparse_attention_wg3.cuh"
#include "backend/cuda/attention/sparse_attention_wgmma.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_paths.h"
#include "core/check.h"
#include "core/row_blocks.h"

namespace dsv4::cuda {
namespace {

// Grid for a grid-stride loop over `work` items of `per_block` each, capped at a few waves.
unsigned grid_for(int64_t work, int64_t per_block) {
  return static_cast<unsigned>(std::clamp<int64_t>((work + per_block - 1) / per_block, 1, 65535));
}

template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    DSV4_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(bytes)));
}

// launch_kernel (common/pdl.cuh) with thread-block clusters of cluster_x CTAs along x.
template <unsigned kThreads, typename Kernel>
void launch_cluster(Kernel kernel, dim3 grid, unsigned cluster_x, size_t smem, cudaStream_t stream,
                    const SparseAttnParams& p) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = cluster_x;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = use_pdl(stream) ? 2 : 1;
  note_launch(reinterpret_cast<const void*>(kernel));
  DSV4_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, p));
}

// The wgmma kernel's instance for (kProf, attn_bulk), its shared-memory limit set on its first use only (setting
// an attribute loads the kernel under lazy module loading: instances never launched stay unloaded).
template <bool kProf, bool kBulk>
auto wgmma_instance() {
  static const bool set = (set_smem(sparse_attention_wgmma_kernel<kProf, kBulk>, kAttnWgSmem), true);
  (void)set;
  return sparse_attention_wgmma_kernel<kProf, kBulk>;
}
template <bool kProf>
auto wgmma_attention_kernel() {
  return kernel_paths().attn_bulk ? wgmma_instance<kProf, true>() : wgmma_instance<kProf, false>();
}

// The three-warpgroup kernel's instance, its shared-memory limit set on first use.
template <bool kProf>
auto wg3_attention_kernel() {
  static const bool set = (set_smem(sparse_attention_wg3_kernel<kProf>, kAttnWg3Smem), true);
  (void)set;
  return sparse_attention_wg3_kernel<kProf>;
}

// A profiling build's launch (measurement only): its phase counters `sym` zeroed, the kernel launched and
// synchronized, the counters returned.
template <size_t kN, typename Kernel>
std::array<unsigned long long, kN> run_profiled(unsigned long long (&sym)[kN], Kernel kernel, const SparseAttnParams& p,
                                                dim3 grid, unsigned threads, size_t smem, cudaStream_t stream) {
  std::array<unsigned long long, kN> v{};
  DSV4_CUDA_CHECK(cudaMemcpyToSymbolAsync(sym, v.data(), sizeof(sym), 0, cudaMemcpyHostToDevice, stream));
  launch_kernel(kernel, grid, threads, smem, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
  DSV4_CUDA_CHECK(cudaMemcpyFromSymbolAsync(v.data(), sym, sizeof(sym), 0, cudaMemcpyDeviceToHost, stream));
  DSV4_CUDA_CHECK(cudaStreamSynchronize(stream));
  return v;
}

// The profiling build of the three-warpgroup kernel, synchronized, its phase cycles to stderr.
void launch_wg3_profiled(const SparseAttnParams& p, dim3 grid, cudaStream_t stream) {
  const auto v = run_profiled(g_attn_wg3_prof, wg3_attention_kernel<true>(), p, grid, kAttnWg3Threads, kAttnWg3Smem,
                              stream);
  const double tiles = std::max(1.0, double(v[3 * kAttnWg3ProfPhases]));
  const double ctas = std::max(1.0, double(v[3 * kAttnWg3ProfPhases + 1]));
  for (int w = 0; w < 3; ++w) {
    const unsigned long long* c = v.data() + kAttnWg3ProfPhases * w;
    std::fprintf(stderr, "[attn_wg3 prof] grid=%ux%ux%u wg%d tiles=%.0f ctas=%.0f | per CTA %.0f | per tile", grid.x,
                 grid.y, grid.z, w, tiles, ctas, c[0] / ctas);
    for (int i = 1; i < 6; ++i) std::fprintf(stderr, " %.0f", c[i] / tiles);
    std::fprintf(stderr, " | per CTA %.0f cycles\n", c[6] / ctas);
  }
}

// The profiling build of the wgmma kernel (DSV4_ATTN_WG_PROF=1), synchronized, its phase cycles to stderr.
void launch_wgmma_profiled(const SparseAttnParams& p, dim3 grid, size_t smem, cudaStream_t stream) {
  const auto v = run_profiled(g_attn_wg_prof, wgmma_attention_kernel<true>(), p, grid, kAttnWgThreads, smem, stream);
  const double tiles = std::max(1.0, double(v[2 * kAttnWgProfPhases]));
  const double ctas = std::max(1.0, double(v[2 * kAttnWgProfPhases + 1]));
  for (int w = 0; w < 2; ++w) {
    const unsigned long long* c = v.data() + kAttnWgProfPhases * w;
    std::fprintf(stderr,
                 "[attn_wg prof] grid=%ux%ux%u wg%d tiles=%.0f ctas=%.0f | per tile: raw-issue %.0f wgmma-issue %.0f "
                 "raw-wait+bar %.0f convert %.0f wgmma-wait %.0f softmax %.0f end-bar %.0f | per CTA: prologue "
                 "%.0f epilogue %.0f cycles (prologue: pointers %.0f q %.0f raw-wait %.0f)\n",
                 grid.x, grid.y, grid.z, w, tiles, ctas, c[0] / tiles, c[1] / tiles, c[2] / tiles, c[3] / tiles,
                 c[4] / tiles, c[5] / tiles, c[6] / tiles, c[7] / ctas, c[8] / ctas, c[9] / ctas, c[10] / ctas,
                 c[11] / ctas);
  }
}

}  // namespace

int sparse_attention_max_cluster(bool wide) {
  auto limit = [](auto kernel, unsigned threads, size_t smem) {
    set_smem(kernel, smem);
    DSV4_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
    for (int size : {kAttnMaxCluster, 8})
      if (max_active_clusters(reinterpret_cast<const void*>(kernel), threads, smem, size) > 0) return size;
    return 0;
  };
  static const int wide_limit = limit(sparse_attention_wide_kernel<kAttnWideDim, true>, kAttnWideThreads,
                                      sparse_attention_wide_smem(kAttnWideDim));
  static const int narrow_limit = limit(sparse_attention_mma_kernel<kAttnWideDim, true>, kAttnMmaThreads,
                                        sparse_attention_mma_smem(kAttnWideDim));
  return wide ? wide_limit : narrow_limit;
}

void launch_sparse_attention(const SparseAttnParams& p, const SparseAttnPlan& plan, cudaStream_t stream) {
  check(plan.unsupported.empty(), plan.unsupported);
  check(p.n_q >= 0 && p.n_q <= 65535, [&] { return "sparse_attention: n_q " + std::to_string(p.n_q) + " out of range"; });
  if (p.n_q == 0) return;
  check(p.keys || (plan.mma && !plan.wide && p.rows.desc && p.rows.blocks),
        "sparse_attention: key pointers missing (only the 16-head kernel resolves its rows itself)");
  if (!plan.mma) {
    check(p.n_split == 1, "sparse_attention: the generic kernel has no split-K");
    auto kernel = sparse_attention_kernel<kAttnGenericThreads>;
    set_smem(kernel, plan.smem_bytes);
    launch_kernel(kernel, dim3(static_cast<unsigned>(p.n_heads), static_cast<unsigned>(p.n_q)), kAttnGenericThreads,
             plan.smem_bytes, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  check(p.n_split == plan.n_split && (p.n_split == 1 || plan.cluster > 0 || (p.part_o && p.part_ml)),
        "sparse_attention: split-K partial buffers missing");
  if (plan.cluster > 0) {  // split-K merged inside each cluster: no partials, no combine kernel
    const int limit = sparse_attention_max_cluster(plan.wide);
    check(plan.cluster == p.n_split && p.n_split >= 2 && p.n_split <= limit && p.dim == kAttnWideDim &&
              (!plan.wide || (p.n_heads % kAttnWideHeads == 0 && p.keys_per_split % kAttnWideKeyTile == 0)),
          [&] { return "sparse_attention: cluster of " + std::to_string(plan.cluster) + " splits (n_split " +
              std::to_string(p.n_split) + ", device limit " + std::to_string(limit) + ") with dim " +
              std::to_string(p.dim) + ", " + std::to_string(p.n_heads) + " heads"; });
    const unsigned ns = static_cast<unsigned>(p.n_split), nq = static_cast<unsigned>(p.n_q);
    if (plan.wide) {
      const dim3 grid(ns, static_cast<unsigned>(p.n_heads / kAttnWideHeads), nq);
      launch_cluster<kAttnWideThreads>(sparse_attention_wide_kernel<kAttnWideDim, true>, grid, ns, plan.smem_bytes,
                                       stream, p);
    } else {
      const dim3 grid(ns, static_cast<unsigned>((p.n_heads + kAttnHeadGroup - 1) / kAttnHeadGroup), nq);
      launch_cluster<kAttnMmaThreads>(sparse_attention_mma_kernel<kAttnWideDim, true>, grid, ns, plan.smem_bytes,
                                      stream, p);
    }
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  if (plan.wide) {
    check(p.dim == kAttnWideDim && p.n_heads % kAttnWideHeads == 0,
          [&] { return "sparse_attention: wide path compiled for dim " + std::to_string(kAttnWideDim) +
              " and a multiple of " + std::to_string(kAttnWideHeads) + " heads, got dim " + std::to_string(p.dim) +
              ", " + std::to_string(p.n_heads) + " heads"; });
    check(p.n_split == 1 || p.keys_per_split % kAttnWideKeyTile == 0, "sparse_attention: bad wide split");
    const dim3 wgrid(static_cast<unsigned>(p.n_split), static_cast<unsigned>(p.n_heads / kAttnWideHeads),
                     static_cast<unsigned>(p.n_q));
    if (plan.wgmma) {
      check(plan.smem_bytes == kAttnWgSmem, "sparse_attention: wgmma plan and kernel disagree on shared memory");
      check(p.kv_row_bytes == 0 || (p.rope_dim == 64 && p.kv_row_bytes == fp8kv_row_bytes(kAttnWideDim, 64)),
            [&] { return "sparse_attention: the wgmma kernel needs 584-byte Fp8Kv rows with 64 RoPE values (got " +
                std::to_string(p.kv_row_bytes) + " bytes, rope " + std::to_string(p.rope_dim) + ")"; });
      // DSV4_ATTN_WG_PROF=1: the clock64-instrumented kernel; each launch is synchronized and its phase cycles
      // printed to stderr (measurement only).
      static const bool prof = [] {
        const char* e = std::getenv("DSV4_ATTN_WG_PROF");
        return e && e[0] == '1';
      }();
      const int64_t wg3 = kernel_paths().attn_wg3;
      const bool use_wg3 = wg3 > 0 && kernel_paths().attn_bulk &&
                           (p.n_split == 1 || p.keys_per_split / kAttnWgKeyTile >= wg3);
      // The two-warpgroup kernel's heads per CTA (attn_wg_heads; 0: the fewest whose grid is one wave, one CTA
      // per SM by shared memory).
      int64_t hpc = kernel_paths().attn_wg_heads;
      check(hpc == 0 || hpc == 16 || hpc == 32 || hpc == 64, [&] {
        return "sparse_attention: attn_wg_heads " + std::to_string(hpc) + " is not 0, 16, 32 or 64";
      });
      if (hpc == 0) {
        const int64_t ctas = int64_t(wgrid.x) * wgrid.z * p.n_heads, sms = current_sm_count();
        hpc = ctas / 16 <= sms ? 16 : ctas / 32 <= sms ? 32 : 64;
      }
      SparseAttnParams q = p;
      q.heads_per_cta = static_cast<int32_t>(hpc);
      q.rescale_first = kernel_paths().attn_rescale_first;
      const dim3 grid2(wgrid.x, static_cast<unsigned>(p.n_heads / hpc), wgrid.z);
      if (prof) {  // (then the split-K merge below, as for the default instance)
        if (use_wg3)
          launch_wg3_profiled(p, wgrid, stream);
        else
          launch_wgmma_profiled(q, grid2, plan.smem_bytes, stream);
      } else if (use_wg3) {
        launch_kernel(wg3_attention_kernel<false>(), wgrid, kAttnWg3Threads, kAttnWg3Smem, stream, p);
      } else {
        launch_kernel(wgmma_attention_kernel<false>(), grid2, kAttnWgThreads, plan.smem_bytes, stream, q);
      }
    } else {
      auto kernel = sparse_attention_wide_kernel<kAttnWideDim>;
      static const bool smem_set = (set_smem(kernel, plan.smem_bytes), true);  // constant size: set once
      (void)smem_set;
      launch_kernel(kernel, wgrid, kAttnWideThreads, plan.smem_bytes, stream, p);
    }
    DSV4_CUDA_CHECK_LAUNCH();
  } else {
    const dim3 grid(static_cast<unsigned>(p.n_split),
                    static_cast<unsigned>((p.n_heads + kAttnHeadGroup - 1) / kAttnHeadGroup),
                    static_cast<unsigned>(p.n_q));
    auto launch = [&]<int kDim>() {
      auto kernel = sparse_attention_mma_kernel<kDim>;
      set_smem(kernel, plan.smem_bytes);
      launch_kernel(kernel, grid, kAttnMmaThreads, plan.smem_bytes, stream, p);
    };
    switch (p.dim) {
      case 64: launch.template operator()<64>(); break;
      case 128: launch.template operator()<128>(); break;
      case 256: launch.template operator()<256>(); break;
      case 512: launch.template operator()<512>(); break;
      default: panic("sparse_attention: tensor-core path compiled for dim 64/128/256/512, got " + std::to_string(p.dim));
    }
    DSV4_CUDA_CHECK_LAUNCH();
  }
  // Split-K merge: one warp per (query, head) row when there are many rows (run 131: 64 queries x 64 heads x 2
  // splits 9.9 us against the CTA-per-row kernel's 23.6; run 248: 8 queries, 5 / 10 splits, 6.55 / 9.35 against
  // 9.35 / 9.60), else the CTA per (head, query, 128 columns), which spreads one query's 64 rows over more SMs
  // (1 query x 20 splits: 5.6 us against the warp kernel's 15.3). The row limit is attn_combine_warp_rows.
  const int64_t rows = int64_t(p.n_q) * p.n_heads;
  if (p.n_split > 1 && p.n_split <= 32 && p.dim % 128 == 0 && rows >= kernel_paths().attn_combine_warp_rows) {
    constexpr int kWarps = 8;
    const unsigned ctas = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
    if (p.n_split == 2 && p.dim <= 512 && kernel_paths().attn_combine_pre)
      launch_kernel(sparse_attention_combine_warp_kernel<kWarps, 2>, ctas, kWarps * 32, 0, stream, p);
    else
      launch_kernel(sparse_attention_combine_warp_kernel<kWarps>, ctas, kWarps * 32, 0, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
  } else if (p.n_split > 1) {
    const unsigned col_ctas = static_cast<unsigned>(std::clamp<int64_t>((p.dim + 127) / 128, 1, 8));
    launch_kernel(sparse_attention_combine_kernel<128>,
                  dim3(static_cast<unsigned>(p.n_heads), static_cast<unsigned>(p.n_q), col_ctas), 128, 0, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
  }
}

void launch_indexer_scores(const IndexerScoreParams& p, const IndexerPlan& plan, cudaStream_t stream) {
  check(p.T >= 0 && p.T <= 65535, [&] { return "indexer_topk: " + std::to_string(p.T) + " query rows per launch"; });
  check(p.ld >= p.max_keys, "indexer_topk: score row stride below max_keys");
  if (p.T == 0 || p.max_keys == 0) return;
  // Mxfp4 key rows are read by the tensor-core kernel only (CudaOps::indexer_topk decodes them to f32 rows for
  // the other paths).
  check(!p.packed || plan.mma, "indexer_topk: Mxfp4 key rows need the tensor-core score kernel");
  if (plan.mma && (p.vec4 || p.packed)) {  // unaligned f32 key rows: the tiled kernel below
    check(p.round_bf16 && p.n_heads <= kIdxMmaMaxHeads && (p.head_dim == 64 || p.head_dim == 128),
          "indexer_topk: tensor-core scores need the bf16 numerics, <= 64 heads and head_dim 64 or 128");
    if (p.packed && p.head_dim == 128 && plan.wgmma_key_ctas > 0 && kernel_paths().indexer_wgmma) {
      static const bool wg_smem_set = (set_smem(indexer_score_wgmma_kernel, kIdxWgmmaSmem), true);
      (void)wg_smem_set;
      launch_kernel(indexer_score_wgmma_kernel,
                    dim3(static_cast<unsigned>(plan.wgmma_key_ctas), static_cast<unsigned>(p.T)), kIdxMmaThreads,
                    kIdxWgmmaSmem, stream, p);
      DSV4_CUDA_CHECK_LAUNCH();
      return;
    }
    const dim3 grid(static_cast<unsigned>(plan.mma_key_ctas), static_cast<unsigned>(p.T));
    auto run = [&]<int kHd, bool kPacked>() {
      auto kernel = indexer_score_mma_kernel<kHd, kPacked>;
      static const bool smem_set = (set_smem(kernel, indexer_mma_smem(kHd)), true);
      (void)smem_set;
      launch_kernel(kernel, grid, kIdxMmaThreads, plan.mma_smem, stream, p);
    };
    if (p.head_dim == 128) {
      if (p.packed) run.template operator()<128, true>();
      else run.template operator()<128, false>();
    } else {
      if (p.packed) run.template operator()<64, true>();
      else run.template operator()<64, false>();
    }
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  if (plan.tiled) {
    check(p.head_dim % 8 == 0 && p.n_heads <= plan.head_groups * kIdxHeadsPerThread &&
              plan.head_groups <= kIdxMaxHeadGroups,
          [&] { return "indexer_topk: tiled score kernel needs head_dim % 8 == 0 and n_heads <= " +
              std::to_string(kIdxMaxHeadGroups * kIdxHeadsPerThread); });
    set_smem(indexer_score_tiled_kernel, plan.score_smem);
    const dim3 grid(static_cast<unsigned>(plan.key_ctas), static_cast<unsigned>(p.T));
    launch_kernel(indexer_score_tiled_kernel, grid, static_cast<unsigned>(plan.head_groups * 32), plan.score_smem, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  set_smem(indexer_score_kernel, plan.score_smem);
  const dim3 grid(static_cast<unsigned>((p.max_keys + kIndexerKeyTile - 1) / kIndexerKeyTile),
                  static_cast<unsigned>(p.T));
  launch_kernel(indexer_score_kernel, grid, kIndexerKeyTile, plan.score_smem, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_topk_segmented(const TopkSegParams& p, cudaStream_t stream) {
  check(p.top_k > 0 && p.top_k <= kTopkMaxK,
        [&] { return "indexer_topk: top_k " + std::to_string(p.top_k) + " outside 1.." + std::to_string(kTopkMaxK); });
  check(p.T >= 0 && p.T <= 65535 && p.n_seg >= 1 && p.n_seg <= 65535, "indexer_topk: segmented top-k grid");
  check(p.n_seg == 1 || p.radix || (p.cand_key && p.cand_idx && p.cand_ld >= int64_t(p.n_seg) * p.top_k),
        "indexer_topk: segmented top-k candidate buffers missing");
  if (p.T == 0) return;
  const size_t smem = indexer_detail::kTopkSegSmem;
  static const bool smem_set = (DSV4_CUDA_CHECK(cudaFuncSetAttribute(topk_segment_kernel,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem))),
                                DSV4_CUDA_CHECK(cudaFuncSetAttribute(topk_merge_kernel,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem))),
                                DSV4_CUDA_CHECK(cudaFuncSetAttribute(topk_group_merge_kernel,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem))),
                                DSV4_CUDA_CHECK(cudaFuncSetAttribute(topk_group_final_kernel,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem))),
                                true);
  (void)smem_set;
  const dim3 seg_grid(static_cast<unsigned>(p.n_seg), static_cast<unsigned>(p.T));
  if (p.radix && p.n_seg > 1) {  // rows of one segment: pass 1 selects them as topk_segment_kernel does
    check(p.radix_ld >= topk_radix_words(p.n_seg, p.top_k), "indexer_topk: radix top-k row area too small");
    static const bool radix_smem_set = (DSV4_CUDA_CHECK(cudaFuncSetAttribute(topk_radix_pass_kernel<1>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem))),
                                        DSV4_CUDA_CHECK(cudaFuncSetAttribute(topk_radix_final_kernel,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem))),
                                        true);
    (void)radix_smem_set;
    // Zero each row's histograms, state words and tie counts (the lists need no clearing).
    const size_t zero_bytes = static_cast<size_t>(kTopkRadixHist + kTopkRadixState + topk_radix_chunks(p.n_seg)) * 4;
    DSV4_CUDA_CHECK(cudaMemset2DAsync(p.radix, static_cast<size_t>(p.radix_ld) * 4, 0, zero_bytes,
                                      static_cast<size_t>(p.T), stream));
    // One launch when every CTA can be resident at once (its rows' CTAs wait on each other).
    static const int64_t fused_capacity = [&] {
      DSV4_CUDA_CHECK(cudaFuncSetAttribute(topk_radix_fused_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(smem)));
      int per_sm = 0, dev = 0, sms = 0;
      DSV4_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, topk_radix_fused_kernel, kTopkThreads,
                                                                    smem));
      DSV4_CUDA_CHECK(cudaGetDevice(&dev));
      DSV4_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
      return int64_t(per_sm) * sms;
    }();
    const dim3 chunk_grid(static_cast<unsigned>(topk_radix_chunks(p.n_seg)), static_cast<unsigned>(p.T));
    if (kernel_paths().topk_radix_fused && int64_t(p.T) * topk_radix_chunks(p.n_seg) <= fused_capacity) {
      launch_kernel(topk_radix_fused_kernel, chunk_grid, kTopkThreads, smem, stream, p);
      DSV4_CUDA_CHECK_LAUNCH();
      return;
    }
    launch_kernel(topk_radix_pass_kernel<1>, chunk_grid, kTopkThreads, smem, stream, p);
    launch_kernel(topk_radix_pass_kernel<2>, chunk_grid, kTopkThreads, 0, stream, p);
    launch_kernel(topk_radix_pass_kernel<3>, chunk_grid, kTopkThreads, 0, stream, p);
    launch_kernel(topk_radix_collect_kernel, chunk_grid, kTopkThreads, 0, stream, p);
    launch_kernel(topk_radix_final_kernel, static_cast<unsigned>(p.T), kTopkThreads, smem, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  launch_kernel(topk_segment_kernel, seg_grid, kTopkThreads, smem, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
  const bool two_level = p.n_seg > kTopkMergeGroup && p.cand2_ld > 0;
  check(!two_level || (p.cand2_key && p.cand2_idx &&
                       p.cand2_ld >= int64_t((p.n_seg + kTopkMergeGroup - 1) / kTopkMergeGroup) * p.top_k),
        "indexer_topk: two-level merge buffers missing");
  // Rows of 2..kTopkMergeGroup segments (all of them without the two-level buffers); one row of more segments
  // takes the two-level path only.
  if (p.n_seg > 1 && !(two_level && p.T == 1)) {
    launch_kernel(topk_merge_kernel, static_cast<unsigned>(p.T), kTopkThreads, smem, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
  }
  if (two_level) {
    const unsigned groups = static_cast<unsigned>((p.n_seg + kTopkMergeGroup - 1) / kTopkMergeGroup);
    launch_kernel(topk_group_merge_kernel, dim3(groups, static_cast<unsigned>(p.T)), kTopkThreads, smem, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
    launch_kernel(topk_group_final_kernel, static_cast<unsigned>(p.T), kTopkThreads, smem, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
  }
}

void launch_topk(const TopkParams& p, cudaStream_t stream) {
  check(p.top_k > 0 && p.top_k <= kTopkMaxK,
        [&] { return "indexer_topk: top_k " + std::to_string(p.top_k) + " outside 1.." + std::to_string(kTopkMaxK); });
  check(p.T >= 0, "indexer_topk: negative row count");
  if (p.T == 0) return;
  launch_kernel(topk_kernel, static_cast<unsigned>(p.T), kTopkThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_softmax_pool(const SoftmaxPoolParams& p, cudaStream_t stream) {
  check(p.n >= 0 && p.dim > 0, [&] { return "softmax_pool: dim " + std::to_string(p.dim); });
  if (p.n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((p.dim + 127) / 128, 65535));
  launch_kernel(softmax_pool_kernel<128>, dim3(static_cast<unsigned>(p.n), blocks), 128, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_copy_rows(const CopyRowsParams& p, cudaStream_t stream) {
  check(p.width >= 0, [&] { return "copy_rows: width " + std::to_string(p.width); });
  if (p.n == 0 || p.width == 0) return;
  launch_kernel(copy_rows_kernel<128>, grid_for(p.n, 1), 128, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_resolve_rows(const ResolveRowsParams& p, cudaStream_t stream) {
  check(p.n >= 0 && p.n <= 65535, [&] { return "resolve_rows: " + std::to_string(p.n) + " lists out of range"; });
  if (p.n == 0 || p.max_len == 0) return;
  const dim3 grid(std::min<unsigned>(static_cast<unsigned>((p.max_len + 255) / 256), 1024u),
                  static_cast<unsigned>(p.n));
  launch_kernel(resolve_rows_kernel, grid, 256, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_rope(const RopeParams& p, cudaStream_t stream) {
  check(p.rope_dim >= 0 && p.rope_dim % 2 == 0 && p.rope_dim <= p.dim,
        [&] { return "rope: rope_dim " + std::to_string(p.rope_dim) + " with dim " + std::to_string(p.dim); });
  const int64_t work = p.T * p.segs * (p.rope_dim / 2);
  if (work == 0) return;
  launch_kernel(rope_kernel, grid_for(work, 256), 256, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_kv_round(const KvRoundParams& p, cudaStream_t stream) {
  check(p.dim > 0 && p.nope >= 0 && p.nope <= p.dim, [&] { return "kv_round: dim " + std::to_string(p.dim); });
  check(!p.fp8 || p.nope % 64 == 0, [&] { return "kv_round: no-RoPE width " + std::to_string(p.nope) +
                                        " is not a multiple of the FP8 block (64)"; });
  const int64_t units = p.n_rows * ((p.dim + 63) / 64);
  if (units == 0) return;
  launch_kernel(kv_round_kernel, grid_for(units, 8), 256, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_indexer_round(const IndexerRoundParams& p, cudaStream_t stream) {
  check(p.dim >= 32 && p.dim <= kIndexerRoundMaxDim && (p.dim & (p.dim - 1)) == 0,
        [&] { return "indexer_round: dim " + std::to_string(p.dim) + " is not a power of two in 32.." +
            std::to_string(kIndexerRoundMaxDim); });
  if (p.n_rows == 0) return;
  if (p.dim <= 512) {  // one warp per row (indexer_round_warp_kernel)
    auto launch = [&]<int kV>() {
      launch_kernel(indexer_round_warp_kernel<kV>, grid_for((p.n_rows + 7) / 8, 1), 256, 0, stream, p);
    };
    switch (p.dim) {
      case 32: launch.template operator()<1>(); break;
      case 64: launch.template operator()<2>(); break;
      case 128: launch.template operator()<4>(); break;
      case 256: launch.template operator()<8>(); break;
      default: launch.template operator()<16>(); break;
    }
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  auto kernel = indexer_round_kernel<128>;
  const size_t smem = size_t(p.dim) * 4;
  set_smem(kernel, smem);
  launch_kernel(kernel, grid_for(p.n_rows, 1), 128, smem, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
