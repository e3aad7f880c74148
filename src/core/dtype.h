// Element types of dsv4 and exact scalar conversions between them and f32.
// Owns: the DType enum (matching safetensors dtype codes), the bf16 / OCP FP8 E4M3 (fn) / E8M0 / FP4 E2M1
// encode-decode functions. Invariants: every encode rounds to nearest, ties to even (RNE); decode is exact.
// These are the bit-level definitions the whole engine (CPU reference and CUDA) is checked against.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace dsv4 {

enum class DType : uint8_t {
  F32,
  BF16,
  F16,
  F8_E4M3,  // OCP e4m3fn: bias 7, no inf, 0x7F/0xFF NaN, max 448
  F8_E8M0,  // unsigned power-of-two scale: value 2^(byte-127), 0xFF NaN
  I8,       // also used for packed MXFP4 (two e2m1 codes per byte, low nibble first)
  U8,
  I32,
  I64,
  BOOL,
};

// Name as written in safetensors headers ("F32", "BF16", "F8_E4M3", "F8_E8M0", "I8", ...).
std::string_view dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
// Bytes per element (1 for I8 / packed FP4 bytes).
size_t dtype_size(DType t);

// ---- bf16 ----
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float x);          // RNE; NaN stays NaN (quiet)
inline float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// ---- f16 (safetensors F16 tensors are accepted and upcast) ----
float f16_to_f32(uint16_t bits);

// ---- FP8 E4M3 (fn) ----
float e4m3_to_f32(uint8_t bits);        // exact; 0x7F / 0xFF decode to NaN
uint8_t f32_to_e4m3(float x);           // RNE with subnormals; |x| > 448 saturates to ±448; NaN -> 0x7F

// ---- E8M0 scale ----
float e8m0_to_f32(uint8_t bits);        // 2^(bits-127); 0xFF -> NaN

// ---- FP4 E2M1 (one nibble: bit 3 sign, bits 0-2 index {0,0.5,1,1.5,2,3,4,6}) ----
float e2m1_to_f32(uint8_t code);        // code in [0,16); code 8 (-0) decodes to -0.0f (== 0)
uint8_t f32_to_e2m1(float x);           // RNE on the e2m1 grid, ties to the even code; |x| > 6 saturates

// ---- ue8m0 scale rounding (spec §2.3 step 2) ----
// Returns s = 2^ceil(log2(t)) computed on the bit pattern of t (t > 0, finite, normal or subnormal):
// e = exponent(t) - 127, +1 if the mantissa bits are non-zero. Used as scale = ue8m0_ceil(amax * (1/448)).
float ue8m0_ceil(float t);
// The e8m0 byte of a power-of-two scale s (s must be an exact power of two in [2^-127, 2^127]).
uint8_t e8m0_from_pow2(float s);

}  // namespace dsv4
