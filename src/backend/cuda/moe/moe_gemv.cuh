// moe_gemv_mma_kernel<kNT, kGateUp, kFmt>: decode-time grouped expert GEMM (paths MmaGemv / MmaGemvWide), the
// swap-AB form of moe_gemm_mma_kernel: the weights are mma.sync's 16-row A operand, the (few) slots of a tile
// its 8-wide B operand (kNT n-tiles of 8 slots). Grid: x = N / 16 (gate_up: 16 rows of w1 and the same 16 of
// w3) or N / 32 (down: 32 rows of w2), y = tile capacity (or 1 with tiles == nullptr: one tile of single_rows
// rows of expert 0). Each CTA streams its weight rows of one expert exactly once; its kMoeGemvWarps warps split
// K in supersteps of 128 (warp w takes supersteps w, w + 8, ...), one superstep prefetched in registers.
// Within a superstep, lane (g = lane / 4, q = lane % 4) loads, for weight rows g and g + 8, the 32 consecutive
// K elements [32q, 32q + 32) with 16-byte loads (MXFP4: one whole 32-block with its e8m0 byte; FP8: 32 codes,
// one 128x128 block scale), and the same 32 K elements of its B slot. The dot product is a sum over K, so the
// order in which K is fed to the mma does not matter as long as A and B agree: mma step t (0..7) takes the
// group of four [4t, 4t + 4) of each lane, as the pairs (x0, x2) and (x1, x3). The codes are turned into bf16
// by bit moves (sign and magnitude bits shifted under the bf16 exponent: code · 2^-126 for e2m1, code · 2^-120
// for e4m3, subnormals included) and one bf16x2 multiply by scale · 2^126 (resp. 2^120): exact, the values
// the bf16 mma path expands (code · 2^(e - 127) is a normal bf16). Scales outside the one-multiply range take
// two multiplies. f32 accumulation; the warps' partial sums are reduced through shared memory in warp order
// (deterministic), then the shared epilogue (moe_store: clamped SwiGLU and routing weight, or the scatter).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/moe/moe_gemm.cuh"
#include "backend/cuda/moe/params.h"
#include "backend/cuda/moe/plan.h"

namespace dsv4::cuda {

// Top nibble (MXFP4) / byte (FP8) of each 16-bit half as bf16x2 times 2^-126 / 2^-120.
__device__ __forceinline__ uint32_t gemv_fp4_pair(uint32_t v) { return (v & 0x80008000u) | ((v >> 6) & 0x01C001C0u); }
__device__ __forceinline__ uint32_t gemv_fp8_pair(uint32_t v) { return (v & 0x80008000u) | ((v >> 4) & 0x07F007F0u); }
__device__ __forceinline__ uint32_t gemv_mul_bf16x2(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("mul.rn.bf16x2 %0, %1, %2;\n" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

// Multipliers of an e8m0 scale byte x for codes biased by 2^-bias: one multiply by 2^(x - 127 + bias) when that
// is a finite bf16, else 2^bias then 2^(x - 127) (x = 255: NaN).
struct GemvScale {
  uint32_t m1, m2;
  bool two;
};
__device__ __forceinline__ GemvScale gemv_scale(uint32_t x, uint32_t bias) {
  GemvScale s;
  const uint32_t f = x + bias;  // bf16 exponent field of 2^(x - 127 + bias)
  s.two = f > 254u;
  const uint32_t e1 = s.two ? 127u + bias : f;
  const uint32_t b2 = x == 255u ? 0x7FC0u : (x << 7);
  s.m1 = (e1 << 7) | (e1 << 23);
  s.m2 = b2 | (b2 << 16);
  return s;
}
__device__ __forceinline__ uint32_t gemv_apply(uint32_t code, const GemvScale& s) {
  uint32_t v = gemv_mul_bf16x2(code, s.m1);
  if (s.two) v = gemv_mul_bf16x2(v, s.m2);
  return v;
}

// kQuantA (fused input quant): A is f32 (p.a_f32) and FP8 fake-quantized per 1x128 block as it is loaded, with
// exactly moe_fake_quant_kernel's arithmetic (the 4 lanes q = 0..3 of a row hold the block's 128 values: amax
// and NaN by two xor shuffles), so the bf16 B operand is bit-identical to the unfused path's and the separate
// fake-quant launch (and its buffer) disappears.
__device__ __forceinline__ void gemv_fake_quant_a(const uint4 (&xw)[8], uint4 (&xv)[4]) {
  constexpr float kInvE4m3Max = static_cast<float>(1.0 / 448.0);
  float v[32];
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    v[4 * c] = __uint_as_float(xw[c].x);
    v[4 * c + 1] = __uint_as_float(xw[c].y);
    v[4 * c + 2] = __uint_as_float(xw[c].z);
    v[4 * c + 3] = __uint_as_float(xw[c].w);
  }
  float amax = 0.0f;
  bool nan = false;
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    nan |= isnan(v[i]);
    amax = fmaxf(amax, fabsf(v[i]));
  }
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
  int anan = nan ? 1 : 0;
  anan |= __shfl_xor_sync(0xffffffffu, anan, 1);
  anan |= __shfl_xor_sync(0xffffffffu, anan, 2);
  const float s = anan ? __uint_as_float(0x7FC00000u) : ue8m0_ceil(__fmul_rn(fmaxf(amax, 1e-4f), kInvE4m3Max));
  uint32_t packed[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    float o[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float c = __fdiv_rn(v[2 * i + e], s);
      const float qv = isnan(c) ? c : e4m3_to_f32(f32_to_e4m3(fminf(fmaxf(c, -448.0f), 448.0f)));
      o[e] = __fmul_rn(qv, s);
    }
    const __nv_bfloat162 h = __floats2bfloat162_rn(o[0], o[1]);
    packed[i] = *reinterpret_cast<const uint32_t*>(&h);
  }
#pragma unroll
  for (int c = 0; c < 4; ++c) xv[c] = make_uint4(packed[4 * c], packed[4 * c + 1], packed[4 * c + 2], packed[4 * c + 3]);
}

template <int kNT, bool kGateUp, MoeWeightFormat kFmt, bool kQuantA = false>
__global__ void __launch_bounds__(kMoeGemvWarps * 32, kNT > 2 ? 1 : 2) moe_gemv_mma_kernel(const __grid_constant__ MoeGemmParams p) {
  constexpr bool kFp4 = kFmt == MoeWeightFormat::Mxfp4;
  constexpr int kRaw = kFp4 ? 1 : 2;          // uint4 per (matrix row) per superstep
  constexpr int kCols = kGateUp ? 16 : 32;    // output columns per CTA
  constexpr int kW = kMoeGemvWarps;
  __shared__ float red[kW][2][4][32];

  int expert = 0, row0 = 0, rows = p.single_rows;
  if (p.tiles) {
    const int tile = blockIdx.y;
    if (tile >= *p.n_tiles) return;
    expert = p.tiles[3 * tile];
    row0 = p.tiles[3 * tile + 1];
    rows = p.tiles[3 * tile + 2];
  }
  rows = min(rows, 8 * kNT);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
  const int n0 = blockIdx.x * kCols;
  const int K = p.K, S = K / 128;
  const int64_t row_bytes = kFp4 ? K / 2 : K;
  const MoeWeightPtr wp0 = p.w1[expert];
  const MoeWeightPtr wp1 = kGateUp ? p.w3[expert] : wp0;

  // Set a (gate_up: w1 / w3 at rows n0..; down: rows n0 + 16a..), half h: weight row n0 + 16a' + g + 8h.
  const uint8_t* wrow[2][2];
  const uint8_t* srow[2][2];
#pragma unroll
  for (int a = 0; a < 2; ++a) {
    const MoeWeightPtr& w = a ? wp1 : wp0;
    const int base = n0 + (kGateUp ? 0 : 16 * a);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = base + g + 8 * h;
      wrow[a][h] = w.data + static_cast<int64_t>(r) * row_bytes + q * (kFp4 ? 16 : 32);
      srow[a][h] = kFp4 ? w.scale + static_cast<int64_t>(r) * (K / 32) + q : w.scale + static_cast<int64_t>(base / 128) * S;
    }
  }
  const int nact = (rows + 7) >> 3;
  // The lane's A row as 16-byte words (bf16: 4 per superstep, f32 with kQuantA: 8), nullptr past `rows`.
  constexpr int kXW = kQuantA ? 8 : 4;
  const uint4* xrow[kNT];
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt) {
    const int j = 8 * nt + g;
    xrow[nt] = nullptr;
    if (j < rows) {
      const int i = row0 + j;
      const int64_t arow = p.gather ? p.perm[i] / p.top_k : i;
      if constexpr (kQuantA) xrow[nt] = reinterpret_cast<const uint4*>(p.a_f32 + arow * K + q * 32);
      else xrow[nt] = reinterpret_cast<const uint4*>(p.a_bf16 + arow * K + q * 32);
    }
  }
  auto to_b = [&](const uint4 (&xw)[kXW], uint4 (&xv)[4]) {
    if constexpr (kQuantA) {
      gemv_fake_quant_a(xw, xv);
    } else {
#pragma unroll
      for (int c = 0; c < 4; ++c) xv[c] = xw[c];
    }
  };

  float acc[2][kNT][4];
#pragma unroll
  for (int a = 0; a < 2; ++a)
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[a][nt][r] = 0.0f;

  uint4 raw[2][2][kRaw], raw_n[2][2][kRaw];
  uint32_t sc[2][2], sc_n[2][2];
  uint4 xb[4], xb_n[kXW];
  auto load = [&](int s, uint4 (&rw)[2][2][kRaw], uint32_t (&sw)[2][2], uint4 (&xw)[kXW]) {
#pragma unroll
    for (int a = 0; a < 2; ++a)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint4* src = reinterpret_cast<const uint4*>(wrow[a][h] + static_cast<int64_t>(s) * (kFp4 ? 64 : 128));
#pragma unroll
        for (int c = 0; c < kRaw; ++c) rw[a][h][c] = __ldg(src + c);
        sw[a][h] = kFp4 ? __ldg(srow[a][h] + 4 * s) : (h == 0 ? __ldg(srow[a][0] + s) : 0u);
      }
    const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int c = 0; c < kXW; ++c) xw[c] = xrow[0] ? __ldg(xrow[0] + s * (4 * kXW) + c) : zero;
  };

  int s = warp;
  if (s < S) {
    uint4 xw0[kXW];
    load(s, raw, sc, xw0);
    to_b(xw0, xb);
  }
  for (; s < S; s += kW) {
    const bool more = s + kW < S;
    if (more) load(s + kW, raw_n, sc_n, xb_n);
    // A fragment {a0, a1, a2, a3} of set a, mma step t.
    auto decode = [&](int a, int t, uint32_t (&f)[4]) {
      if constexpr (kFp4) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const GemvScale gs = gemv_scale(sc[a][h], 126u);
          const uint4 r4 = raw[a][h][0];
          const uint32_t word = (t >> 1) == 0 ? r4.x : (t >> 1) == 1 ? r4.y : (t >> 1) == 2 ? r4.z : r4.w;
          // bytes (B0, B2, B1, B3): nibble p of the low half pairs with nibble p of the high half:
          // p = 0..3 -> (e0, e2), (e1, e3), (e4, e6), (e5, e7) of the word's 8 elements.
          const uint32_t w = __byte_perm(word, 0u, 0x3120);
          const int p0 = 2 * (t & 1);
          f[h] = gemv_apply(gemv_fp4_pair(w << (12 - 4 * p0)), gs);
          f[2 + h] = gemv_apply(gemv_fp4_pair(w << (8 - 4 * p0)), gs);
        }
      } else {
        const GemvScale gs = gemv_scale(sc[a][0], 120u);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint4 r4 = raw[a][h][t >> 2];
          const uint32_t word = (t & 3) == 0 ? r4.x : (t & 3) == 1 ? r4.y : (t & 3) == 2 ? r4.z : r4.w;
          f[h] = gemv_apply(gemv_fp8_pair(word << 8), gs);  // (e0, e2)
          f[2 + h] = gemv_apply(gemv_fp8_pair(word), gs);   // (e1, e3)
        }
      }
    };
    auto mma_step = [&](int nt, int t, const uint4 (&xv)[4], const uint32_t (&f0)[4], const uint32_t (&f1)[4]) {
      const uint32_t lo = (t & 1) ? xv[t >> 1].z : xv[t >> 1].x;
      const uint32_t hi = (t & 1) ? xv[t >> 1].w : xv[t >> 1].y;
      const uint32_t b[2] = {__byte_perm(lo, hi, 0x5410), __byte_perm(lo, hi, 0x7632)};
      moe_mma_bf16(acc[0][nt], f0, b);
      moe_mma_bf16(acc[1][nt], f1, b);
    };
    auto load_x = [&](int nt, uint4 (&xv)[4]) {
      uint4 xw[kXW];
#pragma unroll
      for (int c = 0; c < kXW; ++c) xw[c] = xrow[nt] ? __ldg(xrow[nt] + s * (4 * kXW) + c) : make_uint4(0, 0, 0, 0);
      to_b(xw, xv);
    };
    if constexpr (kNT > 2) {
      // Many slots: decode the superstep once (64 registers), reuse it for every n-tile.
      uint32_t af[2][8][4];
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        decode(0, t, af[0][t]);
        decode(1, t, af[1][t]);
      }
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        if (nt < nact) {
          uint4 xv[4];
          if (nt == 0) {
#pragma unroll
            for (int c = 0; c < 4; ++c) xv[c] = xb[c];
          } else {
            load_x(nt, xv);
          }
#pragma unroll
          for (int t = 0; t < 8; ++t) mma_step(nt, t, xv, af[0][t], af[1][t]);
        }
      }
    } else {
      // Few slots (decode): decode step by step (fewer registers); a second n-tile decodes again.
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) {
        if (nt < nact) {
          uint4 xv[4];
          if (nt == 0) {
#pragma unroll
            for (int c = 0; c < 4; ++c) xv[c] = xb[c];
          } else {
            load_x(nt, xv);
          }
#pragma unroll
          for (int t = 0; t < 8; ++t) {
            uint32_t f0[4], f1[4];
            decode(0, t, f0);
            decode(1, t, f1);
            mma_step(nt, t, xv, f0, f1);
          }
        }
      }
    }
    if (more) {
#pragma unroll
      for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
          for (int c = 0; c < kRaw; ++c) raw[a][h][c] = raw_n[a][h][c];
          sc[a][h] = sc_n[a][h];
        }
      to_b(xb_n, xb);
    }
  }

  // Reduce the warps' partial sums (warp order) and store, one n-tile at a time.
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt) {
    if (nt < nact) {
      __syncthreads();
#pragma unroll
      for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int r = 0; r < 4; ++r) red[warp][a][r][lane] = acc[a][nt][r];
      __syncthreads();
      for (int idx = threadIdx.x; idx < (kGateUp ? 128 : 256); idx += kW * 32) {
        const int a = kGateUp ? 0 : idx >> 7, r = (idx >> 5) & 3, l = idx & 31;
        // C fragment: c0 (row g, slot 2q), c1 (row g, slot 2q + 1), c2 / c3 rows g + 8.
        const int slot = 8 * nt + 2 * (l & 3) + (r & 1);
        const int col = n0 + 16 * a + (l >> 2) + 8 * (r >> 1);
        float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
        for (int w = 0; w < kW; ++w) {
          s0 += red[w][a][r][l];
          if (kGateUp) s1 += red[w][1][r][l];
        }
        if (slot < rows) moe_store<kGateUp>(p, row0 + slot, col, s0, s1);
      }
    }
  }
}

}  // namespace dsv4::cuda
