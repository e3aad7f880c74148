// Host check of an MXFP4 expert set's e8m0 scales for the CUDA FP8 prefill expert GEMM
// (backend/cuda/moe/moe_gemm_fp8.cuh), and that kernel's per-weight tensor references. Plain C++ in the CPU
// backend library so that the CPU suite tests it (tests/unit/backend); ops_moe.cu calls it once per expert set.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "weights/model_weights.h"

namespace dsv4::backend {

// Whether every MXFP4 weight of the experts has, in each (row, 128-wide K block), e8m0 scales within
// kMoeF8MaxSpread (12) of the block's largest and that largest in [7, 254]: moe_gemm_fp8.cuh's exactness
// condition (codes rescaled into e4m3 relative to the block's largest scale, factor 2^(smax - 133) a normal f32).
// One pass over the host scale bytes per expert set (6 % of the expert bytes). When, besides, every weight's
// scales lie within 12 of its largest R, with R in [64, 196] (the kernel's unscaled sums, true value · 2^(133 - R),
// then stay far inside f32), `tensor_ref` gets the kernel's tensor references: [E] gate_up words R1 | R3 << 8,
// then [E] down words R2; else it is left empty.
bool fp8_scales_ok(std::span<const weights::ExpertWeights> experts, std::vector<uint32_t>& tensor_ref);

}  // namespace dsv4::backend
