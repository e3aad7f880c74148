// mxfp4_gemv_kernel: memory-bound GEMV over MXFP4 expert weights for decode (one token per slot).
// The CTA first dequantizes its token's FP8 activation into shared memory as f32 (e4m3 · 2^k is exact, the
// value the CPU reference's fake-quant produces). The f32 row is stored swizzled: the 16-byte group j of 32-block
// b sits at group j ^ (b & 7), so the 8 lanes of a quarter-warp, which read the same group j of 8 consecutive
// blocks, hit 8 different bank groups. Each lane then streams one 32-element block (16 bytes of nibbles, one
// e8m0 byte) per 1024-wide chunk of a weight row, decodes nibbles through a 16-entry shared table, sums the 32
// products in f32, scales the sum by the block's e8m0 scale, and the warp reduces the row with shuffles.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/moe/params.h"
#include "backend/cuda/moe/plan.h"

namespace dsv4::cuda {

template <int kChunks>  // K / 1024
__global__ void __launch_bounds__(kMxfp4Warps * 32) mxfp4_gemv_kernel(const __grid_constant__ Mxfp4GemvParams p) {
  constexpr int kK = kChunks * 1024;
  __shared__ float4 xs[kK / 4];
  __shared__ float lut[16];
  const int slot = blockIdx.y;
  const int token = p.slot_token[slot];
  const int expert = p.slot_expert[slot];
  if (threadIdx.x < 16) {
    const uint32_t c = threadIdx.x;
    const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    lut[c] = (c & 8) ? -mag[c & 7] : mag[c & 7];
  }
  const uint8_t* xq = p.xq + static_cast<int64_t>(token) * kK;
  float* xs_f = reinterpret_cast<float*>(xs);
  for (int k = threadIdx.x; k < kK; k += blockDim.x) {
    const float v = e4m3_to_f32(xq[k]) * p.x_scale[static_cast<int64_t>(k / 128) * p.T + token];
    const int b = k / 32, j = (k / 4) & 7;
    xs_f[(b * 8 + (j ^ (b & 7))) * 4 + (k & 3)] = v;
  }
  __syncthreads();

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t row_bytes = kK / 2;
  const uint8_t* w_exp = p.w + static_cast<int64_t>(expert) * p.N * row_bytes;
  const uint8_t* s_exp = p.w_scale + static_cast<int64_t>(expert) * p.N * (kK / 32);
  const int row0 = blockIdx.x * kMxfp4RowsPerCta + warp * kMxfp4RowsPerWarp;
#pragma unroll
  for (int r = 0; r < kMxfp4RowsPerWarp; ++r) {
    const int n = row0 + r;
    uint4 wv[kChunks];
    uint8_t sv[kChunks];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int b = c * 32 + lane;  // this lane's 32-block
      wv[c] = __ldg(reinterpret_cast<const uint4*>(w_exp + n * row_bytes + b * 16));
      sv[c] = __ldg(s_exp + static_cast<int64_t>(n) * (kK / 32) + b);
    }
    float acc = 0.0f;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int b = c * 32 + lane;
      const uint32_t words[4] = {wv[c].x, wv[c].y, wv[c].z, wv[c].w};
      float part = 0.0f;
#pragma unroll
      for (int j = 0; j < 8; ++j) {  // 16-byte group j of the f32 row: elements 4j..4j+3 of the block
        const float4 x = xs[b * 8 + (j ^ (b & 7))];
        const uint32_t wd = words[j / 2] >> (16 * (j & 1));  // 2 bytes = 4 nibbles = elements 4j..4j+3
        part = fmaf(lut[wd & 0xF], x.x, part);
        part = fmaf(lut[(wd >> 4) & 0xF], x.y, part);
        part = fmaf(lut[(wd >> 8) & 0xF], x.z, part);
        part = fmaf(lut[(wd >> 12) & 0xF], x.w, part);
      }
      acc = fmaf(part, e8m0_to_f32(sv[c]), acc);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) p.y[static_cast<int64_t>(slot) * p.N + n] = __float2bfloat16_rn(acc);
  }
}

}  // namespace dsv4::cuda
