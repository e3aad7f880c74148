// Host entry points of the mHC kernels. Launches are asynchronous on `stream`, allocate nothing and are
// CUDA-graph safe; shapes are validated here (the message names the dimension) before any launch. The caller
// builds the plans (plan.h) and owns the partial buffers of hc_mix (sized by HcMixPlan::splits).
#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda/hc/params.h"
#include "backend/cuda/hc/plan.h"

namespace dsv4::cuda {

void launch_hc_mix(const HcMixParams& p, const HcMixPlan& plan, cudaStream_t stream);
// pre: hc_pre (post, comb, Sinkhorn) or hc_head (pre only). p.d_chunk from plan.
void launch_hc_finish(const HcFinishParams& p, int hc, bool pre, const HcRowPlan& plan, cudaStream_t stream);
// hc_pre (pre) / hc_head in one kernel for T <= kHcFusedMaxT: plan from plan_hc_mix (Tiny or Small config),
// p.splits / p.k_slice from it; p.part_* and p.counters (plan.tiles entries, zero) from the caller's workspace.
void launch_hc_fused(const HcFusedParams& p, int hc, bool pre, const HcMixPlan& plan, cudaStream_t stream);
void launch_hc_post(const HcPostParams& p, int hc, const HcRowPlan& plan, cudaStream_t stream);

}  // namespace dsv4::cuda
