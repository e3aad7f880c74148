// Kernels of the generic linear family (params in linear_params.h):
//  * linear_gemv_kernel: y = x · Wᵀ in f32 with W dequantized on the fly from any stored format (F32, BF16,
//    F16, FP8 128x128 block scales with partial edge blocks, MXFP4), one warp per weight row, kTok tokens per
//    CTA column. The small-M path (decode) and the universal fallback: any M, N, K, grouped (wo_a) or not.
//  * act_quant_f32_kernel / fp8_fake_quant_kernel: FP8 act_quant of f32 activations (one warp per 1x128
//    block, bit-exact with core fp8_act_quant / fp8_fake_quant; bf16 rows: act_quant.cuh).
//  * split_bf16_kernel, weight_to_bf16_kernel: operands of the bf16 tensor-core GEMM (dense_plan.h).
//  * widen_bf16_kernel, round_bf16_kernel: output conversions; embed_kernel: row gather with dequant.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/gemm/linear_params.h"

namespace dsv4::cuda {

inline constexpr int kGemvWarps = 8;      // weight rows per CTA of linear_gemv_kernel
inline constexpr int kQuantWarps = 8;     // warps per CTA of the act_quant kernels
inline constexpr int kElementThreads = 256;

__device__ __forceinline__ float load_scale(const WeightRef& w, int64_t idx) {
  switch (w.scale_format) {
    case ScaleFormat::E8m0: return e8m0_to_f32(__ldg(static_cast<const uint8_t*>(w.scale) + idx));
    case ScaleFormat::F32: return __ldg(static_cast<const float*>(w.scale) + idx);
    default: return __bfloat162float(static_cast<const __nv_bfloat16*>(w.scale)[idx]);
  }
}

__device__ __forceinline__ float bf16_bits(uint32_t b) { return __uint_as_float(b << 16); }

__device__ __forceinline__ float round_to_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }


// v[0..V) = W[n, k..k+V) as f32 (exact). V == 4 requires k % 4 == 0 and K % 4 == 0.
template <WeightFormat F, int V>
__device__ __forceinline__ void load_w(const WeightRef& w, int64_t n, int K, int k, float (&v)[V]) {
  const int64_t e = n * K + k;
  if constexpr (F == WeightFormat::F32) {
    const float* p = static_cast<const float*>(w.data) + e;
    if constexpr (V == 4) {
      const float4 f = __ldg(reinterpret_cast<const float4*>(p));
      v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
    } else {
      v[0] = __ldg(p);
    }
  } else if constexpr (F == WeightFormat::Bf16 || F == WeightFormat::F16) {
    const uint16_t* p = static_cast<const uint16_t*>(w.data) + e;
    uint32_t b[V];
    if constexpr (V == 4) {
      const uint2 r = __ldg(reinterpret_cast<const uint2*>(p));
      b[0] = r.x & 0xFFFFu; b[1] = r.x >> 16; b[2] = r.y & 0xFFFFu; b[3] = r.y >> 16;
    } else {
      b[0] = __ldg(p);
    }
#pragma unroll
    for (int i = 0; i < V; ++i) {
      if constexpr (F == WeightFormat::Bf16) {
        v[i] = bf16_bits(b[i]);
      } else {
        __half_raw h;
        h.x = static_cast<unsigned short>(b[i]);
        v[i] = __half2float(__half(h));
      }
    }
  } else if constexpr (F == WeightFormat::Fp8) {
    const uint8_t* p = static_cast<const uint8_t*>(w.data) + e;
    const float s = load_scale(w, (n / 128) * w.scale_cols + k / 128);
    if constexpr (V == 4) {
      const uint32_t r = __ldg(reinterpret_cast<const unsigned int*>(p));
#pragma unroll
      for (int i = 0; i < 4; ++i) v[i] = e4m3_to_f32(static_cast<uint8_t>(r >> (8 * i))) * s;
    } else {
      v[0] = e4m3_to_f32(__ldg(p)) * s;
    }
  } else {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + n * (K / 2);
    const float s = load_scale(w, n * w.scale_cols + k / 32);
    if constexpr (V == 4) {
      const uint32_t r = __ldg(reinterpret_cast<const unsigned short*>(row + k / 2));
#pragma unroll
      for (int i = 0; i < 4; ++i) v[i] = e2m1_to_f32(r >> (4 * i)) * s;
    } else {
      const uint32_t b = __ldg(row + k / 2);
      v[0] = e2m1_to_f32((k & 1) ? b >> 4 : b) * s;
    }
  }
}


template <WeightFormat F, int kTok, int kVec>
__global__ void __launch_bounds__(kGemvWarps * 32) linear_gemv_kernel(const __grid_constant__ LinearGemvParams p) {
  grid_dependency_sync();
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * kGemvWarps + (threadIdx.x >> 5);
  if (n >= p.N) return;
  const int m0 = blockIdx.y * kTok;
  const int ntok = min(kTok, p.M - m0);
  const float* xg = p.x + static_cast<int64_t>(n / p.rows_per_group) * p.x_group_stride +
                    static_cast<int64_t>(m0) * p.x_ld;
  float acc[kTok];
#pragma unroll
  for (int j = 0; j < kTok; ++j) acc[j] = 0.0f;
#pragma unroll 2
  for (int k = lane * kVec; k < p.K; k += 32 * kVec) {
    float wv[kVec];
    load_w<F, kVec>(p.w, n, p.K, k, wv);
#pragma unroll
    for (int j = 0; j < kTok; ++j) {
      if (j < ntok) {
        const float* xr = xg + j * p.x_ld + k;
        if constexpr (kVec == 4) {
          const float4 xv = ldg_x4(reinterpret_cast<const float4*>(xr), p.round_x);
          acc[j] = fmaf(xv.x, wv[0], acc[j]);
          acc[j] = fmaf(xv.y, wv[1], acc[j]);
          acc[j] = fmaf(xv.z, wv[2], acc[j]);
          acc[j] = fmaf(xv.w, wv[3], acc[j]);
        } else {
          const float xv = __ldg(xr);
          acc[j] = fmaf(p.round_x ? round_to_bf16(xv) : xv, wv[0], acc[j]);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kTok; ++j) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
  }
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < kTok; ++j)
      if (j < ntok) p.y[static_cast<int64_t>(m0 + j) * p.y_ld + n] = p.round_bf16 ? round_to_bf16(acc[j]) : acc[j];
  }
}

// linear_gemv16_kernel: the decode GEMV for BF16 and FP8 weights with 16-byte weight loads (8 bf16 / 16 e4m3 per
// lane per load), kSplit warps per weight row splitting K (interleaved 512-byte / 256-element slices) so that
// small N still puts ~16 warps on every SM, kU loads in flight per lane, f32 FMAs, and a fixed-order
// shared-memory reduction of the kSplit partials (deterministic). CTA: 8 warps = (8 / kSplit) rows; grid.y over
// kTok-token tiles. Needs K % (16 / sizeof(elem)) == 0, 16-byte aligned x rows (x_ld, x_group_stride % 4 == 0).
template <WeightFormat F>
inline constexpr int kGemv16Vec = F == WeightFormat::Fp8 ? 16 : 8;  // elements per 16-byte weight load

template <WeightFormat F, int kTok, int kSplit>
__global__ void __launch_bounds__(kGemvWarps * 32) linear_gemv16_kernel(const __grid_constant__ LinearGemvParams p) {
  constexpr int V = kGemv16Vec<F>;
  constexpr int kU = 4;
  constexpr int kRows = kGemvWarps / kSplit;
  __shared__ float red[kGemvWarps][kTok];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int r = warp / kSplit;
  const int sp = warp % kSplit;
  const int n = blockIdx.x * kRows + r;
  const bool row_ok = n < p.N;
  const int m0 = blockIdx.y * kTok;
  const int ntok = min(kTok, p.M - m0);
  float acc[kTok];
#pragma unroll
  for (int j = 0; j < kTok; ++j) acc[j] = 0.0f;
  const int nvec = p.K / V;  // 16-byte vectors per weight row
  const bool hi = p.n_split > 0 && n >= p.n_split;  // a row of the second weight (linear_pair)
  const WeightRef& wt = hi ? p.w_hi : p.w;
  const int nw = hi ? n - p.n_split : n;  // row within its weight
  const uint4* wrow = reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(wt.data) +
                                                     static_cast<int64_t>(row_ok ? nw : 0) * p.K *
                                                         (F == WeightFormat::Fp8 ? 1 : 2));
  const int step = 32 * kSplit;
  uint4 raw[kU];
  float sc[kU];
  auto load_w = [&](int v0) {
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int v = v0 + u * step;
      if (v < nvec) {
        raw[u] = __ldg(wrow + v);
        if constexpr (F == WeightFormat::Fp8) sc[u] = load_scale(wt, (nw / 128) * wt.scale_cols + (v * V) / 128);
      }
    }
  };
  // The first weight loads go out before the wait for the previous kernel (the stored weights and scales are
  // uploaded by copies at load time, never written by a kernel)
  // (common/pdl.cuh); nothing before the wait reads or writes what a kernel produces.
  if (row_ok) load_w(sp * 32 + lane);
  grid_dependency_sync();
  if (row_ok) {
    const float* xg = p.x + static_cast<int64_t>(n / p.rows_per_group) * p.x_group_stride +
                      static_cast<int64_t>(m0) * p.x_ld;
    for (int v0 = sp * 32 + lane; v0 < nvec; v0 += kU * step) {
      if (v0 != sp * 32 + lane) load_w(v0);
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int v = v0 + u * step;
        if (v >= nvec) break;
        float wv[V];
        const uint32_t words[4] = {raw[u].x, raw[u].y, raw[u].z, raw[u].w};
        if constexpr (F == WeightFormat::Fp8) {
#pragma unroll
          for (int q = 0; q < 4; ++q)
#pragma unroll
            for (int b = 0; b < 4; ++b) wv[q * 4 + b] = e4m3_to_f32(static_cast<uint8_t>(words[q] >> (8 * b))) * sc[u];
        } else {
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            wv[2 * q] = bf16_bits(words[q] & 0xFFFFu);
            wv[2 * q + 1] = bf16_bits(words[q] >> 16);
          }
        }
        const int k = v * V;
#pragma unroll
        for (int j = 0; j < kTok; ++j) {
          if (j < ntok) {
            const float4* xr = reinterpret_cast<const float4*>(xg + j * p.x_ld + k);
#pragma unroll
            for (int q = 0; q < V / 4; ++q) {
              const float4 xv = ldg_x4(xr + q, p.round_x);
              acc[j] = fmaf(xv.x, wv[4 * q], acc[j]);
              acc[j] = fmaf(xv.y, wv[4 * q + 1], acc[j]);
              acc[j] = fmaf(xv.z, wv[4 * q + 2], acc[j]);
              acc[j] = fmaf(xv.w, wv[4 * q + 3], acc[j]);
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kTok; ++j) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
  }
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < kTok; ++j) red[warp][j] = acc[j];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kRows * kTok; i += blockDim.x) {
    const int rr = i / kTok, j = i % kTok;
    const int nn = blockIdx.x * kRows + rr;
    if (nn >= p.N || j >= ntok) continue;
    float s = 0.0f;
#pragma unroll
    for (int q = 0; q < kSplit; ++q) s += red[rr * kSplit + q][j];
    const float v = p.round_bf16 ? round_to_bf16(s) : s;
    if (p.n_split > 0 && nn >= p.n_split) p.y_hi[static_cast<int64_t>(m0 + j) * p.y_hi_ld + (nn - p.n_split)] = v;
    else p.y[static_cast<int64_t>(m0 + j) * p.y_ld + nn] = v;
  }
}

// One warp's 1x128 block of f32 activations: 4 values per lane, the block scale (NaN for a non-finite block).
struct QuantBlock {
  float v[4];
  float s;
  bool bad;
};

// From the lane's 4 values of the block.
__device__ __forceinline__ QuantBlock quant_block(float4 f) {
  constexpr float kInvE4m3Max = static_cast<float>(1.0 / 448.0);
  QuantBlock b{{f.x, f.y, f.z, f.w}, 0.0f, false};
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    b.bad |= !isfinite(b.v[i]);
    amax = fmaxf(amax, fabsf(b.v[i]));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  b.bad = __any_sync(0xffffffffu, b.bad);
  b.s = b.bad ? __uint_as_float(0x7FC00000u) : ue8m0_ceil(__fmul_rn(fmaxf(amax, 1e-4f), kInvE4m3Max));
  return b;
}
__device__ __forceinline__ QuantBlock quant_block(const float* x) {
  return quant_block(*reinterpret_cast<const float4*>(x + (threadIdx.x & 31) * 4));
}

// The lane's 4 values of act_quant_f32_kernel's GLU prologue at element offset off (ActQuantF32Params::g).
__device__ __forceinline__ float4 glu_values(const ActQuantF32Params& p, int64_t m, int64_t off) {
  const uint2 gr = *reinterpret_cast<const uint2*>(p.g + off);
  const uint2 ur = *reinterpret_cast<const uint2*>(p.u + off);
  const float2 g01 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&gr.x));
  const float2 g23 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&gr.y));
  const float2 u01 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&ur.x));
  const float2 u23 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&ur.y));
  const float g[4] = {g01.x, g01.y, g23.x, g23.y}, u[4] = {u01.x, u01.y, u23.x, u23.y};
  const float rw = p.glu_weight != nullptr ? p.glu_weight[m] : 1.0f;
  float h[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    h[i] = clamped_swiglu(g[i], u[i], p.glu_limit);
    if (p.glu_weight != nullptr) h[i] *= rw;
    h[i] = round_to_bf16(h[i]);
  }
  return make_float4(h[0], h[1], h[2], h[3]);
}

__device__ __forceinline__ uint8_t quant_code(float v, float s) {
  return f32_to_e4m3(fminf(fmaxf(__fdiv_rn(v, s), -448.0f), 448.0f));
}

// One warp per 1x128 block (4 consecutive blocks per warp with their loads issued together was slower on the
// H200: Flash MoE h 24576 x 2048 bf16 110.7 against 86.8 µs, x 38.7 against 33.0, runs 262-263). v / s as
// v · (1 / s): s is a power of two (e8m0) whose reciprocal is a normal f32, so the product is the correctly rounded
// quotient, bit for bit (the act_quant_f32 rows check it against core fp8_act_quant); with it, run 264: h 78-82 µs,
// x 31-32 (a division per value: 86.8 / 33.0, run 262).
__global__ void __launch_bounds__(kQuantWarps * 32) act_quant_f32_kernel(const __grid_constant__ ActQuantF32Params p) {
  grid_dependency_sync();
  const int kb_count = p.K / 128;
  const int64_t block = static_cast<int64_t>(blockIdx.x) * kQuantWarps + (threadIdx.x >> 5);
  if (block >= p.M * kb_count) return;
  const int64_t m = block / kb_count;
  const int kb = static_cast<int>(block % kb_count);
  const int lane = threadIdx.x & 31;
  const int64_t off = m * p.K + kb * 128;
  const QuantBlock b = p.g != nullptr ? quant_block(glu_values(p, m, off + lane * 4)) : quant_block(p.x + off);
  uint32_t codes = 0x7F7F7F7Fu;
  if (!b.bad) {
    const float inv = __frcp_rn(b.s);
    codes = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i)
      codes |= static_cast<uint32_t>(f32_to_e4m3(fminf(fmaxf(__fmul_rn(b.v[i], inv), -448.0f), 448.0f))) << (8 * i);
  }
  *reinterpret_cast<uint32_t*>(p.q + off + lane * 4) = codes;
  if (lane == 0) p.scale[static_cast<int64_t>(kb) * p.M + m] = b.s;
}

__global__ void __launch_bounds__(kQuantWarps * 32) fp8_fake_quant_kernel(const __grid_constant__ Fp8FakeQuantParams p) {
  grid_dependency_sync();
  const int kb_count = p.K / 128;
  const int64_t block = static_cast<int64_t>(blockIdx.x) * kQuantWarps + (threadIdx.x >> 5);
  if (block >= p.M * kb_count) return;
  const int64_t off = (block / kb_count) * p.K + (block % kb_count) * 128;
  const QuantBlock b = quant_block(p.x + off);
  float o[4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    o[i] = b.bad ? __uint_as_float(0x7FC00000u) : round_to_bf16(e4m3_to_f32(quant_code(b.v[i], b.s)) * b.s);
  *reinterpret_cast<float4*>(p.out + off + (threadIdx.x & 31) * 4) = make_float4(o[0], o[1], o[2], o[3]);
}

// The element-wise kernels below take kVec = 4 (float4 / 4 x bf16 accesses, n % 4 == 0, aligned operands:
// linear_launch.cu checks) or 1; H200 run 97: the scalar forms ran at ~1.1 TB/s on 8192 x 4096 operands.
template <int kVec>
__device__ __forceinline__ void load_f32(const float* p, int64_t i, float (&v)[kVec]) {
  if constexpr (kVec == 4) {
    const float4 f = reinterpret_cast<const float4*>(p)[i];
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else {
    v[0] = p[i];
  }
}
template <int kVec>
__device__ __forceinline__ void store_f32(float* p, int64_t i, const float (&v)[kVec]) {
  if constexpr (kVec == 4) reinterpret_cast<float4*>(p)[i] = make_float4(v[0], v[1], v[2], v[3]);
  else p[i] = v[0];
}
template <int kVec>
__device__ __forceinline__ void store_bf16(__nv_bfloat16* p, int64_t i, const __nv_bfloat16 (&v)[kVec]) {
  if constexpr (kVec == 4) {
    uint2 u;
    u.x = static_cast<uint32_t>(__bfloat16_as_ushort(v[0])) | (static_cast<uint32_t>(__bfloat16_as_ushort(v[1])) << 16);
    u.y = static_cast<uint32_t>(__bfloat16_as_ushort(v[2])) | (static_cast<uint32_t>(__bfloat16_as_ushort(v[3])) << 16);
    reinterpret_cast<uint2*>(p)[i] = u;
  } else {
    p[i] = v[0];
  }
}

template <int kVec>
__global__ void split_bf16_kernel(const __grid_constant__ SplitBf16Params p) {
  grid_dependency_sync();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n / kVec;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float x[kVec];
    load_f32<kVec>(p.x, i, x);
    __nv_bfloat16 hi[kVec], lo[kVec];
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      hi[e] = __float2bfloat16_rn(x[e]);
      lo[e] = __float2bfloat16_rn(x[e] - __bfloat162float(hi[e]));
    }
    store_bf16<kVec>(p.hi, i, hi);
    if (p.lo != nullptr) store_bf16<kVec>(p.lo, i, lo);
  }
}

template <WeightFormat F>
__global__ void weight_to_bf16_kernel(const __grid_constant__ WeightToBf16Params p) {
  grid_dependency_sync();
  const int64_t total = static_cast<int64_t>(p.N) * p.K;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v[1];
    load_w<F, 1>(p.w, i / p.K, p.K, static_cast<int>(i % p.K), v);
    p.out[i] = __float2bfloat16_rn(v[0]);
  }
}

template <int kVec>
__global__ void widen_bf16_kernel(const __grid_constant__ WidenBf16Params p) {
  grid_dependency_sync();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n / kVec;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float y[kVec];
    if constexpr (kVec == 4) {
      const uint2 u = reinterpret_cast<const uint2*>(p.in)[i];
      y[0] = bf16_bits(u.x & 0xFFFFu), y[1] = bf16_bits(u.x >> 16), y[2] = bf16_bits(u.y & 0xFFFFu),
      y[3] = bf16_bits(u.y >> 16);
    } else {
      y[0] = __bfloat162float(p.in[i]);
    }
    store_f32<kVec>(p.y, i, y);
  }
}

template <int kVec>
__global__ void add_halves_kernel(const __grid_constant__ AddHalvesParams p) {
  grid_dependency_sync();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n / kVec;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float hi[kVec], lo[kVec], y[kVec];
    load_f32<kVec>(p.in, i, hi);
    load_f32<kVec>(p.in + p.n, i, lo);
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      const float v = lo[e] + hi[e];  // lo + hi: the order of the previous beta = 1 accumulation
      y[e] = p.round ? round_to_bf16(v) : v;
    }
    store_f32<kVec>(p.y, i, y);
  }
}

template <int kVec>
__global__ void round_bf16_kernel(const __grid_constant__ RoundBf16Params p) {
  grid_dependency_sync();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n / kVec;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float x[kVec];
    load_f32<kVec>(p.x, i, x);
#pragma unroll
    for (int e = 0; e < kVec; ++e) x[e] = round_to_bf16(x[e]);
    store_f32<kVec>(p.x, i, x);
  }
}

template <WeightFormat F>
__global__ void embed_kernel(const __grid_constant__ EmbedParams p) {
  grid_dependency_sync();
  const int t = blockIdx.x;
  const int64_t id = p.ids[t];
  float* out = p.out + static_cast<int64_t>(t) * p.D;
  for (int d = threadIdx.x; d < p.D; d += blockDim.x) {
    float v[1];
    load_w<F, 1>(p.table, id, p.D, d, v);
    out[d] = v[0];
  }
}

}  // namespace dsv4::cuda
