// Fp8Kv key rows on the device (core/row_blocks.h: nope = dim - rope e4m3 codes, rope bf16 values, nope / 64
// e8m0 scale bytes; 584 B at Flash shapes instead of a 2 KB f32 row). A key list mixes f32 window rows and Fp8Kv
// compressed entries; the entries' pointers carry tag bit 0 (rows are at least 8-byte aligned), set where the
// list is resolved (KeyRowList::row with ResolveRowsParams::tag_fp8) and tested where a row is read.
// Decoding is exact: e4m3 x 2^(s-127) and bf16 values are exact in f32, and in bf16 again (the FP8 KV rounding
// made them bf16 values). kv_fp8_load4: 4 values for the generic path's unpacking; kv_fp8_raw_unit /
// kv_fp8_smem_unit + kv_fp8_store_unit: the tensor-core kernels' tile units.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace dsv4::cuda {

__device__ __forceinline__ const float* kv_fp8_tag(const float* p) {
  return reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(p) | uintptr_t{1});
}
__device__ __forceinline__ bool kv_fp8_tagged(const float* p) { return (reinterpret_cast<uintptr_t>(p) & 1u) != 0; }
__device__ __forceinline__ const uint8_t* kv_fp8_row(const float* p) {
  return reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{1});
}

// 2^(b - 127) for an e8m0 byte (0: the subnormal 2^-127, 0xFF: NaN).
__device__ __forceinline__ float kv_fp8_scale(uint32_t b) {
  return b == 0xFFu ? __uint_as_float(0x7FC00000u) : b == 0 ? __uint_as_float(0x00400000u) : __uint_as_float(b << 23);
}

// Four e4m3 codes (byte k = value k) times a scale.
__device__ __forceinline__ float4 kv_fp8_decode4(uint32_t codes, float scale) {
  const __half2_raw lo = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes & 0xFFFFu), __NV_E4M3);
  const __half2_raw hi = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes >> 16), __NV_E4M3);
  const float2 a = __half22float2(__half2(lo)), b = __half22float2(__half2(hi));
  return make_float4(a.x * scale, a.y * scale, b.x * scale, b.y * scale);
}

// Four bf16 values (two 32-bit words, value 0 in the low half of w0) as f32.
__device__ __forceinline__ float4 kv_bf16_decode4(uint32_t w0, uint32_t w1) {
  return make_float4(__uint_as_float(w0 << 16), __uint_as_float(w0 & 0xFFFF0000u), __uint_as_float(w1 << 16),
                     __uint_as_float(w1 & 0xFFFF0000u));
}

// Values c .. c + 3 of an Fp8Kv row at `row` (global memory, read-only path); nope % 64 == 0, c % 4 == 0.
__device__ __forceinline__ float4 kv_fp8_load4(const uint8_t* row, int c, int nope, int rope) {
  if (c < nope) {
    const uint32_t codes = __ldg(reinterpret_cast<const unsigned int*>(row + c));
    return kv_fp8_decode4(codes, kv_fp8_scale(__ldg(row + nope + 2 * rope + c / 64)));
  }
  const uint2 w = __ldg(reinterpret_cast<const uint2*>(row + nope + 2 * (c - nope)));
  return kv_bf16_decode4(w.x, w.y);
}

// Unit u of an Fp8Kv row in the 16-head kernel's tile loads: u < nope/8: code bytes 8u .. 8u + 7 (x, y) and their
// block's scale byte (z); nope/8 <= u < nope/8 + rope/4: bf16 values 4(u - nope/8) .. + 3 of the rope part (x, y);
// later units are unused (zero). kv_fp8_store_unit writes a unit's values as bf16 into the tile row `dst`
// (columns 8u .. 8u + 7, or nope + 4(u - nope/8) .. + 3; the rope words are bf16 already).
__device__ __forceinline__ uint4 kv_fp8_raw_unit(const uint8_t* row, int u, int nope, int rope) {
  if (u < nope / 8) {
    const uint2 w = __ldg(reinterpret_cast<const uint2*>(row + 8 * u));
    return make_uint4(w.x, w.y, __ldg(row + nope + 2 * rope + u / 8), 0u);
  }
  if (u < nope / 8 + rope / 4) {
    const uint2 w = __ldg(reinterpret_cast<const uint2*>(row + nope + 8 * (u - nope / 8)));
    return make_uint4(w.x, w.y, 0u, 0u);
  }
  return make_uint4(0u, 0u, 0u, 0u);
}
__device__ __forceinline__ void kv_fp8_store_unit(__nv_bfloat16* dst, uint4 raw, int u, int nope, int rope) {
  if (u < nope / 8) {
    const float scale = kv_fp8_scale(raw.z);
    const float4 a = kv_fp8_decode4(raw.x, scale), b = kv_fp8_decode4(raw.y, scale);
    __nv_bfloat162 h[4] = {__floats2bfloat162_rn(a.x, a.y), __floats2bfloat162_rn(a.z, a.w),
                           __floats2bfloat162_rn(b.x, b.y), __floats2bfloat162_rn(b.z, b.w)};
    *reinterpret_cast<uint4*>(dst + 8 * u) = *reinterpret_cast<const uint4*>(h);
  } else if (u < nope / 8 + rope / 4) {
    *reinterpret_cast<uint2*>(dst + nope + 4 * (u - nope / 8)) = make_uint2(raw.x, raw.y);
  }
}

// kv_fp8_raw_unit from a copy of the row in shared memory (8-byte aligned).
__device__ __forceinline__ uint4 kv_fp8_smem_unit(const uint8_t* row, int u, int nope, int rope) {
  if (u < nope / 8) {
    const uint2 w = *reinterpret_cast<const uint2*>(row + 8 * u);
    return make_uint4(w.x, w.y, row[nope + 2 * rope + u / 8], 0u);
  }
  if (u < nope / 8 + rope / 4) {
    const uint2 w = *reinterpret_cast<const uint2*>(row + nope + 8 * (u - nope / 8));
    return make_uint4(w.x, w.y, 0u, 0u);
  }
  return make_uint4(0u, 0u, 0u, 0u);
}

}  // namespace dsv4::cuda
