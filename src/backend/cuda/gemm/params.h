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
  const __nv_bfloat16* __restrict__ x = nullptr;  // bf16 [M, K], K % 128 == 0, 16-byte aligned
  uint8_t* __restrict__ q = nullptr;              // e4m3 [M, K], 8-byte aligned
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
  // Optional second weight stacked below the first (expert_ffn's w1 | w3 in one launch): output rows
  // [n_split, N) read w_hi / w_scale_hi at row n - n_split. n_split % 16 == 0; 0 = a single weight.
  const uint8_t* __restrict__ w_hi = nullptr;      // e4m3 [N - n_split, K]
  const float* __restrict__ w_scale_hi = nullptr;  // f32 [ceil((N - n_split)/128), w_scale_ld]
  int32_t n_split = 0;
  // Optional second output (with w_hi): rows [n_split, N) go to y_hi [M, y_hi_ld] at column n - n_split instead of
  // y (two linears of one input in one launch, Ops::linear_pair). Null: all rows to y.
  float* __restrict__ y_hi = nullptr;
  int64_t y_hi_ld = 0;
  // Optional clamped-SwiGLU prologue (expert_ffn's w2): the kernel's input is h = bf16(silu(g') * u' [* glu_weight[m]])
  // with g = x, u = x_up (both f32 [M, x_ld]), u' = clamp(u, ±glu_limit), g' = min(g, glu_limit) when glu_limit > 0
  // (CpuOps::expert_ffn), act_quant'ed as usual. x_up == nullptr: plain input.
  const float* __restrict__ x_up = nullptr;
  const float* __restrict__ glu_weight = nullptr;  // f32 [M] or nullptr
  float glu_limit = 0.0f;
};

// Decode FP8 GEMV without act_quant (fp8_gemv_kernel, CpuOps::grouped_linear / linear numerics with f32 input):
// y[m, n] = Σ_k x[m, g(n)·x_group_stride + k] · (w[n, k] · w_scale), g(n) = n / rows_per_group, f32 FMAs, optional
// bf16 output rounding. Each CTA (256 threads) owns kFp8GemvRows rows of one group and the whole K (thread t the
// 16 elements [16t, 16t+16), one 16-byte load per row, all rows' loads in flight at once); partials reduced in a
// fixed order through shared memory (deterministic). grid = (N / kFp8GemvRows, ceil(M / kTok)).
struct Fp8GemvParams {
  const float* __restrict__ x = nullptr;          // f32, 16-byte aligned; x_ld, x_group_stride % 4 == 0
  const uint8_t* __restrict__ w = nullptr;        // e4m3 [N, K], 16-byte aligned
  const float* __restrict__ w_scale = nullptr;    // f32 [ceil(N/128), w_scale_ld]
  float* __restrict__ y = nullptr;                // f32 [M, y_ld]
  int32_t M = 0;
  int32_t N = 0;                        // all rows; multiple of kFp8GemvRows
  int32_t K = 0;                        // per-group width; multiple of 16, at most 16 * 256
  int32_t rows_per_group = 0;           // multiple of kFp8GemvRows
  int32_t w_scale_ld = 0;
  int64_t x_ld = 0;
  int64_t x_group_stride = 0;
  int64_t y_ld = 0;
  bool round_bf16 = false;
  bool round_x = false;  // x read as bf16(x) (grouped_linear in Bf16 numerics)
};

}  // namespace dsv4::cuda
