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

}  // namespace dsv4::cuda
