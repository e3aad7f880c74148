// fp8_gemm_mma_kernel: block-scaled FP8 GEMM on warp-level tensor-core MMA (mma.sync m16n8k32 e4m3, sm_89+),
// the fallback when cuBLASLt offers no block-scaled algorithm and the decode path for small M.
//
// "Swap AB": the weight is the MMA's A operand (16 weight rows per warp), the tokens are B (8 per MMA tile), so
// decode with M = 1..64 wastes no weight bandwidth. Operands are loaded straight from global memory with 16-byte
// loads and no shared-memory staging: a lane (group g = lane/4, t = lane%4) loads bytes [t*16, t*16+16) of a
// 64-wide K slice for its A rows and its B token. The MMA's fragment layout maps that lane's 16 bytes to K
// slots {t*4..t*4+3, 16+t*4..16+t*4+3} of two consecutive k32 steps; A and B use the same mapping, so each k32
// step sums a permutation of 32 distinct k of the slice and the two steps cover all 64: the dot product is exact
// in any order. Per 128-wide K-block the MMA partial sums are scaled by x_scale·w_scale and added into a
// separate f32 accumulator (spec §2.6). Warps of a CTA split the K-blocks; partials meet in shared memory.
// Correct, not yet tuned: no TMA/wgmma pipeline (prefill should take the cuBLASLt path).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/gemm/fp8_gemm_limits.h"
#include "backend/cuda/gemm/params.h"

namespace dsv4::cuda {

__device__ __forceinline__ void mma_e4m3_m16n8k32(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                                  uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint4 load_nc16(const uint8_t* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }

// kTokTiles: 8-token MMA tiles per CTA (1, 2, 4, 8), i.e. up to 64 tokens.
template <int kTokTiles>
__global__ void __launch_bounds__(mma_max_warps(kTokTiles) * 32)
    fp8_gemm_mma_kernel(const __grid_constant__ Fp8GemmMmaParams p) {
  grid_dependency_sync();
  constexpr int kCols = 8 * kTokTiles;
  constexpr int kRedLd = kCols + 1;  // padded row of the cross-warp reduction buffer
  extern __shared__ float red[];     // f32 [n_warps, 16, kRedLd]
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int n_warps = blockDim.x >> 5;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int n0 = blockIdx.x * kMmaRowsPerCta;
  const int m0 = blockIdx.y * kCols;
  const int kb_total = p.K / 128;
  const int kb_begin = kb_total * warp / n_warps;
  const int kb_end = kb_total * (warp + 1) / n_warps;

  const uint8_t* wa = p.w + static_cast<int64_t>(n0 + g) * p.K + t * 16;
  const uint8_t* wb = wa + 8LL * p.K;
  const uint8_t* xr[kTokTiles];
  bool xvalid[kTokTiles];
#pragma unroll
  for (int j = 0; j < kTokTiles; ++j) {
    const int m = m0 + j * 8 + g;
    xvalid[j] = m < p.M;
    xr[j] = p.xq + static_cast<int64_t>(xvalid[j] ? m : 0) * p.K + t * 16;
  }
  const float* ws_row = p.w_scale + static_cast<int64_t>(n0 / 128) * p.w_scale_ld;

  float acc[kTokTiles][4];
#pragma unroll
  for (int j = 0; j < kTokTiles; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[j][i] = 0.0f;

  for (int kb = kb_begin; kb < kb_end; ++kb) {
    const int k = kb * 128;
    uint4 alo[2], ahi[2], bx[kTokTiles][2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      alo[h] = load_nc16(wa + k + h * 64);
      ahi[h] = load_nc16(wb + k + h * 64);
#pragma unroll
      for (int j = 0; j < kTokTiles; ++j)
        bx[j][h] = xvalid[j] ? load_nc16(xr[j] + k + h * 64) : make_uint4(0, 0, 0, 0);
    }
    float part[kTokTiles][4];
#pragma unroll
    for (int j = 0; j < kTokTiles; ++j) {
#pragma unroll
      for (int i = 0; i < 4; ++i) part[j][i] = 0.0f;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        mma_e4m3_m16n8k32(part[j], alo[h].x, ahi[h].x, alo[h].y, ahi[h].y, bx[j][h].x, bx[j][h].y);
        mma_e4m3_m16n8k32(part[j], alo[h].z, ahi[h].z, alo[h].w, ahi[h].w, bx[j][h].z, bx[j][h].w);
      }
    }
    const float sw = ws_row[kb];
#pragma unroll
    for (int j = 0; j < kTokTiles; ++j)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = m0 + j * 8 + t * 2 + (i & 1);
        const float sa = m < p.M ? p.x_scale[static_cast<int64_t>(kb) * p.M + m] : 0.0f;
        acc[j][i] = fmaf(part[j][i], sw * sa, acc[j][i]);
      }
  }

  // Accumulator (j, i) holds weight row g (+8 for i >= 2) and token column j*8 + t*2 + (i&1).
#pragma unroll
  for (int j = 0; j < kTokTiles; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = g + (i >= 2 ? 8 : 0);
      const int col = j * 8 + t * 2 + (i & 1);
      red[(warp * kMmaRowsPerCta + row) * kRedLd + col] = acc[j][i];
    }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kMmaRowsPerCta * kCols; idx += blockDim.x) {
    const int row = idx % kMmaRowsPerCta;
    const int col = idx / kMmaRowsPerCta;
    const int m = m0 + col;
    if (m >= p.M) continue;
    float s = 0.0f;
    for (int w = 0; w < n_warps; ++w) s += red[(w * kMmaRowsPerCta + row) * kRedLd + col];
    p.y[static_cast<int64_t>(m) * p.N + n0 + row] = __float2bfloat16_rn(s);
  }
}

}  // namespace dsv4::cuda
