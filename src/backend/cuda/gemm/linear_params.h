// Parameter structs of the generic linear family (CudaOps::linear / grouped_linear / embed on any checkpoint
// format, spec §2.1 dtype policy, §2.3 act_quant, §5.6 wo_a, §7.2 formats). One struct per kernel, passed as
// `const __grid_constant__`; every pointer is __restrict__ with its dtype and shape.
//
// Weight formats read in place (WeightFormat): F32 / BF16 / F16 values; FP8 e4m3 [N, K] with 128x128 block
// scales [ceil(N/128), ceil(K/128)] (partial blocks at the N and K edges, as the checkpoint stores them);
// MXFP4 nibbles [N, K/2] (low nibble = even element) with scales [N, K/32]. Scales are e8m0 bytes, f32
// multipliers (HF weight_scale_inv) or bf16 (ScaleFormat). Dequantization is exact (dequant.cpp).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace dsv4::cuda {

enum class WeightFormat : uint8_t { F32, Bf16, F16, Fp8, Mxfp4 };
enum class ScaleFormat : uint8_t { E8m0, F32, Bf16 };

// A weight matrix [N, K] in its stored format.
struct WeightRef {
  const void* data = nullptr;        // F32/BF16/F16 [N, K], e4m3 [N, K], or MXFP4 bytes [N, K/2]
  const void* scale = nullptr;       // Fp8: [ceil(N/128), scale_cols]; Mxfp4: [N, scale_cols]; else nullptr
  WeightFormat format = WeightFormat::F32;
  ScaleFormat scale_format = ScaleFormat::E8m0;
  int32_t scale_cols = 0;            // Fp8: ceil(K/128); Mxfp4: K/32
};

// y[m, n] = Σ_k x[m, g(n)·x_group_stride + k] · W[n, k] in f32 (W dequantized on the fly), g(n) = n / rows_per_group,
// optionally rounded to bf16. One warp per weight row, kTok tokens per CTA column (grid.y = ceil(M / kTok)),
// lanes split K in vectors of kVec elements. Any M, N, K (kVec = 4 needs K % 4 == 0 and 16-byte aligned x rows).
struct LinearGemvParams {
  const float* __restrict__ x = nullptr;  // f32 [M, x_ld]
  WeightRef w;                            // [N, K]
  float* __restrict__ y = nullptr;        // f32 [M, y_ld]
  int32_t M = 0;
  int32_t N = 0;                          // all rows (groups * rows_per_group)
  int32_t K = 0;                          // per-group input width
  int32_t rows_per_group = 0;             // N for a plain linear
  int64_t x_ld = 0;
  int64_t x_group_stride = 0;             // 0 for a plain linear, K for grouped
  int64_t y_ld = 0;
  bool round_bf16 = false;
  bool round_x = false;  // x read as bf16(x) (Bf16 numerics: the Bf16 / F32 linear kinds, grouped_linear)
  // Optional second weight (linear_gemv16_kernel only, plain linears): rows [n_split, N) read w_hi at row
  // n - n_split and go to y_hi [M, y_hi_ld] at column n - n_split (Ops::linear_pair). n_split == 0: none.
  WeightRef w_hi;
  int32_t n_split = 0;
  float* __restrict__ y_hi = nullptr;
  int64_t y_hi_ld = 0;
};

// FP8 act_quant (spec §2.3) of f32 activations: per 1x128 block s = ue8m0_ceil(max(amax, 1e-4) * fl32(1/448)),
// q = e4m3(clamp(x / s, ±448)); a block with NaN/Inf gets a NaN scale and codes 0x7F. Bit-exact with
// core fp8_act_quant on the f32 values (no bf16 pre-rounding). Output in the FP8 GEMM layouts of params.h.
// With g set (the clamped-SwiGLU prologue of CpuOps::expert_ffn), the values quantized are
// h = bf16(clamped_swiglu(g, u, glu_limit) [· glu_weight[m]]) of the bf16 GEMM outputs g, u instead of x.
struct ActQuantF32Params {
  const float* __restrict__ x = nullptr;  // f32 [M, K], K % 128 == 0 (unused with g)
  uint8_t* __restrict__ q = nullptr;      // e4m3 [M, K]
  float* __restrict__ scale = nullptr;    // f32 [K/128, M] (M contiguous)
  int64_t M = 0;
  int32_t K = 0;
  const __nv_bfloat16* __restrict__ g = nullptr;  // bf16 [M, K] (8-byte aligned) or null
  const __nv_bfloat16* __restrict__ u = nullptr;  // bf16 [M, K], with g
  const float* __restrict__ glu_weight = nullptr; // f32 [M] routing weights, or null
  float glu_limit = 0.0f;                         // <= 0: no clamp
};

// FP8 fake-quant (core fp8_fake_quant, blocks of 128): out = bf16(e4m3(x / s) * s), NaN blocks all NaN.
struct Fp8FakeQuantParams {
  const float* __restrict__ x = nullptr;  // f32 [M, K], K % 128 == 0
  float* __restrict__ out = nullptr;      // f32 [M, K] (may equal x)
  int64_t M = 0;
  int32_t K = 0;
};

// f32 -> (hi, lo) bf16 pair with hi = bf16(x), lo = bf16(x - hi): x·W = hi·W + lo·W to ~2^-17 relative
// (exact when x is bf16-representable, then lo == 0). Feeds the bf16 tensor-core GEMM.
struct SplitBf16Params {
  const float* __restrict__ x = nullptr;  // f32 [n]
  __nv_bfloat16* __restrict__ hi = nullptr;  // bf16 [n]
  __nv_bfloat16* __restrict__ lo = nullptr;  // bf16 [n], or null (hi only)
  int64_t n = 0;
};

// Dequantized copy of a weight in bf16 (exact for FP8 / MXFP4 / BF16 values in bf16 range).
struct WeightToBf16Params {
  WeightRef w;                                // [N, K]
  __nv_bfloat16* __restrict__ out = nullptr;  // bf16 [N, K]
  int32_t N = 0;
  int32_t K = 0;
};

// y = f32(in): the bf16 output of the FP8 GEMM widened (exact).
struct WidenBf16Params {
  const __nv_bfloat16* __restrict__ in = nullptr;  // bf16 [n]
  float* __restrict__ y = nullptr;                 // f32 [n]
  int64_t n = 0;
};

// x = bf16(x) in place (RNE), the output rounding of a linear computed in f32.
// y[i] = in[i] + in[n + i] (the hi and lo halves of a stacked hi/lo bf16 GEMM), rounded to bf16 when round.
struct AddHalvesParams {
  const float* __restrict__ in = nullptr;  // f32 [2n]
  float* __restrict__ y = nullptr;         // f32 [n]
  int64_t n = 0;
  bool round = false;
};

struct RoundBf16Params {
  float* __restrict__ x = nullptr;  // f32 [n]
  int64_t n = 0;
};

// out[t, :] = dequant(table[ids[t], :]).
struct EmbedParams {
  WeightRef table;                        // [V, D]
  const int32_t* __restrict__ ids = nullptr;  // i32 [T], each in [0, V)
  float* __restrict__ out = nullptr;      // f32 [T, D]
  int32_t T = 0;
  int32_t D = 0;
};

}  // namespace dsv4::cuda
