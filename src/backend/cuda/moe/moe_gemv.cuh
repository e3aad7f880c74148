// moe_gemv_mma_kernel<kNT, kGateUp, kFmt, kQuantA, kW>: decode-time grouped expert GEMM (paths MmaGemv / MmaGemvWide),
// the swap-AB form of moe_gemm_mma_kernel: the weights are mma.sync's 16-row A operand, the (few) slots of a tile its
// 8-wide B operand (kNT n-tiles of 8 slots). Grid: x = N / 16 (gate_up: 16 rows of w1 and the same 16 of w3) or N / 32
// (down: 32 rows of w2), y = tile capacity (or 1 with tiles == nullptr: one tile of single_rows rows of expert 0). Each
// CTA streams its weight rows of one expert exactly once; its kW warps (8, or 2 on large grids: moe_gemv_warps) split K
// in supersteps of 128 (warp w takes supersteps w, w + kW, ...), one superstep prefetched in registers.
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

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe_gemm.cuh"
#include "backend/cuda/moe/params.h"
#include "backend/cuda/moe/plan.h"

namespace dsv4::cuda {

// FP8: top byte of each 16-bit half as bf16x2 times 2^-120.
// MXFP4: nibble position pp (0, 1) of each 16-bit half of w (use w >> 8 for positions 2, 3) as bf16x2 times
// 2^-126: mask the two nibbles, one multiply writes two copies of each (sign copy at bits [15:12], magnitude copy
// at [9:6] of its half; the copies do not overlap, so the product is their OR), keep bit 15 and bits [8:6].
__device__ __forceinline__ uint32_t gemv_fp4_pair(uint32_t w, int pp) {
  const uint32_t m = w & (0x000F000Fu << (4 * pp));
  return (m * ((1u << (12 - 4 * pp)) + (1u << (6 - 4 * pp)))) & 0x81C081C0u;
}
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
// kTwo: some lane of the warp has a scale outside the one-multiply range (e8m0 above 2^1 for MXFP4, 2^7 for
// FP8), so every lane checks its own; else one multiply and no predicated second one.
template <bool kTwo>
__device__ __forceinline__ uint32_t gemv_apply(uint32_t code, const GemvScale& s) {
  uint32_t v = gemv_mul_bf16x2(code, s.m1);
  if constexpr (kTwo) {
    if (s.two) v = gemv_mul_bf16x2(v, s.m2);
  }
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

// kW warps per CTA: kMoeGemvWarps, or kMoeGemvWarpsLargeGrid on large grids (moe_gemv_warps): each warp then takes
// more supersteps, so its set-up (tile, row pointers, gather division) and the reduction cost less per weight byte,
// and the small CTAs spread evenly over the SMs (H200 run 159, Flash T=64, 4 against 8 warps: gate/up 446 -> 381 us,
// down 274 -> 225 us; run 201, 2 against 4: 356 -> 339 us and 211 -> 195 us, T=256 747 -> 696 and 425 -> 383).
// A third register stage on two warps (two supersteps in flight, six CTAs per SM) was slower: run 202, T=64
// 368 + 212 against 338 + 195 us, T=256 781 + 430 against 696 + 384 (h200_r202_moe_gemv_depth3_experiment.patch).
template <int kNT, bool kGateUp, MoeWeightFormat kFmt, bool kQuantA = false, int kW = kMoeGemvWarps>
__global__ void __launch_bounds__(kW * 32, kNT > 2 ? 1 : 16 / kW)
    moe_gemv_mma_kernel(const __grid_constant__ MoeGemmParams p) {
  constexpr bool kFp4 = kFmt == MoeWeightFormat::Mxfp4;
  constexpr int kRaw = kFp4 ? 1 : 2;          // uint4 per (matrix row) per superstep
  constexpr int kCols = kGateUp ? 16 : 32;    // output columns per CTA
  __shared__ float red[kW][2][4][32];

  // PDL (common/pdl.cuh): a tile list and a slot permutation come from kernels (moe_align), so with either the
  // kernel waits first; the single tile of expert 0 in row order waits only after its first weight loads (below).
  const bool wait_first = p.tiles != nullptr || p.gather;
  if (wait_first) grid_dependency_sync();
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

  // One superstep's register operands: weight words, scale bytes, the first n-tile's A words (as loaded).
  struct Stage {
    uint4 raw[2][2][kRaw];
    uint32_t sc[2][2];
    uint4 xw[kXW];
  };
  auto load_w = [&](int s, Stage& st) {
#pragma unroll
    for (int a = 0; a < 2; ++a)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint4* src = reinterpret_cast<const uint4*>(wrow[a][h] + static_cast<int64_t>(s) * (kFp4 ? 64 : 128));
#pragma unroll
        for (int c = 0; c < kRaw; ++c) st.raw[a][h][c] = __ldg(src + c);
        st.sc[a][h] = kFp4 ? __ldg(srow[a][h] + 4 * s) : (h == 0 ? __ldg(srow[a][0] + s) : 0u);
      }
  };
  auto load_a = [&](int s, Stage& st) {
    const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int c = 0; c < kXW; ++c) st.xw[c] = xrow[0] ? __ldg(xrow[0] + s * (4 * kXW) + c) : zero;
  };
  auto load = [&](int s, Stage& st) {
    load_w(s, st);
    load_a(s, st);
  };
  auto load_x = [&](int s, int nt, uint4 (&xv)[4]) {
    uint4 xw[kXW];
#pragma unroll
    for (int c = 0; c < kXW; ++c) xw[c] = xrow[nt] ? __ldg(xrow[nt] + s * (4 * kXW) + c) : make_uint4(0, 0, 0, 0);
    to_b(xw, xv);
  };
  auto mma_step = [&](int nt, int t, const uint4 (&xv)[4], const uint32_t (&f0)[4], const uint32_t (&f1)[4]) {
    const uint32_t lo = (t & 1) ? xv[t >> 1].z : xv[t >> 1].x;
    const uint32_t hi = (t & 1) ? xv[t >> 1].w : xv[t >> 1].y;
    const uint32_t b[2] = {__byte_perm(lo, hi, 0x5410), __byte_perm(lo, hi, 0x7632)};
    moe_mma_bf16(acc[0][nt], f0, b);
    moe_mma_bf16(acc[1][nt], f1, b);
  };

  // Superstep s from `cur` while `nxt` receives superstep s + kW (when there is one).
  auto superstep = [&](int s, const Stage& cur, Stage& nxt) {
    if (s + kW < S) load(s + kW, nxt);
    constexpr uint32_t kBias = kFp4 ? 126u : 120u;
    GemvScale gs[2][2];
    // A fragment {a0, a1, a2, a3} of set a, mma step t; kTwo: some lane needs two scale multiplies.
    auto decode = [&]<bool kTwo>(int a, int t, uint32_t (&f)[4]) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if constexpr (kFp4) {
          const uint4 r4 = cur.raw[a][h][0];
          const uint32_t word = (t >> 1) == 0 ? r4.x : (t >> 1) == 1 ? r4.y : (t >> 1) == 2 ? r4.z : r4.w;
          // Bytes (B0, B2, B1, B3): nibble p of the low half pairs with nibble p of the high half, p = 0..3 ->
          // (e0, e2), (e1, e3), (e4, e6), (e5, e7); odd t takes p = 2, 3 (the word shifted down a byte).
          const uint32_t w = __byte_perm(word, 0u, 0x3120) >> (8 * (t & 1));
          f[h] = gemv_apply<kTwo>(gemv_fp4_pair(w, 0), gs[a][h]);
          f[2 + h] = gemv_apply<kTwo>(gemv_fp4_pair(w, 1), gs[a][h]);
        } else {
          const uint4 r4 = cur.raw[a][h][t >> 2];
          const uint32_t word = (t & 3) == 0 ? r4.x : (t & 3) == 1 ? r4.y : (t & 3) == 2 ? r4.z : r4.w;
          f[h] = gemv_apply<kTwo>(gemv_fp8_pair(word << 8), gs[a][0]);  // (e0, e2)
          f[2 + h] = gemv_apply<kTwo>(gemv_fp8_pair(word), gs[a][0]);   // (e1, e3)
        }
      }
    };
    // B words of n-tile nt: the first came with the stage, the others load now.
    auto b_words = [&](int nt, const uint4 (&xb)[4], uint4 (&xv)[4]) {
      if (nt == 0) {
#pragma unroll
        for (int c = 0; c < 4; ++c) xv[c] = xb[c];
      } else {
        load_x(s, nt, xv);
      }
    };
    auto compute = [&]<bool kTwo>() {
      uint4 xb[4];
      to_b(cur.xw, xb);
      // Many slots (kNT > 2): the superstep decoded once (64 registers) and reused by every n-tile. Few slots
      // (kNT = 2): decoded step by step (fewer registers); with a second n-tile (a tile of more than 8 slots, e.g.
      // B = 256: 6 slots per expert on average) each step's A fragments serve both n-tiles (they were decoded twice
      // before run 161), the second n-tile's B words loaded at the start of the superstep.
      if constexpr (kNT > 2) {
        uint32_t af[2][8][4];
#pragma unroll
        for (int t = 0; t < 8; ++t) {
          decode.template operator()<kTwo>(0, t, af[0][t]);
          decode.template operator()<kTwo>(1, t, af[1][t]);
        }
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) {
          if (nt < nact) {
            uint4 xv[4];
            b_words(nt, xb, xv);
#pragma unroll
            for (int t = 0; t < 8; ++t) mma_step(nt, t, xv, af[0][t], af[1][t]);
          }
        }
      } else {
        static_assert(kNT == 2, "the few-slot path pairs at most two n-tiles");
        auto steps = [&]<bool kPair>() {
          [[maybe_unused]] uint4 xv1[4];
          if constexpr (kPair) b_words(1, xb, xv1);
#pragma unroll
          for (int t = 0; t < 8; ++t) {
            uint32_t f0[4], f1[4];
            decode.template operator()<kTwo>(0, t, f0);
            decode.template operator()<kTwo>(1, t, f1);
            mma_step(0, t, xb, f0, f1);
            if constexpr (kPair) mma_step(1, t, xv1, f0, f1);
          }
        };
        if (nact > 1) steps.template operator()<true>();
        else steps.template operator()<false>();
      }
    };
    // Warp-uniform: the common case (every scale in the one-multiply range, x + bias <= 254) has no predicated
    // second multiply and needs only m1 = 2^(x - 127 + bias) as bf16x2: one multiply-add of the scale byte (the
    // bf16 exponent field x + bias at bits 7 and 23). The rare case takes gemv_scale's full set.
    const uint32_t mx = kFp4 ? max(max(cur.sc[0][0], cur.sc[0][1]), max(cur.sc[1][0], cur.sc[1][1]))
                             : max(cur.sc[0][0], cur.sc[1][0]);
    if (__any_sync(0xffffffffu, mx > 254u - kBias)) {
#pragma unroll
      for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int h = 0; h < 2; ++h) gs[a][h] = gemv_scale(kFp4 ? cur.sc[a][h] : cur.sc[a][0], kBias);
      compute.template operator()<true>();
    } else {
#pragma unroll
      for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          gs[a][h].m1 = (kFp4 ? cur.sc[a][h] : cur.sc[a][0]) * 0x00800080u + kBias * 0x00800080u;
          gs[a][h].m2 = 0u;
          gs[a][h].two = false;
        }
      compute.template operator()<false>();
    }
  };

  // Two stages used in turn (no register copies between supersteps).
  Stage st0, st1;
  int s = warp;
  if (s < S) load_w(s, st0);
  if (!wait_first) grid_dependency_sync();
  if (s < S) load_a(s, st0);
  for (; s < S; s += 2 * kW) {
    superstep(s, st0, st1);
    if (s + kW >= S) break;
    superstep(s + kW, st1, st0);
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
