// finish_rows_kernel: Ops::finish_rows in one launch (the q and kv heads, the compressor entries): one warp per
// segment of dim <= 512 values, in registers and the warp's shared-memory row, applying in order the bf16
// rounding of the input, the RMSNorm (rms_norm_f32_kernel<32, kChunks>'s lane layout and f64 summation order),
// RoPE (rope_inline_kernel's angle and arithmetic), then the cache rounding (kv_round_kernel's 64-value FP8
// blocks, or indexer_round_kernel's Hadamard butterflies and FP4 blocks of 32). Each step is the arithmetic of
// the kernel it replaces, so the result is bitwise equal to the op sequence on this backend, in one kernel
// instead of up to four (each of those was a 2-4 us launch at decode: docs/perf.md run 26 profile).
#pragma once
#include <cstdint>

#include "backend/cuda/attention/rowwise.cuh"
#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/common/pdl.cuh"

namespace dsv4::cuda {

inline constexpr int kFinishMaxDim = 512;
inline constexpr int kFinishMaxRows = 256;
inline constexpr int kFinishWarps = 4;
enum class FinishRound : int32_t { None = 0, Bf16 = 1, KvFp8 = 2, IndexerFp4 = 3 };

struct FinishRowsParams {
  float* x = nullptr;             // f32 [n_seg, dim], 16-byte aligned, in place
  const float* norm_w = nullptr;  // f32 [dim] or null
  int64_t n_seg = 0;
  int32_t segs_per_row = 1;       // segment s belongs to row s / segs_per_row
  int32_t dim = 0;                // multiple of 4, <= kFinishMaxDim
  int32_t rope_dim = 0;           // 0: no RoPE
  int32_t nope = 0;               // dim - rope_dim for the FP8 blocks (multiple of 64)
  float eps = 0.0f;
  float hadamard_scale = 1.0f;
  bool round_input = false;
  bool norm = false;
  bool round_bf16 = false;        // bf16 activations: the norm and RoPE outputs are rounded
  FinishRound round = FinishRound::None;
  float pos[kFinishMaxRows] = {};
  float freqs[kRopeInlineMaxPairs] = {};
};

template <int kChunks>
__global__ void __launch_bounds__(kFinishWarps * 32) finish_rows_kernel(const __grid_constant__ FinishRowsParams p) {
  grid_dependency_sync();
  using namespace rowwise_detail;
  __shared__ float s_rows[kFinishWarps][kFinishMaxDim];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t seg = static_cast<int64_t>(blockIdx.x) * kFinishWarps + warp;
  if (seg >= p.n_seg) return;  // warp-uniform; no CTA-wide barrier below
  float* xs = s_rows[warp];
  float4* row = reinterpret_cast<float4*>(p.x + seg * p.dim);
  const int n = p.dim, n4 = n / 4;
  float4 v[kChunks];
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = lane + i * 32;
    v[i] = c < n4 ? row[c] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (p.round_input) {
      v[i].x = round_bf16(v[i].x);
      v[i].y = round_bf16(v[i].y);
      v[i].z = round_bf16(v[i].z);
      v[i].w = round_bf16(v[i].w);
    }
  }
  if (p.norm) {
    double ss = 0.0;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      ss = fma_sq4(v[i], ss);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float inv = 1.0f / sqrtf(static_cast<float>(ss / static_cast<double>(n)) + p.eps);
    auto scale = [&](float x, int i) {
      float y = __fmul_rn(x, inv);
      if (p.norm_w) y = __fmul_rn(y, p.norm_w[i]);
      return p.round_bf16 ? round_bf16(y) : y;
    };
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int c = lane + i * 32;
      v[i].x = scale(v[i].x, 4 * c + 0);
      v[i].y = scale(v[i].y, 4 * c + 1);
      v[i].z = scale(v[i].z, 4 * c + 2);
      v[i].w = scale(v[i].w, 4 * c + 3);
    }
  }
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const int c = lane + i * 32;
    if (c < n4) reinterpret_cast<float4*>(xs)[c] = v[i];
  }
  __syncwarp();
  if (p.rope_dim > 0) {
    const int np = p.rope_dim / 2, base = n - p.rope_dim;
    const float pos = p.pos[seg / p.segs_per_row];
    for (int i = lane; i < np; i += 32) {
      const float ang = __fmul_rn(pos, p.freqs[i]);
      float sn, cs;
      sincosf(ang, &sn, &cs);
      const float a = xs[base + 2 * i], b = xs[base + 2 * i + 1];
      const float y0 = __fsub_rn(__fmul_rn(a, cs), __fmul_rn(b, sn));
      const float y1 = __fadd_rn(__fmul_rn(a, sn), __fmul_rn(b, cs));
      xs[base + 2 * i] = p.round_bf16 ? round_bf16(y0) : y0;
      xs[base + 2 * i + 1] = p.round_bf16 ? round_bf16(y1) : y1;
    }
    __syncwarp();
  }
  if (p.round == FinishRound::Bf16) {
    for (int i = lane; i < n; i += 32) xs[i] = round_bf16(xs[i]);
  } else if (p.round == FinishRound::KvFp8) {
    for (int c0 = 0; c0 < n; c0 += 64) {
      const int ca = c0 + lane, cb = c0 + 32 + lane;
      float va = ca < n ? round_bf16(xs[ca]) : 0.0f;
      float vb = cb < n ? round_bf16(xs[cb]) : 0.0f;
      if (c0 + 64 <= p.nope) fp8_block_fake_quant(va, vb);
      if (ca < n) xs[ca] = va;
      if (cb < n) xs[cb] = vb;
    }
  } else if (p.round == FinishRound::IndexerFp4) {
    for (int i = lane; i < n; i += 32) xs[i] = round_bf16(xs[i]);
    __syncwarp();
    for (int h = 1; h < n; h *= 2) {
      for (int pi = lane; pi < n / 2; pi += 32) {
        const int j = (pi / h) * 2 * h + pi % h;
        const float a = xs[j], b = xs[j + h];
        xs[j] = a + b;
        xs[j + h] = a - b;
      }
      __syncwarp();
    }
    for (int b0 = 0; b0 < n; b0 += 32)
      xs[b0 + lane] = fp4_block_fake_quant(round_bf16(xs[b0 + lane] * p.hadamard_scale));
  }
  __syncwarp();
  for (int c = lane; c < n4; c += 32) row[c] = reinterpret_cast<const float4*>(xs)[c];
}

}  // namespace dsv4::cuda
