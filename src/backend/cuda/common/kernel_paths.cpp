// KernelPaths; see kernel_paths.h.
#include "backend/cuda/common/kernel_paths.h"

#include <cstdlib>
#include <sstream>

#include "core/log.h"
#include "core/options.h"

namespace dsv4::cuda {

bool apply_kernel_paths(const std::string& spec, KernelPaths& p, std::string* error) {
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "1" : item.substr(eq + 1);
    const bool on = value != "0";
    if (name == "linear_fp8_decode") p.linear_fp8_decode = on;
    else if (name == "linear_fp8_decode_max_m") p.linear_fp8_decode_max_m = std::atoll(value.c_str());
    else if (name == "linear_gemv16") p.linear_gemv16 = on;
    else if (name == "linear_dense_stacked") p.linear_dense_stacked = on;
    else if (name == "linear_bf16_cache") p.linear_bf16_cache = on;
    else if (name == "dense_autotune") p.dense_autotune = on;
    else if (name == "sparse_attn_wide") p.sparse_attn_wide = on;
    else if (name == "attn_wgmma") p.attn_wgmma = on;
    else if (name == "attn_wgmma_min_q") p.attn_wgmma_min_q = std::atoll(value.c_str());
    else if (name == "attn_inline_rows") p.attn_inline_rows = on;
    else if (name == "attn_cluster") p.attn_cluster = on;
    else if (name == "attn_cluster_split") p.attn_cluster_split = std::atoll(value.c_str());
    else if (name == "attn_wide_split") p.attn_wide_split = std::atoll(value.c_str());
    else if (name == "attn_combine_warp_rows") p.attn_combine_warp_rows = std::atoll(value.c_str());
    else if (name == "attn_bulk") p.attn_bulk = on;
    else if (name == "attn_combine_pre") p.attn_combine_pre = on;
    else if (name == "attn_wg3") p.attn_wg3 = std::atoll(value.c_str());
    else if (name == "attn_rescale_first") p.attn_rescale_first = on;
    else if (name == "attn_wg_heads") p.attn_wg_heads = std::atoll(value.c_str());
    else if (name == "indexer_fast") p.indexer_fast = on;
    else if (name == "indexer_mma") p.indexer_mma = on;
    else if (name == "indexer_wgmma") p.indexer_wgmma = on;
    else if (name == "route_rank") p.route_rank = on;
    else if (name == "topk_two_level") p.topk_two_level = on;
    else if (name == "topk_radix") p.topk_radix = on;
    else if (name == "topk_radix_fused") p.topk_radix_fused = on;
    else if (name == "topk_sort_rows") p.topk_sort_rows = on;
    else if (name == "moe_gemv") p.moe_gemv = on;
    else if (name == "moe_wgmma") p.moe_wgmma = on;
    else if (name == "moe_fp8") p.moe_fp8 = on;
    else if (name == "moe_fp8_tensor_ref") p.moe_fp8_tensor_ref = on;
    else if (name == "moe_fp8_stage") p.moe_fp8_stage = on;
    else if (name == "moe_fp8_pair_stores") p.moe_fp8_pair_stores = on;
    else if (name == "moe_fp8_bf16_io") p.moe_fp8_bf16_io = on;
    else if (name == "moe_combine_cols") p.moe_combine_cols = std::atoll(value.c_str());
    else if (name == "moe_wgmma_variant") p.moe_wgmma_variant = std::atoll(value.c_str());
    else if (name == "pdl") p.pdl = on;
    else if (name == "graphs") p.graphs = on;
    else if (name == "branches") p.branches = on;
    else if (name == "branch_pdl") p.branch_pdl = on;
    else if (name == "finish_rows") p.finish_rows = on;
    else if (name == "hc_pre_norm") p.hc_pre_norm = on;
    else if (name == "moe_fuse") p.moe_fuse = on;
    else if (name == "moe_gemv_warps") p.moe_gemv_warps = std::atoll(value.c_str());
    else if (name == "linear_fp8_gemv") p.linear_fp8_gemv = on;
    else if (name == "linear_fp8_gemv_max_m") p.linear_fp8_gemv_max_m = std::atoll(value.c_str());
    else if (name == "linear_gemv_max_m") p.linear_gemv_max_m = std::atoll(value.c_str());
    else if (name == "expert_ffn_fp8_decode_max_n") p.expert_ffn_fp8_decode_max_n = std::atoll(value.c_str());
    else if (name == "expert_ffn_lt_min_n") p.expert_ffn_lt_min_n = std::atoll(value.c_str());
    else if (name == "hc_fused") p.hc_fused = on;
    else if (name == "hc_tiny_max_t") p.hc_tiny_max_t = std::atoll(value.c_str());
    else if (name == "hc_ctas_per_sm") p.hc_ctas_per_sm = std::atoll(value.c_str());
    else if (name == "hc_mix_staged") p.hc_mix_staged = on;
    else if (name == "hc_collapse_norm") p.hc_collapse_norm = on;
    else if (name == "rope_inline") p.rope_inline = on;
    else if (name == "copy_rows_inline") p.copy_rows_inline = on;
    else {
      if (error) *error = "unknown CUDA kernel path '" + name + "'";
      return false;
    }
  }
  return true;
}

KernelPaths& kernel_paths() {
  static KernelPaths paths = [] {
    KernelPaths p;
    std::string err;
    if (!apply_kernel_paths(options().cuda_paths, p, &err)) log::warn("DSV4_CUDA_PATHS: " + err);
    return p;
  }();
  return paths;
}

}  // namespace dsv4::cuda
