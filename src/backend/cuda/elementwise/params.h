// Parameter structs of the elementwise kernel family (row-wise ops). One struct per kernel, passed as
// `const __grid_constant__`; every pointer is __restrict__ and carries its dtype and shape.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace dsv4::cuda {

// RMSNorm (spec §2.2): y = bf16( w ⊙ (x · rsqrt(mean(x²) + eps)) ), f32 arithmetic, one rounding.
struct RmsNormParams {
  const __nv_bfloat16* __restrict__ x = nullptr;  // bf16 [n_rows, dim], rows 16-byte aligned
  const float* __restrict__ weight = nullptr;     // f32 [dim]; nullptr = unweighted (the per-head q norm)
  __nv_bfloat16* __restrict__ y = nullptr;        // bf16 [n_rows, dim]; must not alias x
  int64_t n_rows = 0;
  int32_t dim = 0;                      // multiple of 8, at most kRmsNormMaxDim
  float eps = 1e-6f;
};


// In-place f32 RMSNorm over segments of `dim` values (CpuOps::rms_norm): x = round((x · inv) · w) with
// inv = 1 / sqrt(f32(Σ x² in f64 / dim) + eps), rounded to bf16 when round_bf16.
struct RmsNormF32Params {
  float* __restrict__ x = nullptr;             // f32 [n_seg, dim], in place
  const float* __restrict__ weight = nullptr;  // f32 [dim]; nullptr = unweighted
  int64_t n_seg = 0;
  int32_t dim = 0;
  float eps = 1e-6f;
  bool round_bf16 = false;
};

// Elementwise f32 maps over n values (f32_map_kernel, the operation is a template argument):
// Round: y = bf16(y); Scale: y = y · s; Add: y[i] += x[i % x_n] (x repeated over y).
enum class F32Map : uint8_t { Round, Scale, Add, ScaleRound, AddRound };  // *Round: then bf16 rounding
struct F32MapParams {
  float* __restrict__ y = nullptr;        // f32 [n], in place
  const float* __restrict__ x = nullptr;  // f32 [x_n] (Add only)
  int64_t n = 0;
  int64_t x_n = 0;  // Add: n % x_n == 0
  float s = 1.0f;   // Scale
};

// Row copies (row_gather_kernel, the mode is a template argument), width values per row:
// Expand: dst[r] = src[r / repeat] (hc_expand); Gather: dst[r] = src[index[r]];
// AddPosition: dst[r] += src[index[r] % src_rows] (the compressor's ape rows by position).
enum class RowGather : uint8_t { Expand, Gather, AddPosition };
struct RowGatherParams {
  const float* __restrict__ src = nullptr;      // f32 [src_rows, width]
  float* __restrict__ dst = nullptr;            // f32 [n_rows, width]; must not alias src
  const int64_t* __restrict__ index = nullptr;  // i64 [n_rows] (Gather: row in [0, src_rows); AddPosition: pos >= 0)
  int64_t n_rows = 0;
  int64_t src_rows = 0;
  int32_t width = 0;
  int32_t repeat = 1;  // Expand
};

}  // namespace dsv4::cuda
