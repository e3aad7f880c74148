// Activation numerics of the DeepSeek-V4 reference (spec §2.3-2.5): FP8 / FP4 block fake-quant with ue8m0
// scales, FP8 act_quant (codes + e8m0 scales), and the orthonormal Walsh-Hadamard rotation.
// Invariants: scales are computed exactly as the reference's TileLang kernels (f32 multiply by the f32-rounded
// reciprocal of the format max, then the ue8m0 bit trick); quantized values are exact (FP8/FP4 code times a
// power of two), so the final bf16 rounding never changes them. A block containing NaN or ±inf comes out all
// NaN (act_quant: e8m0 scale 0xFF and codes 0x7F), so anomalies stay visible instead of being clamped.
#include "core/numerics.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/dtype.h"
#include "core/row_blocks.h"

namespace dsv4 {
namespace {

// The reference passes 1/448 and 1/6 as Python floats into f32 kernels: double quotient rounded to f32.
constexpr float kInvE4m3Max = static_cast<float>(1.0 / 448.0);
constexpr float kInvE2m1Max = static_cast<float>(1.0 / 6.0);
constexpr float kFp8AmaxFloor = 1e-4f;
constexpr float kFp4AmaxFloor = 6.0f * 0x1p-126f;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// max_i |x_i| over [0, n), or NaN when any element is NaN (a plain max would drop NaN depending on order).
float block_amax(const float* x, size_t n) {
  float m = 0.0f;
  bool nan = false;
  for (size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    nan |= std::isnan(a);
    m = a > m ? a : m;
  }
  return nan ? kNaN : m;
}

// s = ue8m0_ceil(max(amax, floor) * inv_max); NaN stays NaN (std::max would drop it).
float block_scale(const float* x, size_t n, float floor, float inv_max) {
  const float amax = block_amax(x, n);
  if (std::isnan(amax)) return kNaN;
  return ue8m0_ceil(std::max(amax, floor) * inv_max);
}

void check_blocks(size_t n, size_t block, const char* what) {
  check(block > 0 && n % block == 0, what);
}

}  // namespace

void fp8_fake_quant(float* x, size_t n, size_t block) {
  check_blocks(n, block, "fp8_fake_quant: n must be a positive multiple of block");
  for (size_t b0 = 0; b0 < n; b0 += block) {
    float* xb = x + b0;
    const float s = block_scale(xb, block, kFp8AmaxFloor, kInvE4m3Max);
    for (size_t i = 0; i < block; ++i) {
      const float q = e4m3_to_f32(f32_to_e4m3(std::clamp(xb[i] / s, -448.0f, 448.0f)));
      xb[i] = round_bf16(q * s);  // q*s is exact and bf16-representable; the rounding mirrors the reference
    }
  }
}

void fp8_act_quant(const float* x, size_t n, size_t block, uint8_t* q, uint8_t* scales) {
  check_blocks(n, block, "fp8_act_quant: n must be a positive multiple of block");
  for (size_t b0 = 0, bi = 0; b0 < n; b0 += block, ++bi) {
    const float s = block_scale(x + b0, block, kFp8AmaxFloor, kInvE4m3Max);
    if (!std::isfinite(s)) {
      // NaN/Inf in the block: NaN scale byte and NaN codes, so the GEMM output carries the anomaly.
      scales[bi] = 0xFF;
      std::fill(q + b0, q + b0 + block, uint8_t{0x7F});
      continue;
    }
    scales[bi] = e8m0_from_pow2(s);
    for (size_t i = 0; i < block; ++i) q[b0 + i] = f32_to_e4m3(std::clamp(x[b0 + i] / s, -448.0f, 448.0f));
  }
}

void fp4_fake_quant(float* x, size_t n, size_t block) {
  check_blocks(n, block, "fp4_fake_quant: n must be a positive multiple of block");
  for (size_t b0 = 0; b0 < n; b0 += block) {
    float* xb = x + b0;
    const float s = block_scale(xb, block, kFp4AmaxFloor, kInvE2m1Max);
    for (size_t i = 0; i < block; ++i) {
      // NaN scale: x/s is NaN, e2m1 has no NaN (encodes ±0), and 0*NaN restores NaN below.
      const float q = e2m1_to_f32(f32_to_e2m1(std::clamp(xb[i] / s, -6.0f, 6.0f)));
      xb[i] = round_bf16(q * s);
    }
  }
}

void fp4_pack(const float* x, size_t n, uint8_t* codes, uint8_t* scales) {
  check_blocks(n, 32, "fp4_pack: n must be a positive multiple of 32");
  for (size_t b0 = 0, bi = 0; b0 < n; b0 += 32, ++bi) {
    const float s = block_scale(x + b0, 32, kFp4AmaxFloor, kInvE2m1Max);
    uint8_t* c = codes + b0 / 2;
    if (!std::isfinite(s)) {
      scales[bi] = 0xFF;
      std::fill(c, c + 16, uint8_t{0});
      continue;
    }
    scales[bi] = e8m0_from_pow2(s);
    for (size_t i = 0; i < 32; i += 2) {
      const uint8_t lo = f32_to_e2m1(std::clamp(x[b0 + i] / s, -6.0f, 6.0f));
      const uint8_t hi = f32_to_e2m1(std::clamp(x[b0 + i + 1] / s, -6.0f, 6.0f));
      c[i / 2] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void fp4_unpack(const uint8_t* codes, const uint8_t* scales, size_t n, float* x) {
  check_blocks(n, 32, "fp4_unpack: n must be a positive multiple of 32");
  for (size_t i = 0; i < n; ++i) {
    const uint8_t code = (codes[i / 2] >> (4 * (i & 1))) & 0xF;
    x[i] = e2m1_to_f32(code) * e8m0_to_f32(scales[i / 32]);
  }
}

void fp4_pack_row(const float* x, size_t dim, void* row) {
  auto* b = static_cast<uint8_t*>(row);
  const size_t used = dim / 2 + dim / 32;
  std::fill(b + used, b + mxfp4_row_bytes(static_cast<int64_t>(dim)), uint8_t{0});
  fp4_pack(x, dim, b, b + dim / 2);
}

void fp4_unpack_row(const void* row, size_t dim, float* x) {
  const auto* b = static_cast<const uint8_t*>(row);
  fp4_unpack(b, b + dim / 2, dim, x);
}

void fp8kv_pack_row(const float* x, size_t dim, size_t rope_dim, void* row) {
  check(fp8kv_shape_ok(static_cast<int64_t>(dim), static_cast<int64_t>(rope_dim)),
        "fp8kv_pack_row: dim - rope_dim must be a multiple of 64");
  auto* b = static_cast<uint8_t*>(row);
  const size_t nope = dim - rope_dim, used = nope + 2 * rope_dim + nope / 64;
  std::fill(b + used, b + fp8kv_row_bytes(static_cast<int64_t>(dim), static_cast<int64_t>(rope_dim)), uint8_t{0});
  if (nope > 0) fp8_act_quant(x, nope, 64, b, b + nope + 2 * rope_dim);
  for (size_t i = 0; i < rope_dim; ++i) {
    const uint16_t h = f32_to_bf16(x[nope + i]);
    std::memcpy(b + nope + 2 * i, &h, 2);
  }
}

void fp8kv_unpack_row(const void* row, size_t dim, size_t rope_dim, float* x) {
  const auto* b = static_cast<const uint8_t*>(row);
  const size_t nope = dim - rope_dim;
  const uint8_t* scales = b + nope + 2 * rope_dim;
  for (size_t i = 0; i < nope; ++i) x[i] = e4m3_to_f32(b[i]) * e8m0_to_f32(scales[i / 64]);
  for (size_t i = 0; i < rope_dim; ++i) {
    uint16_t h;
    std::memcpy(&h, b + nope + 2 * i, 2);
    x[nope + i] = bf16_to_f32(h);
  }
}

void hadamard_inplace(float* x, size_t n, bool round_to_bf16) {
  check(n > 0 && std::has_single_bit(n), "hadamard_inplace: n must be a power of two");
  for (size_t h = 1; h < n; h *= 2) {
    for (size_t i = 0; i < n; i += 2 * h) {
      for (size_t j = i; j < i + h; ++j) {
        const float a = x[j];
        const float b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  // The reference passes dim ** -0.5 (a Python double) as the f32 scale of the kernel.
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
  for (size_t i = 0; i < n; ++i) {
    const float y = x[i] * scale;
    x[i] = round_to_bf16 ? round_bf16(y) : y;
  }
}

}  // namespace dsv4
