// Host entry points of the elementwise kernels. Launches are asynchronous on `stream`, allocate nothing and
// are CUDA-graph safe; shapes are validated here (the message names the dimension) before any launch.
#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda/elementwise/params.h"

namespace dsv4::cuda {

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream);

}  // namespace dsv4::cuda
