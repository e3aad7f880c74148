// Row-wise kernels of the attention family, each memory bound and following the CPU reference's arithmetic
// step by step (no FMA contraction where the reference multiplies and adds separately):
// rope_kernel: one thread per rotated pair; angle = f32(pos) * freq in f32, sincosf (full precision; the CPU
// uses the host libm, so a last-ulp difference before the bf16 rounding is possible). Any dims.
// kv_round_kernel: one warp per 64-value block of a row: bf16 rounding, then for the no-RoPE blocks FP8 e4m3
// fake-quant with a ue8m0 scale (core::fp8_fake_quant, NaN blocks stay NaN). Any dim; nope % 64 == 0 for fp8.
// indexer_round_kernel: one CTA per row in shared memory: bf16 rounding, Walsh-Hadamard butterflies in the
// reference's stage order (each stage exact f32 adds, so the result is bit-identical), 1/sqrt(dim) scale with
// bf16 rounding, then FP4 e2m1 fake-quant in blocks of 32 (one warp per block). dim a power of two, 32..8192.
// softmax_pool_kernel: CTAs (pooled entry, block of channels), one thread per channel (a CTA per entry alone
// was latency-bound at decode: 14 us for one entry of 512 channels on the H200). copy_rows_kernel: one CTA per row.
// resolve_rows_kernel: CTAs (x: slices of a list, y: list) write one row pointer per thread (key lists of
// sparse_attention and indexer_topk built on the device from row blocks and selections).
// rope_inline_kernel / copy_rows_inline_kernel: the decode forms, launched by CudaOps directly with the positions
// and frequencies (the pointer lists) in the kernel parameters, so a call is one launch without an upload;
// rope_inline_kernel computes each (row, pair) angle once into shared memory (the same sincosf of the same
// product), so both are bitwise equal to rope_kernel / copy_rows_kernel. The non-template kernels are static:
// this header is included by two translation units.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/attention/key_rows.cuh"
#include "backend/cuda/attention/kv_fp8.cuh"
#include "backend/cuda/attention/params.h"
#include "backend/cuda/attention/plan.h"
#include "backend/cuda/common/numerics.cuh"

namespace dsv4::cuda {
namespace rowwise_detail {

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// The e2m1 grid value nearest to x (RNE, ties to the even code), with x's sign; NaN -> ±0 (core f32_to_e2m1).
__device__ __forceinline__ float e2m1_round(float x) { return e2m1_to_f32(f32_to_e2m1(x)); }

__device__ __forceinline__ float clampf(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

// The largest of a warp's values, on every lane.
__device__ __forceinline__ float warp_amax(float a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
  return a;
}

// The ue8m0 scale of one 64-value FP8 block held by a warp as (va, vb) per lane (core block_scale with the 1e-4
// floor; NaN when the block holds a NaN, inf when it holds an inf). Every lane of the warp calls it.
__device__ __forceinline__ float fp8_block_scale(float va, float vb) {
  constexpr float kInvE4m3Max = static_cast<float>(1.0 / 448.0);
  const bool nan = __any_sync(0xffffffffu, isnan(va) || isnan(vb));
  const float amax = warp_amax(fmaxf(fabsf(va), fabsf(vb)));
  return nan ? __uint_as_float(0x7FC00000u) : ue8m0_ceil(fmaxf(amax, 1e-4f) * kInvE4m3Max);
}

// FP8 e4m3 fake-quant with a ue8m0 scale of one 64-value block held by a warp as (va, vb) per lane (bf16 values;
// a NaN anywhere in the block makes the whole block NaN). Every lane of the warp calls it.
__device__ __forceinline__ void fp8_block_fake_quant(float& va, float& vb) {
  const float s = fp8_block_scale(va, vb);
  va = round_bf16(e4m3_to_f32(f32_to_e4m3(clampf(va / s, -448.0f, 448.0f))) * s);
  vb = round_bf16(e4m3_to_f32(f32_to_e4m3(clampf(vb / s, -448.0f, 448.0f))) * s);
}

// FP4 e2m1 fake-quant with a ue8m0 scale of one 32-value block, value v per lane (already Hadamard-scaled and
// bf16-rounded). Every lane of the warp calls it.
// The ue8m0 scale of an FP4 block from its amax (NaN when the block holds a NaN), and one value's fake-quant.
__device__ __forceinline__ float fp4_block_scale(float amax, bool nan) {
  constexpr float kInvE2m1Max = static_cast<float>(1.0 / 6.0);
  constexpr float kFp4AmaxFloor = 6.0f * 0x1p-126f;
  return nan ? __uint_as_float(0x7FC00000u) : ue8m0_ceil(fmaxf(amax, kFp4AmaxFloor) * kInvE2m1Max);
}
__device__ __forceinline__ float fp4_quant(float v, float s) {
  return round_bf16(e2m1_round(clampf(v / s, -6.0f, 6.0f)) * s);
}

__device__ __forceinline__ float fp4_block_fake_quant(float v) {
  const bool nan = __any_sync(0xffffffffu, isnan(v));
  float amax = fabsf(v);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  return fp4_quant(v, fp4_block_scale(amax, nan));
}

}  // namespace rowwise_detail

static __global__ void rope_kernel(const __grid_constant__ RopeParams p) {
  grid_dependency_sync();
  using namespace rowwise_detail;
  const int np = p.rope_dim / 2;
  const int64_t total = p.T * p.segs * np;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(idx % np);
    const int64_t seg = idx / np;  // t * segs + g
    const int64_t t = seg / p.segs;
    const float ang = __fmul_rn(static_cast<float>(p.pos[t]), p.freqs[i]);
    float sn, cs;
    sincosf(ang, &sn, &cs);
    if (p.inverse) sn = -sn;
    float* v = p.x + seg * p.dim + (p.dim - p.rope_dim) + 2 * i;
    const float a = v[0], b = v[1];
    const float y0 = __fsub_rn(__fmul_rn(a, cs), __fmul_rn(b, sn));
    const float y1 = __fadd_rn(__fmul_rn(a, sn), __fmul_rn(b, cs));
    v[0] = p.round_bf16 ? round_bf16(y0) : y0;
    v[1] = p.round_bf16 ? round_bf16(y1) : y1;
  }
}

// blockDim.x a multiple of 32; one warp per (row, 64-value block).
static __global__ void kv_round_kernel(const __grid_constant__ KvRoundParams p) {
  grid_dependency_sync();
  using namespace rowwise_detail;
  const int lane = threadIdx.x & 31;
  const int blocks = (p.dim + 63) / 64;
  const int64_t units = p.n_rows * blocks;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t u = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32; u < units; u += warps) {
    const int64_t r = u / blocks;
    const int c0 = static_cast<int>(u % blocks) * 64;
    float* x = p.x + r * p.dim;
    const int ca = c0 + lane, cb = c0 + 32 + lane;
    float va = ca < p.dim ? round_bf16(x[ca]) : 0.0f;
    float vb = cb < p.dim ? round_bf16(x[cb]) : 0.0f;
    if (p.fp8 && c0 + 64 <= p.nope) fp8_block_fake_quant(va, vb);
    if (ca < p.dim) x[ca] = va;
    if (cb < p.dim) x[cb] = vb;
  }
}

template <int kThreads>
__global__ void __launch_bounds__(kThreads) indexer_round_kernel(const __grid_constant__ IndexerRoundParams p) {
  grid_dependency_sync();
  using namespace rowwise_detail;
  extern __shared__ float xs[];  // [dim]
  const int n = p.dim, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t r = blockIdx.x; r < p.n_rows; r += gridDim.x) {
    float* x = p.x + r * n;
    for (int i = threadIdx.x; i < n; i += kThreads) xs[i] = round_bf16(x[i]);
    __syncthreads();
    for (int h = 1; h < n; h *= 2) {
      for (int pi = threadIdx.x; pi < n / 2; pi += kThreads) {
        const int j = (pi / h) * 2 * h + pi % h;
        const float a = xs[j], b = xs[j + h];
        xs[j] = a + b;
        xs[j + h] = a - b;
      }
      __syncthreads();
    }
    for (int b0 = warp * 32; b0 < n; b0 += kThreads)
      x[b0 + lane] = fp4_block_fake_quant(round_bf16(xs[b0 + lane] * p.hadamard_scale));
    __syncthreads();
  }
}

// indexer_round_warp_kernel<kV>: indexer_round_kernel for dim = 32·kV <= 512 with one warp per row and no
// shared memory or barriers (the block kernel took 0.5 ms for 8192 x 64 rows of 128 at prefill, H200 run 97).
// Lane l holds values [kV·l, kV·l + kV). The butterflies of span h < kV stay in the lane, the others pair lane l
// with l ^ (h / kV); each computes (a + b, a - b) of the pair (a the lower index) exactly as the block kernel,
// so the rows are bitwise equal to it. FP4 blocks of 32 values are 32 / kV lanes: amax and NaN reduced over them.
template <int kV>
__global__ void __launch_bounds__(256) indexer_round_warp_kernel(const __grid_constant__ IndexerRoundParams p) {
  grid_dependency_sync();
  using namespace rowwise_detail;
  constexpr int kBlockLanes = 32 / kV;
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * 8;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5); r < p.n_rows; r += warps) {
    float* x = p.x + r * (32 * kV) + kV * lane;
    float v[kV];
#pragma unroll
    for (int e = 0; e < kV; ++e) v[e] = round_bf16(x[e]);
#pragma unroll
    for (int h = 1; h < kV; h *= 2)
#pragma unroll
      for (int e = 0; e < kV; ++e)
        if ((e & h) == 0) {
          const float a = v[e], b = v[e + h];
          v[e] = a + b;
          v[e + h] = a - b;
        }
#pragma unroll
    for (int m = 1; m < 32; m *= 2) {
      const bool upper = (lane & m) != 0;
#pragma unroll
      for (int e = 0; e < kV; ++e) {
        const float other = __shfl_xor_sync(0xffffffffu, v[e], m);
        v[e] = upper ? other - v[e] : v[e] + other;
      }
    }
    float amax = 0.0f;
    bool nan = false;
#pragma unroll
    for (int e = 0; e < kV; ++e) {
      v[e] = round_bf16(v[e] * p.hadamard_scale);
      nan |= isnan(v[e]);
      amax = fmaxf(amax, fabsf(v[e]));
    }
#pragma unroll
    for (int m = 1; m < kBlockLanes; m *= 2) {
      amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, m));
      nan |= __shfl_xor_sync(0xffffffffu, static_cast<int>(nan), m) != 0;
    }
    const float s = fp4_block_scale(amax, nan);
#pragma unroll
    for (int e = 0; e < kV; ++e) x[e] = fp4_quant(v[e], s);
  }
}

template <int kThreads>
__global__ void __launch_bounds__(kThreads) softmax_pool_kernel(const __grid_constant__ SoftmaxPoolParams p) {
  grid_dependency_sync();
  const int i = blockIdx.x;
  const int64_t j0 = p.offsets[i], j1 = p.offsets[i + 1];
  for (int c = blockIdx.y * kThreads + threadIdx.x; c < p.dim; c += kThreads * gridDim.y) {
    float m = -INFINITY;
    for (int64_t j = j0; j < j1; ++j) {
      const float g = p.g_rows[j][c];
      m = m < g ? g : m;
    }
    float den = 0.0f, num = 0.0f;
    for (int64_t j = j0; j < j1; ++j) {
      const float e = expf(p.g_rows[j][c] - m);
      den = __fadd_rn(den, e);
      num = __fadd_rn(num, __fmul_rn(e, p.a_rows[j][c]));
    }
    p.out[int64_t(i) * p.dim + c] = num / den;
  }
}

template <int kThreads>
__global__ void __launch_bounds__(kThreads) copy_rows_kernel(const __grid_constant__ CopyRowsParams p) {
  grid_dependency_sync();
  for (int r = blockIdx.x; r < p.n; r += gridDim.x) {
    const float* __restrict__ s = p.src[r];
    float* __restrict__ d = p.dst[r];
    for (int c = threadIdx.x; c < p.width; c += kThreads) d[c] = s[c];
  }
}

// Decode-size RoPE with its data in the parameters (under 4 KB): row t at position pos[t] (already f32, the
// reference's conversion), rope_dim / 2 <= kRopeInlineMaxPairs. grid = (T, segment groups of segs_per_cta).
inline constexpr int kRopeInlineMaxRows = 256;
inline constexpr int kRopeInlineMaxPairs = 64;
inline constexpr int kRopeInlineThreads = 256;
struct RopeInlineParams {
  float* __restrict__ x = nullptr;  // f32 [T, segs, dim], in place
  int64_t T = 0;
  int32_t segs = 0;
  int32_t dim = 0;
  int32_t rope_dim = 0;
  int32_t segs_per_cta = 1;
  bool inverse = false;
  bool round_bf16 = false;
  float pos[kRopeInlineMaxRows] = {};
  float freqs[kRopeInlineMaxPairs] = {};
};

template <int kThreads>
__global__ void __launch_bounds__(kThreads) rope_inline_kernel(const __grid_constant__ RopeInlineParams p) {
  grid_dependency_sync();
  using namespace rowwise_detail;
  __shared__ float s_cos[kRopeInlineMaxPairs], s_sin[kRopeInlineMaxPairs];
  const int np = p.rope_dim / 2;
  const int64_t t = blockIdx.x;
  for (int i = threadIdx.x; i < np; i += kThreads) {
    const float ang = __fmul_rn(p.pos[t], p.freqs[i]);
    float sn, cs;
    sincosf(ang, &sn, &cs);
    s_cos[i] = cs;
    s_sin[i] = p.inverse ? -sn : sn;
  }
  __syncthreads();
  const int g0 = static_cast<int>(blockIdx.y) * p.segs_per_cta;
  const int n = (min(p.segs, g0 + p.segs_per_cta) - g0) * np;
  for (int idx = threadIdx.x; idx < n; idx += kThreads) {
    const int g = g0 + idx / np, i = idx % np;
    float* v = p.x + (t * p.segs + g) * p.dim + (p.dim - p.rope_dim) + 2 * i;
    const float cs = s_cos[i], sn = s_sin[i];
    const float a = v[0], b = v[1];
    const float y0 = __fsub_rn(__fmul_rn(a, cs), __fmul_rn(b, sn));
    const float y1 = __fadd_rn(__fmul_rn(a, sn), __fmul_rn(b, cs));
    v[0] = p.round_bf16 ? round_bf16(y0) : y0;
    v[1] = p.round_bf16 ? round_bf16(y1) : y1;
  }
}

// Decode-size row copies with the pointer lists in the parameters: dst[r] = src[r] for r < n <=
// kCopyInlineMaxRows (no aliasing within a launch, as copy_rows_kernel). One CTA per row; vec4: width % 4 == 0
// and every pointer 16-byte aligned.
inline constexpr int kCopyInlineMaxRows = 128;
inline constexpr int kCopyInlineThreads = 128;
struct CopyRowsInlineParams {
  int32_t n = 0;
  int32_t width = 0;
  int32_t rope_dim = 0;  // pack_rows_fp8kv_kernel: the bf16 tail of each row
  bool vec4 = false;
  const float* src[kCopyInlineMaxRows];
  float* dst[kCopyInlineMaxRows];
};

template <int kThreads>
__global__ void __launch_bounds__(kThreads) copy_rows_inline_kernel(const __grid_constant__ CopyRowsInlineParams p) {
  grid_dependency_sync();
  const float* __restrict__ s = p.src[blockIdx.x];
  float* __restrict__ d = p.dst[blockIdx.x];
  if (p.vec4) {
    const int n4 = p.width / 4;
    for (int c = threadIdx.x; c < n4; c += kThreads)
      reinterpret_cast<float4*>(d)[c] = reinterpret_cast<const float4*>(s)[c];
  } else {
    for (int c = threadIdx.x; c < p.width; c += kThreads) d[c] = s[c];
  }
}

// Mxfp4 rows (core/row_blocks.h) of p.src[r] f32 [p.width] into p.dst[r], r < p.n: core fp4_pack bit for bit.
// One CTA per row, thread i element i (one warp per 32-value block; p.width % 32 == 0, <= kMxfp4PackMaxDim).
inline constexpr int kMxfp4PackMaxDim = 1024;
static __global__ void __launch_bounds__(kMxfp4PackMaxDim) pack_rows_mxfp4_kernel(
    const __grid_constant__ CopyRowsInlineParams p) {
  grid_dependency_sync();
  using namespace rowwise_detail;
  constexpr float kInvE2m1Max = static_cast<float>(1.0 / 6.0);
  constexpr float kFp4AmaxFloor = 6.0f * 0x1p-126f;
  const int i = threadIdx.x, lane = i & 31, dim = p.width;
  const float v = p.src[blockIdx.x][i];
  auto* d = reinterpret_cast<uint8_t*>(p.dst[blockIdx.x]);
  const bool nan = __any_sync(0xffffffffu, isnan(v));
  const float amax = warp_amax(fabsf(v));
  const float s = nan ? __uint_as_float(0x7FC00000u) : ue8m0_ceil(fmaxf(amax, kFp4AmaxFloor) * kInvE2m1Max);
  const bool bad = !isfinite(s);  // NaN / inf in the block: scale 0xFF, codes 0
  uint32_t word = bad ? 0u : f32_to_e2m1(clampf(v / s, -6.0f, 6.0f)) << (4 * (lane & 7));
  word |= __shfl_xor_sync(0xffffffffu, word, 1);
  word |= __shfl_xor_sync(0xffffffffu, word, 2);
  word |= __shfl_xor_sync(0xffffffffu, word, 4);
  if ((lane & 7) == 0) reinterpret_cast<uint32_t*>(d)[i / 8] = word;  // elements i .. i + 7
  const int used = dim / 2 + dim / 32, pad = (used + 3) / 4 * 4 - used;
  if (lane == 0) d[dim / 2 + i / 32] = bad ? uint8_t{0xFF} : static_cast<uint8_t>(__float_as_uint(s) >> 23);
  if (i < pad) d[used + i] = 0;
}

// Fp8Kv rows (core/row_blocks.h) of p.src[r] f32 [p.width] into p.dst[r], r < p.n: core fp8kv_pack_row bit for
// bit (fp8_act_quant of the nope = width - rope_dim values in blocks of 64, the rope values as bf16, zero pad).
// One CTA per row, one warp per 64-value block (two values per lane), then the rope values and the pad.
inline constexpr int kFp8KvPackThreads = 256;
static __global__ void __launch_bounds__(kFp8KvPackThreads) pack_rows_fp8kv_kernel(
    const __grid_constant__ CopyRowsInlineParams p) {
  grid_dependency_sync();
  using namespace rowwise_detail;
  const float* __restrict__ x = p.src[blockIdx.x];
  auto* d = reinterpret_cast<uint8_t*>(p.dst[blockIdx.x]);
  const int rope = p.rope_dim, nope = p.width - rope, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int b = warp; b < nope / 64; b += kFp8KvPackThreads / 32) {
    const float va = x[b * 64 + lane], vb = x[b * 64 + 32 + lane];
    const float s = fp8_block_scale(va, vb);
    const bool bad = !isfinite(s);  // NaN / inf in the block: scale 0xFF, codes 0x7F (NaN)
    d[b * 64 + lane] = bad ? uint8_t{0x7F} : f32_to_e4m3(clampf(va / s, -448.0f, 448.0f));
    d[b * 64 + 32 + lane] = bad ? uint8_t{0x7F} : f32_to_e4m3(clampf(vb / s, -448.0f, 448.0f));
    if (lane == 0) d[nope + 2 * rope + b] = bad ? uint8_t{0xFF} : static_cast<uint8_t>(__float_as_uint(s) >> 23);
  }
  auto* r16 = reinterpret_cast<__nv_bfloat16*>(d + nope);
  for (int i = threadIdx.x; i < rope; i += kFp8KvPackThreads) r16[i] = __float2bfloat16_rn(x[nope + i]);
  const int used = nope + 2 * rope + nope / 64, pad = (used + 7) / 8 * 8 - used;
  if (static_cast<int>(threadIdx.x) < pad) d[used + threadIdx.x] = 0;
}

// Decodes the Fp8Kv rows of a sparse-attention key list (tagged pointers p.keys[e], attention/kv_fp8.cuh) into
// p.out rows f32 [p.dim] and repoints p.keys[e] at them; untagged (f32) rows stay. The generic kernel's input.
struct UnpackKvRowsParams {
  const float** keys = nullptr;  // [n] device pointers, rewritten
  float* out = nullptr;          // f32 [n, dim]
  int64_t n = 0;
  int32_t dim = 0;
  int32_t rope_dim = 0;
};
inline constexpr int kUnpackKvThreads = 128;
static __global__ void __launch_bounds__(kUnpackKvThreads) unpack_kv_rows_kernel(
    const __grid_constant__ UnpackKvRowsParams p) {
  grid_dependency_sync();
  const int64_t e = blockIdx.x;
  const float* k = p.keys[e];
  if (!kv_fp8_tagged(k)) return;
  const uint8_t* row = kv_fp8_row(k);
  float* o = p.out + e * p.dim;
  for (int c = 4 * threadIdx.x; c < p.dim; c += 4 * kUnpackKvThreads)
    *reinterpret_cast<float4*>(o + c) = kv_fp8_load4(row, c, p.dim - p.rope_dim, p.rope_dim);
  __syncthreads();  // every thread read p.keys[e]
  if (threadIdx.x == 0) p.keys[e] = o;
}

// Decodes the Mxfp4 key rows of p.keys[e] (e < p.n) into p.out rows f32 [p.dim] and repoints p.keys[e] at them
// (the f32 score kernels' input when the tensor-core one does not apply). One CTA of p.dim threads per entry.
struct UnpackKeysParams {
  const float** keys = nullptr;  // [n] device pointers, rewritten
  float* out = nullptr;          // f32 [n, dim]
  int64_t n = 0;
  int32_t dim = 0;
};
static __global__ void __launch_bounds__(kMxfp4PackMaxDim) unpack_key_rows_kernel(
    const __grid_constant__ UnpackKeysParams p) {
  grid_dependency_sync();
  const int64_t e = blockIdx.x;
  const int i = threadIdx.x;
  const auto* r = reinterpret_cast<const uint8_t*>(p.keys[e]);
  float* o = p.out + e * p.dim;
  o[i] = e2m1_to_f32(r[i / 2] >> (4 * (i & 1))) * e8m0_to_f32(r[p.dim / 2 + i / 32]);
  __syncthreads();  // every thread read p.keys[e]
  if (i == 0) p.keys[e] = o;
}

static __global__ void __launch_bounds__(256) resolve_rows_kernel(const __grid_constant__ ResolveRowsParams p) {
  grid_dependency_sync();
  const int i = blockIdx.y;
  const int64_t o0 = p.out_offsets[i], len = p.out_offsets[i + 1] - o0;
  const KeyRowList list = KeyRowList::of(p, i);
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < len; j += int64_t(gridDim.x) * blockDim.x)
    p.out[o0 + j] = list.row(p, i, static_cast<int>(j));
}

}  // namespace dsv4::cuda
