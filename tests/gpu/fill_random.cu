// Device-side random fills for timing-only buffers (weight copies that rotate through memory so repeated calls
// do not run from L2). A splitmix64 hash of (seed, index): deterministic, no state, any size.
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/cuda_check.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// mode 0: raw bytes; 1: e4m3 without the NaN codes 0x7F/0xFF; 2: bf16 uniform(-1, 1).
__global__ void fill_kernel(uint8_t* __restrict__ dst, size_t n, uint64_t seed, int mode) {
  const size_t i = (static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
  if (i >= n) return;
  const uint64_t h = splitmix64(seed ^ (i * 0x2545F4914F6CDD1Dull));
  if (mode == 2) {
    __nv_bfloat16* d = reinterpret_cast<__nv_bfloat16*>(dst);
    for (size_t j = 0; j < 4 && i / 2 + j < n / 2; ++j) {
      const float u = static_cast<float>((h >> (16 * j)) & 0xFFFF) * (2.0f / 65536.0f) - 1.0f;
      d[i / 2 + j] = __float2bfloat16_rn(u);
    }
    return;
  }
  for (size_t j = 0; j < 8 && i + j < n; ++j) {
    uint8_t b = static_cast<uint8_t>(h >> (8 * j));
    if (mode == 1 && (b & 0x7F) == 0x7F) b ^= 1;
    dst[i + j] = b;
  }
}

void fill(void* dst, size_t n, uint64_t seed, int mode, cudaStream_t stream) {
  const size_t units = (n + 7) / 8;
  fill_kernel<<<static_cast<unsigned>((units + 255) / 256), 256, 0, stream>>>(static_cast<uint8_t*>(dst), n, seed,
                                                                             mode);
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace

void fill_random_bytes(void* dst, size_t n, uint64_t seed, cudaStream_t stream) { fill(dst, n, seed, 0, stream); }
void fill_random_e4m3(void* dst, size_t n, uint64_t seed, cudaStream_t stream) { fill(dst, n, seed, 1, stream); }
void fill_random_bf16(void* dst, size_t n, uint64_t seed, cudaStream_t stream) {
  fill(dst, n * 2, seed, 2, stream);
}

}  // namespace dsv4::gpu_test
