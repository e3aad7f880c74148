// f32 row kernels of the device-resident activations (CudaOps: rms_norm, round_act, scale, add, hc_expand,
// gather_rows, add_position_rows).
// rms_norm_f32_kernel: a group of kGroup threads (a warp or the whole CTA) owns a segment, held in registers
// as kChunks float4 per thread between the sum of squares and the write. The sum of squares accumulates in
// f64 like the CPU reference (each f32 square is exact in f64), so inv = 1 / sqrt(f32(ss / dim) + eps)
// almost always equals the reference's bit for bit; the scaling is (x · inv) · w with separate roundings.
// rms_norm_f32_generic_kernel: any dim, one CTA per segment, two passes (the second from L1/L2).
// f32_map_kernel / row_gather_kernel: flat grid-stride loops, float4 where width (or n) allows.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/elementwise/params.h"

namespace dsv4::cuda {

__device__ __forceinline__ float round_to_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// Sum of a per-thread f64 value over a group of kGroup threads (32 or 256), result in every thread.
template <int kGroup>
__device__ __forceinline__ double group_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if constexpr (kGroup > 32) {
    __shared__ double warp_sum[kGroup / 32];
    if (threadIdx.x % 32 == 0) warp_sum[threadIdx.x / 32] = v;
    __syncthreads();
    v = 0.0;
#pragma unroll
    for (int w = 0; w < kGroup / 32; ++w) v += warp_sum[w];
  }
  return v;
}

__device__ __forceinline__ float rms_scale(float v, float inv, const float* __restrict__ w, int i, bool round) {
  float y = __fmul_rn(v, inv);
  if (w) y = __fmul_rn(y, w[i]);
  return round ? round_to_bf16(y) : y;
}

template <int kGroup, int kChunks>
__global__ void __launch_bounds__(256) rms_norm_f32_kernel(const __grid_constant__ RmsNormF32Params p) {
  grid_dependency_sync();
  constexpr int kSegs = 256 / kGroup;
  const int lane = threadIdx.x % kGroup;
  const int64_t seg = static_cast<int64_t>(blockIdx.x) * kSegs + threadIdx.x / kGroup;
  const bool active = seg < p.n_seg;
  const int n4 = p.dim / 4;
  float4* row = reinterpret_cast<float4*>(p.x + (active ? seg : 0) * p.dim);
  float4 v[kChunks];
  double ss = 0.0;
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = lane + i * kGroup;
    v[i] = active && c < n4 ? row[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    ss = fma_sq4(v[i], ss);
  }
  ss = group_sum<kGroup>(ss);
  if (!active) return;
  const float inv = 1.0f / sqrtf(static_cast<float>(ss / static_cast<double>(p.dim)) + p.eps);
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = lane + i * kGroup;
    if (c >= n4) continue;
    float4 o;
    o.x = rms_scale(v[i].x, inv, p.weight, 4 * c + 0, p.round_bf16);
    o.y = rms_scale(v[i].y, inv, p.weight, 4 * c + 1, p.round_bf16);
    o.z = rms_scale(v[i].z, inv, p.weight, 4 * c + 2, p.round_bf16);
    o.w = rms_scale(v[i].w, inv, p.weight, 4 * c + 3, p.round_bf16);
    row[c] = o;
  }
}

__global__ void __launch_bounds__(256) rms_norm_f32_generic_kernel(const __grid_constant__ RmsNormF32Params p) {
  grid_dependency_sync();
  float* row = p.x + static_cast<int64_t>(blockIdx.x) * p.dim;
  double ss = 0.0;
  for (int i = threadIdx.x; i < p.dim; i += 256) ss = fma(static_cast<double>(row[i]), static_cast<double>(row[i]), ss);
  ss = group_sum<256>(ss);
  const float inv = 1.0f / sqrtf(static_cast<float>(ss / static_cast<double>(p.dim)) + p.eps);
  for (int i = threadIdx.x; i < p.dim; i += 256) row[i] = rms_scale(row[i], inv, p.weight, i, p.round_bf16);
}

template <F32Map kOp>
__device__ __forceinline__ float f32_map_one(const F32MapParams& p, float y, int64_t i) {
  if constexpr (kOp == F32Map::Round) return round_to_bf16(y);
  else if constexpr (kOp == F32Map::Scale) return y * p.s;
  else if constexpr (kOp == F32Map::ScaleRound) return round_to_bf16(y * p.s);
  else if constexpr (kOp == F32Map::AddRound) return round_to_bf16(y + p.x[i % p.x_n]);
  else return y + p.x[i % p.x_n];
}

// kVec = 4: n % 4 == 0 (and x_n % 4 == 0 for Add), 16-byte aligned pointers.
template <F32Map kOp, int kVec>
__global__ void __launch_bounds__(256) f32_map_kernel(const __grid_constant__ F32MapParams p) {
  grid_dependency_sync();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; v < p.n / kVec; v += stride) {
    const int64_t i = v * kVec;
    if constexpr (kVec == 4) {
      float4 y = reinterpret_cast<float4*>(p.y)[v];
      y.x = f32_map_one<kOp>(p, y.x, i + 0);
      y.y = f32_map_one<kOp>(p, y.y, i + 1);
      y.z = f32_map_one<kOp>(p, y.z, i + 2);
      y.w = f32_map_one<kOp>(p, y.w, i + 3);
      reinterpret_cast<float4*>(p.y)[v] = y;
    } else {
      p.y[i] = f32_map_one<kOp>(p, p.y[i], i);
    }
  }
}

// kVec = 4: width % 4 == 0, 16-byte aligned pointers.
template <RowGather kMode, int kVec>
__global__ void __launch_bounds__(256) row_gather_kernel(const __grid_constant__ RowGatherParams p) {
  grid_dependency_sync();
  const int wv = p.width / kVec;
  const int64_t total = p.n_rows * wv;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; v < total; v += stride) {
    const int64_t r = v / wv;
    const int c = static_cast<int>(v - r * wv) * kVec;
    int64_t sr;
    if constexpr (kMode == RowGather::Expand) sr = r / p.repeat;
    else if constexpr (kMode == RowGather::Gather) sr = p.index[r];
    else sr = p.index[r] % p.src_rows;
    const float* s = p.src + sr * p.width + c;
    float* d = p.dst + r * p.width + c;
    if constexpr (kVec == 4) {
      const float4 a = *reinterpret_cast<const float4*>(s);
      if constexpr (kMode == RowGather::AddPosition) {
        float4 b = *reinterpret_cast<float4*>(d);
        b.x += a.x, b.y += a.y, b.z += a.z, b.w += a.w;
        *reinterpret_cast<float4*>(d) = b;
      } else {
        *reinterpret_cast<float4*>(d) = a;
      }
    } else {
      if constexpr (kMode == RowGather::AddPosition) *d += *s;
      else *d = *s;
    }
  }
}

}  // namespace dsv4::cuda
