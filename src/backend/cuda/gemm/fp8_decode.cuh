// fp8_decode_kernel: the decode-time FP8 linear in one launch (params.h Fp8DecodeParams): act_quant of the f32
// input fused into the prologue, block-scaled FP8 MMA (mma.sync m16n8k32 e4m3, "swap AB" as fp8_gemm_mma.cuh:
// 16 weight rows per warp are the A operand, tokens the B operand), bf16-rounded f32 output written directly.
//
// Work split: a CTA of 8 warps covers 16*row_warps weight rows; its warps split those rows (row_warps groups of 16)
// and the CTA's K range (k_warps = 8/row_warps sub-ranges). `cluster` CTAs of a thread-block cluster split K
// across SMs, so that even N = 1024 streams its weight from ~256 CTAs. Reduction, all in a fixed order (bitwise
// deterministic, no global workspace): per-warp MMA partials -> shared memory -> per-CTA sum over its k_warps ->
// each cluster rank sums its slice of the outputs over the cluster's CTAs through distributed shared memory.
//
// Weight loads: 16-byte __ldg of the A fragments, double-buffered in registers (the first batch is issued before
// the activation prologue so HBM latency overlaps the quantization). The activation codes live in shared memory
// ([M, kb_per_cta*128 + 16] bytes, padded against bank conflicts); every CTA quantizes the K-blocks it owns for
// all M tokens (bit-exact with act_quant_f32_kernel: x / s for a power-of-two s equals x * (1/s) exactly).
#pragma once
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/gemm/fp8_gemm_limits.h"
#include "backend/cuda/gemm/fp8_gemm_mma.cuh"
#include "backend/cuda/gemm/params.h"

namespace dsv4::cuda {

// Weight K-blocks in flight per register buffer (two buffers): fewer at large token tiles (register pressure).
template <int kTokTiles>
inline constexpr int kFp8DecodeBatch = kTokTiles >= 4 ? 1 : 2;

template <int kTokTiles>
__global__ void __launch_bounds__(kFp8DecodeWarps * 32)
    fp8_decode_kernel(const __grid_constant__ Fp8DecodeParams p) {
  namespace cg = cooperative_groups;
  constexpr int kCols = 8 * kTokTiles;
  constexpr int kRedLd = kCols + 1;
  constexpr int kB = kFp8DecodeBatch<kTokTiles>;
  extern __shared__ __align__(16) uint8_t smem[];

  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int M = p.M;
  const int RW = p.row_warps;
  const int rows_cta = 16 * RW;
  const int rw = warp % RW;
  const int kw = warp / RW;
  const int KW = kFp8DecodeWarps / RW;
  const int n0 = (blockIdx.x / p.cluster) * rows_cta;
  const int nw = n0 + rw * 16;
  const bool row_ok = nw < p.N;
  const int kb_total = p.K / 128;
  const int cb = min(rank * p.kb_per_cta, kb_total);
  const int ce = min(cb + p.kb_per_cta, kb_total);
  const int nkb = ce - cb;
  const int wb = cb + nkb * kw / KW;
  const int we = cb + nkb * (kw + 1) / KW;

  const Fp8DecodeSmem lay(M, p.kb_per_cta, RW, kTokTiles);
  uint8_t* xq = smem;                                               // e4m3 [M, ldq]
  float* xs = reinterpret_cast<float*>(smem + lay.scales);         // f32 [kb_per_cta, M]
  float* red = reinterpret_cast<float*>(smem);                     // f32 [8, 16, kRedLd] (after the MMAs)
  float* cta = reinterpret_cast<float*>(smem + lay.cta);           // f32 [M, rows_cta]

  // A fragments of one K-block: rows g and g+8 of the warp's 16, bytes [t*16, t*16+16) of each 64-wide half.
  // Rows >= n_split come from the stacked second weight (w_hi), if any; a warp's 16 rows never straddle it.
  const bool hi = p.w_hi != nullptr && nw >= p.n_split;
  const int nr = hi ? nw - p.n_split : nw;
  const uint8_t* wa = (hi ? p.w_hi : p.w) + static_cast<int64_t>(row_ok ? nr + g : 0) * p.K + t * 16;
  const uint8_t* wb8 = wa + 8LL * p.K;
  const float* ws_row = (hi ? p.w_scale_hi : p.w_scale) + static_cast<int64_t>(row_ok ? nr / 128 : 0) * p.w_scale_ld;
  const bool active = row_ok && wb < we;
  uint4 a[kB][4];
  float sw[kB];
  auto load_batch = [&](uint4 (&dst)[kB][4], float (&s)[kB], int kb0) {
#pragma unroll
    for (int d = 0; d < kB; ++d) {
      if (kb0 + d < we) {
        const int k = (kb0 + d) * 128;
        dst[d][0] = load_nc16(wa + k);
        dst[d][1] = load_nc16(wb8 + k);
        dst[d][2] = load_nc16(wa + k + 64);
        dst[d][3] = load_nc16(wb8 + k + 64);
        s[d] = __ldg(ws_row + kb0 + d);
      }
    }
  };
  if (active) load_batch(a, sw, wb);
  // The first weight batch is in flight before the wait for the previous kernel (the FP8 codes and the f32 scales
  // DeviceWeights builds on the host are uploaded by copies, never written by a kernel)
  // (common/pdl.cuh); nothing before this line reads or writes anything a kernel produces.
  grid_dependency_sync();

  // Prologue: act_quant of x[:, cb*128 : ce*128) into shared memory, one warp per 1x128 block.
  {
    constexpr float kInvE4m3Max = static_cast<float>(1.0 / 448.0);
    const int blocks = M * nkb;
    for (int b = warp; b < blocks; b += kFp8DecodeWarps) {
      const int m = b / nkb;
      const int kbl = b - m * nkb;
      const float4 f = *reinterpret_cast<const float4*>(p.x + static_cast<int64_t>(m) * p.x_ld +
                                                        static_cast<int64_t>(cb + kbl) * 128 + lane * 4);
      float v[4] = {f.x, f.y, f.z, f.w};
      if (p.x_up != nullptr) {  // clamped SwiGLU prologue (CpuOps::expert_ffn): v = bf16(silu(g') * u' [* weight])
        const float4 u4 = *reinterpret_cast<const float4*>(p.x_up + static_cast<int64_t>(m) * p.x_ld +
                                                           static_cast<int64_t>(cb + kbl) * 128 + lane * 4);
        const float uv[4] = {u4.x, u4.y, u4.z, u4.w};
        const float rw = p.glu_weight != nullptr ? p.glu_weight[m] : 1.0f;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          float h = clamped_swiglu(v[i], uv[i], p.glu_limit);
          if (p.glu_weight != nullptr) h *= rw;
          v[i] = __bfloat162float(__float2bfloat16_rn(h));
        }
      }
      float amax = 0.0f;
      bool bad = false;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        bad |= !isfinite(v[i]);
        amax = fmaxf(amax, fabsf(v[i]));
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
      bad = __any_sync(0xffffffffu, bad);
      const float s = bad ? __uint_as_float(0x7FC00000u) : ue8m0_ceil(__fmul_rn(fmaxf(amax, 1e-4f), kInvE4m3Max));
      uint32_t codes = 0x7F7F7F7Fu;
      if (!bad) {
        // s = 2^e: 1/s is exact (2^-e, subnormal at worst), so x * (1/s) is the correctly rounded x / s.
        const float inv = __frcp_rn(s);
        codes = 0;
#pragma unroll
        for (int i = 0; i < 4; ++i)
          codes |= static_cast<uint32_t>(f32_to_e4m3(fminf(fmaxf(__fmul_rn(v[i], inv), -448.0f), 448.0f)))
                   << (8 * i);
      }
      *reinterpret_cast<uint32_t*>(xq + static_cast<size_t>(m) * lay.ldq + kbl * 128 + lane * 4) = codes;
      if (lane == 0) xs[kbl * M + m] = s;
    }
  }
  __syncthreads();

  float acc[kTokTiles][4];
#pragma unroll
  for (int j = 0; j < kTokTiles; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[j][i] = 0.0f;

  if (active) {
    for (int kb0 = wb; kb0 < we; kb0 += kB) {
      uint4 nxt[kB][4];
      float nsw[kB];
      if (kb0 + kB < we) load_batch(nxt, nsw, kb0 + kB);
#pragma unroll
      for (int d = 0; d < kB; ++d) {
        if (kb0 + d < we) {
          const int kbl = kb0 + d - cb;
          float part[kTokTiles][4];
#pragma unroll
          for (int j = 0; j < kTokTiles; ++j) {
            const int m = j * 8 + g;
            uint4 b0 = make_uint4(0, 0, 0, 0), b1 = make_uint4(0, 0, 0, 0);
            if (m < M) {
              const uint8_t* xr = xq + static_cast<size_t>(m) * lay.ldq + kbl * 128 + t * 16;
              b0 = *reinterpret_cast<const uint4*>(xr);
              b1 = *reinterpret_cast<const uint4*>(xr + 64);
            }
#pragma unroll
            for (int i = 0; i < 4; ++i) part[j][i] = 0.0f;
            mma_e4m3_m16n8k32(part[j], a[d][0].x, a[d][1].x, a[d][0].y, a[d][1].y, b0.x, b0.y);
            mma_e4m3_m16n8k32(part[j], a[d][0].z, a[d][1].z, a[d][0].w, a[d][1].w, b0.z, b0.w);
            mma_e4m3_m16n8k32(part[j], a[d][2].x, a[d][3].x, a[d][2].y, a[d][3].y, b1.x, b1.y);
            mma_e4m3_m16n8k32(part[j], a[d][2].z, a[d][3].z, a[d][2].w, a[d][3].w, b1.z, b1.w);
          }
#pragma unroll
          for (int j = 0; j < kTokTiles; ++j)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              const int m = j * 8 + t * 2 + (i & 1);
              const float sa = m < M ? xs[kbl * M + m] : 0.0f;
              acc[j][i] = fmaf(part[j][i], sw[d] * sa, acc[j][i]);
            }
        }
      }
#pragma unroll
      for (int d = 0; d < kB; ++d) {
        sw[d] = nsw[d];
#pragma unroll
        for (int q = 0; q < 4; ++q) a[d][q] = nxt[d][q];
      }
    }
  }

  // Per-warp partials -> red (aliases the codes: wait for every warp's MMAs first).
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kTokTiles; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = g + (i >= 2 ? 8 : 0);
      const int col = j * 8 + t * 2 + (i & 1);
      red[(warp * 16 + row) * kRedLd + col] = acc[j][i];
    }
  __syncthreads();
  // CTA partial [M, rows_cta]: the k_warps of each row group summed in order.
  for (int idx = threadIdx.x; idx < M * rows_cta; idx += blockDim.x) {
    const int m = idx / rows_cta;
    const int r = idx - m * rows_cta;
    float s = 0.0f;
    for (int q = 0; q < KW; ++q) s += red[((q * RW + r / 16) * 16 + (r & 15)) * kRedLd + m];
    cta[idx] = s;
  }
  cluster.sync();
  // This rank's slice of the outputs, summed over the cluster's CTAs in rank order.
  const int total = M * rows_cta;
  const int per = (total + p.cluster - 1) / p.cluster;
  const int i0 = rank * per;
  const int i1 = min(total, i0 + per);
  for (int idx = i0 + static_cast<int>(threadIdx.x); idx < i1; idx += blockDim.x) {
    float s = 0.0f;
    for (int q = 0; q < p.cluster; ++q) s += cluster.map_shared_rank(cta, q)[idx];
    const int m = idx / rows_cta;
    const int n = n0 + (idx - m * rows_cta);
    if (n < p.N) {
      const float v = __bfloat162float(__float2bfloat16_rn(s));
      if (p.y_hi != nullptr && n >= p.n_split) p.y_hi[static_cast<int64_t>(m) * p.y_hi_ld + (n - p.n_split)] = v;
      else p.y[static_cast<int64_t>(m) * p.y_ld + n] = v;
    }
  }
  cluster.sync();  // keep this CTA's shared memory alive until every rank has read it
}

}  // namespace dsv4::cuda
