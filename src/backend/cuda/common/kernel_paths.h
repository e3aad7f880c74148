// KernelPaths: the switches between alternative kernel paths of the CUDA backend. Every fast path is on by
// default; a switch turns one off (to A/B-measure it against the path it replaced, or to fall back if it
// misbehaves on some machine). Initial values come from core/options (DSV4_CUDA_PATHS, e.g.
// "moe_fuse=0,sparse_attn_wide=0"); tests flip them at run time. Read at each dispatch, never cached.
#pragma once
#include <cstdint>
#include <string>

namespace dsv4::cuda {

struct KernelPaths {
  bool linear_fp8_decode = true;        // fused act_quant + FP8 mma decode kernel (M <= its limit)
  int64_t linear_fp8_decode_max_m = -1; // >= 0 overrides the per-shape row limit of that kernel
  bool linear_gemv16 = true;            // 16-byte-load GEMV for bf16/FP8 weights
  bool linear_dense_stacked = true;     // hi/lo bf16 halves of x as one stacked GEMM
  bool linear_bf16_cache = true;        // cached bf16 copy of quantized weights for dense GEMMs
  bool dense_autotune = false;          // time cuBLASLt candidates on first use (else the heuristic's first). Off:
                                        // the timed pick differs between processes and with it the outputs, and it
                                        // measured no faster (H200 run 84: prefill 8K 1.509 s on, 1.487 s off)
  bool sparse_attn_wide = true;         // 64-head CTA sparse attention (else the 16-head kernel)
  bool attn_wgmma = true;               // the 64-head kernel on wgmma (else on mma.sync)
  int64_t attn_wgmma_min_q = 1;         // queries from which the wgmma 64-head kernel runs (below: 16-head kernel)
  bool attn_inline_rows = true;        // the 16-head kernel resolves its key rows (else resolve_rows_kernel first)
  bool attn_cluster = true;             // sparse attention split-K as one thread-block cluster per (query, head
                                        // group), partials merged in DSMEM (else the combine kernel)
  int64_t attn_cluster_split = -1;      // >= 2 forces that many key splits per cluster (sweeps; at most 16)
  int64_t attn_wide_split = 0;          // >= 1 forces that many key splits of the wgmma 64-head attention (sweeps;
                                        // rounded to the splits its tiles fill); 0: the wave cost model
  int64_t attn_combine_warp_rows = 512;  // split-K merge by the warp-per-row kernel from this many (query, head)
                                         // rows (<= 32 splits), else the CTA per (head, query, 128 columns);
                                         // H200 run 248, B=8 (512 rows), ncu: HCA 5 splits 6.55 against 9.35 us,
                                         // CSA 10 splits 9.35 against 9.60 (1024 before)
  bool attn_bulk = true;                // wgmma attention: Fp8Kv rows by cp.async.bulk (else 16-byte cp.asyncs)
  bool attn_combine_pre = true;         // split-K merge of 2 splits, dim <= 512: the warp-per-row kernel with all
                                        // its partials loaded first (else its loop over 128-column chunks)
  int64_t attn_wg_heads = 0;            // heads per CTA of the two-warpgroup wgmma attention (16, 32, 64; 0: the
                                        // fewest whose grid fits on the GPU at once): fewer heads per CTA load
                                        // less of q and store smaller split partials (H200 run 224, B=1, ncu:
                                        // kernel 13.32 us at 64, 10.12-10.22 at 16)
  bool attn_rescale_first = false;      // two-warpgroup wgmma attention: O rescaled on a CTA's first tile too (a
                                        // multiply of +0 by 0; off skips it, bitwise the same)
  int64_t attn_wg3 = 2;                 // >= 1: the wgmma attention as three warpgroups by role
                                        // (sparse_attention_wg3.cuh) where a CTA gets >= that many key tiles
                                        // (every CTA without split-K); 0: the two-warpgroup kernel only
  bool indexer_fast = true;             // tiled indexer scores + multi-CTA top-k (else the first kernels)
  bool topk_two_level = true;           // indexer top-k of > 8 segments: merge groups of 8 side by side, then them
  bool topk_radix = true;               // indexer top-k of > 1 segment: multi-CTA radix select over the whole row
  bool topk_radix_fused = true;         // that radix select as one launch when its grid fits on the GPU at once
  bool topk_sort_rows = true;           // indexer top-k of one-segment rows of <= 2048 keys as one block radix sort
                                        // (cub::BlockRadixSort; else the bitonic sort of block_topk). H200 run 235,
                                        // kernel-only, Flash B=1 4K: 11.2 -> 7.2 us; steps level within the spread
  bool route_rank = true;               // MoE router at small T: one CTA per token, rank by counting (else one warp)
  bool indexer_mma = true;              // bf16 numerics: tensor-core indexer scores (else the CUDA-core tiled kernel)
  bool indexer_wgmma = true;            // those scores on Mxfp4 key rows at head_dim 128 by wgmma (else mma.sync)
  bool moe_gemv = true;                 // weight-streaming MoE decode kernels
  int64_t moe_gemv_warps = 0;           // 1, 2, 4 or 8 forces the warps per CTA of the 2-n-tile MoE gemv; else the
                                        // rule of moe_gemv_warps (plan.cpp: 2 from 4 CTAs per SM, else 8)
  bool moe_wgmma = true;                // prefill MoE GEMM on Hopper wgmma (else the mma.sync tile kernel)
  int64_t moe_wgmma_variant = 0;        // its pipeline (moe_gemm_wgmma.cuh): 0, 2 two producer warpgroups, or
                                        // 3 swap AB, weights as register A (moe_gemm_wgmma_rs.cuh)
  bool moe_fp8 = true;                  // prefill MoE GEMM of MXFP4 experts on FP8 wgmma (moe_gemm_fp8.cuh) when
                                        // the expert set's scales allow it exactly (else the bf16 wgmma kernel)
  bool moe_fp8_stage = true;            // its epilogue's routing weights / output rows and tensor references from
                                        // the producers' shared-memory copies instead of global loads
  bool moe_fp8_pair_stores = true;      // its bf16 epilogue stores two adjacent columns per 4-byte store
  bool moe_fp8_tensor_ref = true;       // its codes relative to one e8m0 reference per expert weight where every
                                        // scale lies within 12 of it (else one per row and 128-K block)
  bool moe_fp8_bf16_io = true;          // moe_experts with both GEMMs on it: h and the slot outputs y stored as
                                        // bf16 (their values are bf16-rounded: exact), half their HBM bytes
  int64_t moe_combine_cols = 8;         // moe_combine_bf16_kernel: columns per thread (4: 8-byte loads, 8: 16-byte)
  bool linear_fp8_gemv = true;          // grouped FP8 GEMV (f32 x, no act_quant) for wo_a at small M (fp8_gemv.cuh)
  int64_t linear_fp8_gemv_max_m = -1;   // >= 0 overrides its row limit (default 4, at most 16)
  int64_t linear_gemv_max_m = -1;       // >= 0 overrides the rows up to which linear, gemv_pair and grouped_linear
                                        // take the GEMV kernels instead of a dense GEMM (ops_linear.cu rules)
  int64_t expert_ffn_fp8_decode_max_n = 1;  // expert_ffn on FP8 weights at n <= this (at most 16; 0: never):
                                        // fp8_decode (w1|w3), fp8_decode (w2). H200 run 73 (one-wave schedules):
                                        // n=1 13.9 vs 19.5 µs on the moe gemv; n=16 46.1 vs 23.5 µs
  int64_t expert_ffn_lt_min_n = 128;    // expert_ffn on FP8 weights at n >= this (0: never): act_quant + cuBLASLt
                                        // block-scaled FP8 GEMMs (the shared expert in prefill), else the MoE kernels
  bool moe_fuse = false;                // fused route+align and in-kernel act quantization: measured slower
                                        // on the H200 (T=1 219 vs 98 µs; register spills), so off by default
  bool hc_mix_staged = true;            // hc_pre/hc_head mix at T > 128: fn staged in shared memory, x prefetched
                                        // (hc_mix_staged_kernel; else hc_mix_kernel, H200 run 97: 2.56 ms at 8K)
  bool hc_fused = true;                 // hc_pre/hc_head at T <= 64: one kernel (split-K mix, last-CTA tail)
  int64_t hc_ctas_per_sm = 2;           // hc mix plans: K splits aim at this many CTA groups per SM over the tiles.
                                        // H200 run 153, 4 against 2: T=64 hc_pre_norm 22.9 vs 25.0 us, T=8 11.7 vs
                                        // 10.5; 3-layer steps at B=8 / 64 within run-to-run noise or slower
  int64_t hc_tiny_max_t = 8;            // hc mix plans: tokens up to which a CTA mixes one token (Tiny), else 4.
                                        // H200 run 149 at T=8: hc_pre_norm 11.1 vs 22.0 us, hc_head 6.6 vs 11.8
                                        // (was 2); at T=64 Tiny was no faster (hc_pre_norm 25.9 vs 24.7 us)
  bool hc_collapse_norm = true;         // hc_fused with the norm: the collapsed row stays in registers for the norm
                                        // (else written, then read back by the norm epilogue); bitwise the same
  bool rope_inline = true;              // rope with positions and frequencies in the kernel parameters
  bool copy_rows_inline = true;         // copy_rows with the pointer lists in the kernel parameters
  bool pdl = true;                      // programmatic dependent launch for every kernel (common/pdl.cuh)
  bool hc_pre_norm = true;              // hc_pre + the sublayer's RMSNorm in one hc_fused launch (T <= 64)
  bool finish_rows = true;              // norm + RoPE + cache rounding of head rows as one kernel (finish_rows.cuh)
  bool graphs = true;                   // decode steps captured and run as CUDA graphs (ops/step_graphs.h)
  bool branches = true;                 // Ops::branch_* on a second stream (ops/context.h); else all in order
  bool branch_pdl = false;              // the first kernel after a fork / join keeps PDL (a programmatic graph edge)
};

KernelPaths& kernel_paths();
// Applies "name=0|1|N,..." to p; unknown names are errors (message names them).
bool apply_kernel_paths(const std::string& spec, KernelPaths& p, std::string* error);

}  // namespace dsv4::cuda
