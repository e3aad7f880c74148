// moe_gemm_fp8.cuh's weight conversion, bitwise: every e2m1 code in every nibble position of a word, at every
// shift t of the exactness range (0..12), through moe_f8_lut + moe_f8_cvt8 on the device, must decode to exactly
// e2m1(code) · 2^(t - 6) (t = 0 exercises the subnormal 0.5 entry, t = 12 the largest byte 0x7C = 384).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/moe/moe_gemm_fp8.cuh"
#include "core/dtype.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

constexpr int kWords = 16, kShifts = cuda::kMoeF8MaxSpread + 1;

// Word i holds code (i + j) % 16 in nibble j: each code once per position over the 16 words.
__host__ __device__ uint32_t cvt_word(int i) {
  uint32_t w = 0;
  for (int j = 0; j < 8; ++j) w |= static_cast<uint32_t>((i + j) % 16) << (4 * j);
  return w;
}

__global__ void cvt_kernel(uint2* out) {
  const int i = threadIdx.x, t = blockIdx.x;
  uint32_t lo, hi;
  cuda::moe_f8_lut(t, lo, hi);
  out[t * kWords + i] = cuda::moe_f8_cvt8(cvt_word(i), lo, hi);
}

}  // namespace

void test_moe_fp8_convert(Env& env) {
  uint2* d = nullptr;
  DSV4_CUDA_CHECK(cudaMalloc(&d, sizeof(uint2) * kWords * kShifts));
  cvt_kernel<<<kShifts, kWords>>>(d);
  DSV4_CUDA_CHECK(cudaGetLastError());
  std::vector<uint2> h(kWords * kShifts);
  DSV4_CUDA_CHECK(cudaMemcpy(h.data(), d, sizeof(uint2) * h.size(), cudaMemcpyDeviceToHost));
  DSV4_CUDA_CHECK(cudaFree(d));
  size_t bad = 0;
  std::string first;
  for (int t = 0; t < kShifts; ++t)
    for (int i = 0; i < kWords; ++i) {
      const uint32_t w = cvt_word(i);
      const uint2 o = h[static_cast<size_t>(t * kWords + i)];
      for (int j = 0; j < 8; ++j) {
        const uint8_t code = (w >> (4 * j)) & 0xF;
        const uint8_t byte = ((j < 4 ? o.x : o.y) >> (8 * (j % 4))) & 0xFF;
        const float want = std::ldexp(e2m1_to_f32(code), t - 6), got = e4m3_to_f32(byte);
        if (got != want || std::signbit(got) != std::signbit(want)) {
          if (bad++ == 0) first = fmt("t=%d code=%d byte=0x%02x: %g, want %g", t, code, byte, got, want);
        }
      }
    }
  env.report.exact("moe_fp8_convert", "e2m1 x 2^(t-6) -> e4m3, t=0..12, 16 codes x 8 positions",
                   static_cast<size_t>(kShifts * kWords * 8), bad, first);
}

}  // namespace dsv4::gpu_test
