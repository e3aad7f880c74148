// Host entry point of the sampling kernel (sample.cuh). Asynchronous on `stream`, allocates nothing, CUDA-graph
// safe; the caller (CudaSampler) validates the row parameters and owns every buffer.
#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda/sampling/params.h"

namespace dsv4::cuda {

void launch_sample(const SampleParams& p, cudaStream_t stream);

}  // namespace dsv4::cuda
