// Host entry points of the MoE kernel family: asynchronous on `stream`, no allocation, CUDA-graph safe.
#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda/moe/params.h"

namespace dsv4::cuda {

void launch_mxfp4_gemv(const Mxfp4GemvParams& p, cudaStream_t stream);

}  // namespace dsv4::cuda
