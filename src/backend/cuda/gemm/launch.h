// Host entry points of the FP8 GEMM family. All launches are asynchronous on `stream`, allocate nothing
// (workspaces are the caller's) and are CUDA-graph safe. Shapes are validated before launching; a message
// names the dimension that disagrees.
#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda/gemm/params.h"
#include "backend/cuda/gemm/plan.h"

namespace dsv4::cuda {

// bf16 [M, K] -> e4m3 codes + f32 (and optionally e8m0) scales, spec §2.3.
void launch_act_quant(const ActQuantParams& p, cudaStream_t stream);
// e8m0 [rows, cols] -> f32 [rows, ld] (weight-scale conversion at load time).
void launch_e8m0_to_f32(const E8m0ToF32Params& p, cudaStream_t stream);
// y = block-scaled FP8 GEMM (spec §2.6) along the plan's path. workspace: plan.workspace_bytes() bytes.
void launch_fp8_gemm(const Fp8GemmPlan& plan, const Fp8GemmArgs& args, void* workspace, size_t workspace_bytes,
                     cudaStream_t stream);

// Decode FP8 linear with act_quant fused (fp8_decode_kernel), one launch, no workspace; s from
// fp8_decode_schedule_for_device({M, N, K}, sm_count) (or choose_fp8_decode_schedule) and ok.
void launch_fp8_decode(const Fp8DecodeSchedule& s, const Fp8DecodeParams& p, cudaStream_t stream);
// Fp8DecodeParams of y[M, N] (row stride y_ld) = act_quant(x[M, K] (row stride x_ld)) · w[N, K]ᵀ with f32 block
// scales w_scale [ceil(N/128), fp8_weight_scale_ld(K)] on schedule s; the optional second weight / output and the
// SwiGLU prologue stay unset (the callers that need them add them).
inline Fp8DecodeParams fp8_decode_params(const Fp8DecodeSchedule& s, const float* x, int64_t x_ld, const uint8_t* w,
                                         const float* w_scale, float* y, int64_t y_ld, int64_t M, int64_t N,
                                         int64_t K) {
  Fp8DecodeParams p;
  p.x = x;
  p.w = w;
  p.w_scale = w_scale;
  p.y = y;
  p.M = static_cast<int32_t>(M);
  p.N = static_cast<int32_t>(N);
  p.K = static_cast<int32_t>(K);
  p.w_scale_ld = static_cast<int32_t>(fp8_weight_scale_ld(K));
  p.x_ld = x_ld;
  p.y_ld = y_ld;
  p.kb_per_cta = s.kb_per_cta;
  p.row_warps = s.row_warps;
  p.cluster = s.cluster;
  return p;
}
// Clusters of `cluster` CTAs of fp8_decode_kernel<tok_tiles> with smem_bytes of dynamic shared memory that the
// current device runs at once (cudaOccupancyMaxActiveClusters, cached per argument triple); 0 if the query fails.
int fp8_decode_max_clusters(int tok_tiles, int cluster, size_t smem_bytes);
// choose_fp8_decode_schedule with the current device's SM count and cluster capacities, cached per (device,
// shape, sm_count): the linears and expert_ffn ask for it on every call.
Fp8DecodeSchedule fp8_decode_schedule_for_device(const Fp8GemmShape& shape, int sm_count);

// Decode FP8 GEMV on an f32 input without act_quant (fp8_gemv_kernel; grouped_linear wo_a), one launch, no
// workspace. Needs fp8_gemv_supported(); tokens in tiles of 1, 2 or 4 (grid.y over tiles).
bool fp8_gemv_supported(const Fp8GemvParams& p);
void launch_fp8_gemv(const Fp8GemvParams& p, cudaStream_t stream);

}  // namespace dsv4::cuda
