// Parameter structs of the FP8 GEMM family (spec §2.3 act_quant, §2.6 block-scaled FP8 GEMM). One struct per
// kernel, passed as `const __grid_constant__`; every pointer is __restrict__ with its dtype and shape.
//
// Operand layouts shared by both GEMM paths (cuBLASLt and the mma.sync kernel), chosen to be what cuBLASLt's
// sm_90 block-scaled FP8 modes read:
//   xq       e4m3 [M, K]                  act_quant codes of the bf16 input (row-major)
//   x_scale  f32  [K/128, M]              VEC128 scales, M contiguous ("outer-dim major")
//   w        e4m3 [N, K]                  checkpoint weight (row-major)
//   w_scale  f32  [ceil(N/128), ld]       BLK128x128 scales, ld = round_up(K/128, 4), K-blocks contiguous
//   y        bf16 [M, N]
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace dsv4::cuda {

// act_quant (spec §2.3): per 1x128 block, s = ue8m0_ceil(max(amax, 1e-4) * fl32(1/448)),
// q = e4m3(clamp(x / s, ±448)). A block holding NaN/Inf gets a NaN scale (e8m0 0xFF) and NaN codes 0x7F.
struct ActQuantParams {
  const __nv_bfloat16* __restrict__ x = nullptr;  // bf16 [M, K], K % 128 == 0, rows 8-byte aligned
  uint8_t* __restrict__ q = nullptr;              // e4m3 [M, K]
  float* __restrict__ scale = nullptr;            // f32, block (m, kb) at m * scale_stride_m + kb * scale_stride_kb
  uint8_t* __restrict__ scale_e8m0 = nullptr;     // e8m0 [M, K/128] row-major, or nullptr
  int64_t M = 0;
  int32_t K = 0;
  int64_t scale_stride_m = 1;           // the GEMM layout [K/128, M]: stride_m = 1, stride_kb = M
  int64_t scale_stride_kb = 0;
};

// e8m0 block scales [rows, cols] -> f32 [rows, ld] (columns cols..ld-1 zero): the checkpoint's weight scales
// converted once at load time into the BLK128x128 f32 layout.
struct E8m0ToF32Params {
  const uint8_t* __restrict__ in = nullptr;       // e8m0 [rows, cols]
  float* __restrict__ out = nullptr;              // f32 [rows, ld]
  int32_t rows = 0;
  int32_t cols = 0;
  int32_t ld = 0;                       // >= cols
};

// Block-scaled FP8 GEMM on mma.sync m16n8k32 e4m3 (spec §2.6): y[m, n] = Σ_kb (Σ_k∈kb xq·w) · x_scale · w_scale,
// each K-block partial scaled into a separate f32 accumulator, bf16 output. Grid: x = N/16 weight-row groups,
// y = M tiles of 8*tok_tiles tokens; block = 32*k_splits threads, warp i owning an even share of the K-blocks.
struct Fp8GemmMmaParams {
  const uint8_t* __restrict__ xq = nullptr;       // e4m3 [M, K]
  const float* __restrict__ x_scale = nullptr;    // f32 [K/128, M]
  const uint8_t* __restrict__ w = nullptr;        // e4m3 [N, K]
  const float* __restrict__ w_scale = nullptr;    // f32 [ceil(N/128), w_scale_ld]
  __nv_bfloat16* __restrict__ y = nullptr;        // bf16 [M, N]
  int32_t M = 0;
  int32_t N = 0;                        // multiple of 16
  int32_t K = 0;                        // multiple of 128
  int32_t w_scale_ld = 0;
};

// Fused decode FP8 linear (fp8_decode_kernel, spec §2.3 + §2.6): y[m, n] = bf16(Σ_kb (Σ_k∈kb q·w) · x_scale ·
// w_scale) written as f32, with q / x_scale the act_quant of the f32 input computed in the kernel's prologue
// (bit-exact with act_quant_f32_kernel). M <= 64. Grid: x = row_ctas * cluster CTAs (clusters of `cluster` CTAs
// along K, reduced through distributed shared memory in a fixed order: deterministic, no workspace);
// block = 256 threads = row_warps (16 weight rows each) x k_warps (K sub-splits). See choose_fp8_decode_schedule.
struct Fp8DecodeParams {
  const float* __restrict__ x = nullptr;          // f32 [M, x_ld], 16-byte aligned rows
  const uint8_t* __restrict__ w = nullptr;        // e4m3 [N, K]
  const float* __restrict__ w_scale = nullptr;    // f32 [ceil(N/128), w_scale_ld]
  float* __restrict__ y = nullptr;                // f32 [M, y_ld] (bf16-rounded values)
  int32_t M = 0;                        // 1..64
  int32_t N = 0;                        // multiple of 16
  int32_t K = 0;                        // multiple of 128
  int32_t w_scale_ld = 0;
  int64_t x_ld = 0;                     // multiple of 4
  int64_t y_ld = 0;
  int32_t kb_per_cta = 0;               // K-blocks per cluster rank (the last rank may have fewer)
  int32_t row_warps = 8;                // 16-row groups per CTA (1, 2, 4, 8); k_warps = 8 / row_warps
  int32_t cluster = 1;                  // CTAs per cluster (1, 2, 4, 8), the cross-SM K split
};

}  // namespace dsv4::cuda
