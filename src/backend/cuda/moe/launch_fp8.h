// Host entry point of the FP8 prefill expert GEMM (moe_gemm_fp8.cuh); launch_moe_gemm calls it for p.a_q.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/moe/params.h"

namespace dsv4::cuda {

// Grouped expert GEMM over moe_align tiles of moe_gemm_bm(MmaPrefill) slots, A as e4m3 codes + act_quant scales.
void launch_moe_gemm_fp8(const MoeGemmParams& p, int64_t max_tiles, cudaStream_t stream);

}  // namespace dsv4::cuda
