// Host entry points of the elementwise kernels. Launches are asynchronous on `stream`, allocate nothing and
// are CUDA-graph safe; shapes are validated here (the message names the dimension) before any launch.
#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda/elementwise/params.h"

namespace dsv4::cuda {

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream);
// f32 in place; sms sizes the flat grids (CudaContext::sm_count()).
void launch_rms_norm_f32(const RmsNormF32Params& p, cudaStream_t stream);
void launch_f32_map(const F32MapParams& p, F32Map op, int sms, cudaStream_t stream);
void launch_row_gather(const RowGatherParams& p, RowGather mode, int sms, cudaStream_t stream);

}  // namespace dsv4::cuda
