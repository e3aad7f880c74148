// Fill kernel behind DeviceMemory::fill (context.cpp).
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/cuda_check.h"

namespace dsv4::cuda {
namespace {
__global__ void fill_kernel(float* __restrict__ dst, float value, int64_t n) {
  grid_dependency_sync();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = value;
}
}  // namespace

void fill_f32(float* dst, float value, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  int blocks = static_cast<int>(std::min<int64_t>((n + 255) / 256, 4096));
  launch_kernel(fill_kernel, blocks, 256, 0, stream, dst, value, n);
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
