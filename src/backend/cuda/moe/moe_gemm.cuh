// Grouped expert GEMM over moe_align's tile list (grid: x = N / BN weight-row blocks, y = tile capacity; a CTA
// past n_tiles exits). Each tile is up to BM sorted slots of one expert, so an expert's weight rows are read
// once per tile: at decode (one or two tiles per expert) every used expert's weights stream once per step.
// moe_gemm_mma_kernel<BM, BN, MT, NT, kGateUp, kFmt>: bf16 mma.sync m16n8k16, f32 accumulation. A (bf16, exact
//   FP8 fake-quant values) and the raw weight bytes (MXFP4 nibbles or FP8 codes) are double-buffered with
//   cp.async in K steps of 64; the weights are expanded to bf16 in shared memory (code times the e8m0 scale,
//   exact), then ldmatrix feeds the warps (warp tile 16·MT x 8·NT). Rows padded to 72 bf16 (144 bytes) so
//   ldmatrix's 8 row addresses hit distinct bank groups. MXFP4 scales of the CTA's rows are loaded once.
//   Supports N % BN == 0, K % 128 == 0, e8m0 scales (moe_mma_unsupported).
// moe_gemm_simt_kernel<kGateUp>: the generic path: f32 A, any weight format / scale dtype, any N and K, 32x64
//   tiles, sequential-K f32 FMAs (results do not depend on the tiling).
// Both end in the same epilogue: gate_up fuses the clamped SwiGLU and the routing weight; down scatters rows
// to their slots.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/moe/params.h"
#include "backend/cuda/moe/plan.h"

namespace dsv4::cuda {

__device__ __forceinline__ float moe_round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// e2m1 nibble -> f32 (bit 3 sign; magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6).
__device__ __forceinline__ float moe_scale_at(const uint8_t* s, int64_t idx, MoeScaleDtype dt) {
  switch (dt) {
    case MoeScaleDtype::E8m0: return e8m0_to_f32(s[idx]);
    case MoeScaleDtype::F32: return reinterpret_cast<const float*>(s)[idx];
    case MoeScaleDtype::Bf16: return __uint_as_float(static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(s)[idx]) << 16);
  }
  return 0.0f;
}

// W[n, k] as f32, exactly as weights::dequant_rows (code times scale, one f32 product).
__device__ __forceinline__ float moe_weight_at(const MoeGemmParams& p, const MoeWeightPtr& w, int64_t n, int64_t k) {
  const int64_t K = p.K;
  switch (p.format) {
    case MoeWeightFormat::F32: return reinterpret_cast<const float*>(w.data)[n * K + k];
    case MoeWeightFormat::Bf16:
      return __uint_as_float(static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(w.data)[n * K + k]) << 16);
    case MoeWeightFormat::F16: return __half2float(reinterpret_cast<const __half*>(w.data)[n * K + k]);
    case MoeWeightFormat::Fp8:
      return e4m3_to_f32(w.data[n * K + k]) * moe_scale_at(w.scale, (n / 128) * ((K + 127) / 128) + k / 128, p.scale_dtype);
    case MoeWeightFormat::Mxfp4: {
      const uint8_t b = w.data[n * (K / 2) + k / 2];
      return e2m1_to_f32((k & 1) ? (b >> 4) : (b & 0xF)) * moe_scale_at(w.scale, n * (K / 32) + k / 32, p.scale_dtype);
    }
  }
  return 0.0f;
}

// Epilogue of one output element: sorted row i (global), column c; g = acc of w1 (or w2), u = acc of w3.
template <bool kGateUp>
__device__ __forceinline__ void moe_store(const MoeGemmParams& p, int i, int c, float g, float u) {
  if constexpr (kGateUp) {
    if (p.round_bf16) {
      g = moe_round_bf16(g);
      u = moe_round_bf16(u);
    }
    float h = clamped_swiglu(g, u, p.limit);
    if (p.weight) h *= p.weight[p.perm ? p.perm[i] : i];
    if (p.round_bf16) h = moe_round_bf16(h);
    p.out[static_cast<int64_t>(i) * p.N + c] = h;
  } else {
    if (p.round_bf16) g = moe_round_bf16(g);
    p.out[static_cast<int64_t>(p.perm ? p.perm[i] : i) * p.N + c] = g;
  }
}

template <bool kGateUp>
__global__ void __launch_bounds__(kMoeSimtThreads) moe_gemm_simt_kernel(const __grid_constant__ MoeGemmParams p) {
  grid_dependency_sync();
  constexpr int BM = kMoeSimtBM, BN = kMoeSimtBN, BK = kMoeSimtBK, kMats = kGateUp ? 2 : 1;
  __shared__ float As[BM][BK + 1];
  __shared__ float Ws[kMats][BN][BK + 1];
  __shared__ int rsrc[BM];
  const int tile = blockIdx.y;
  if (tile >= *p.n_tiles) return;
  const int expert = p.tiles[3 * tile], row0 = p.tiles[3 * tile + 1], rows = p.tiles[3 * tile + 2];
  const int n0 = blockIdx.x * BN;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  for (int r = tid; r < BM; r += kMoeSimtThreads) {
    const int i = row0 + min(r, rows - 1);
    rsrc[r] = p.gather ? p.perm[i] / p.top_k : i;
  }
  const MoeWeightPtr wp[2] = {p.w1[expert], kGateUp ? p.w3[expert] : p.w1[expert]};
  float acc[kMats][2][4] = {};
  __syncthreads();
  for (int k0 = 0; k0 < p.K; k0 += BK) {
    for (int idx = tid; idx < BM * BK; idx += kMoeSimtThreads) {
      const int r = idx / BK, kk = idx % BK, k = k0 + kk;
      As[r][kk] = k < p.K ? p.a_f32[static_cast<int64_t>(rsrc[r]) * p.K + k] : 0.0f;
    }
#pragma unroll
    for (int m = 0; m < kMats; ++m)
      for (int idx = tid; idx < BN * BK; idx += kMoeSimtThreads) {
        const int r = idx / BK, kk = idx % BK, k = k0 + kk, n = n0 + r;
        Ws[m][r][kk] = (n < p.N && k < p.K) ? moe_weight_at(p, wp[m], n, k) : 0.0f;
      }
    __syncthreads();
    for (int kk = 0; kk < BK; ++kk) {
      float a[2] = {As[ty][kk], As[ty + 16][kk]};
#pragma unroll
      for (int m = 0; m < kMats; ++m)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float w = Ws[m][tx + 16 * j][kk];
          acc[m][0][j] = fmaf(a[0], w, acc[m][0][j]);
          acc[m][1][j] = fmaf(a[1], w, acc[m][1][j]);
        }
    }
    __syncthreads();
  }
#pragma unroll
  for (int ii = 0; ii < 2; ++ii)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int r = ty + 16 * ii, c = n0 + tx + 16 * j;
      if (r < rows && c < p.N) moe_store<kGateUp>(p, row0 + r, c, acc[0][ii][j], acc[kMats - 1][ii][j]);
    }
}

__device__ __forceinline__ void moe_cp_async16(void* smem, const void* gmem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void moe_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void moe_cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void moe_ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}
__device__ __forceinline__ void moe_ldmatrix_x2(uint32_t (&r)[2], const void* smem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(s));
}
__device__ __forceinline__ void moe_mma_bf16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__host__ __device__ constexpr int moe_mma_threads(int bm, int bn, int mt, int nt) {
  return 32 * (bm / (16 * mt)) * (bn / (8 * nt));
}

// Dynamic shared memory of moe_gemm_mma_kernel (must match the carve-up in the kernel).
__host__ __device__ constexpr int64_t moe_mma_smem_bytes(int bm, int bn, int mats, int64_t K) {
  constexpr int kLds = kMoeMmaBK + 8;
  const int64_t scale_bytes = (bn * (K / 32) > 4 * (K / 128) ? bn * (K / 32) : 4 * (K / 128));
  return 4 * bm + 2LL * bm * kLds * 2 + static_cast<int64_t>(mats) * bn * kLds * 2 + 2LL * mats * bn * 64 +
         mats * ((scale_bytes + 15) / 16 * 16);
}

template <int BM, int BN, int MT, int NT, bool kGateUp, MoeWeightFormat kFmt>
__global__ void __launch_bounds__(moe_mma_threads(BM, BN, MT, NT), 2)
    moe_gemm_mma_kernel(const __grid_constant__ MoeGemmParams p) {
  grid_dependency_sync();
  constexpr int kMats = kGateUp ? 2 : 1, BK = kMoeMmaBK, kLds = BK + 8;
  constexpr int kWarpsN = BN / (8 * NT), kThreads = moe_mma_threads(BM, BN, MT, NT);
  constexpr bool kFp4 = kFmt == MoeWeightFormat::Mxfp4;
  constexpr int kRawRow = kFp4 ? 32 : 64;  // raw bytes of one weight row per K step
  const int tile = blockIdx.y;
  if (tile >= *p.n_tiles) return;
  const int expert = p.tiles[3 * tile], row0 = p.tiles[3 * tile + 1], rows = p.tiles[3 * tile + 2];
  const int n0 = blockIdx.x * BN;
  const int K = p.K, KT = K / BK, s_cols = K / 32;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / kWarpsN, wn = warp % kWarpsN;

  extern __shared__ __align__(16) uint8_t smem[];
  int* rsrc = reinterpret_cast<int*>(smem);
  __nv_bfloat16* As = reinterpret_cast<__nv_bfloat16*>(smem + 4 * BM);         // [2][BM][kLds]
  __nv_bfloat16* Wb = As + 2 * BM * kLds;                                        // [kMats][BN][kLds]
  uint8_t* raw = reinterpret_cast<uint8_t*>(Wb + kMats * BN * kLds);            // [2][kMats][BN][64]
  uint8_t* sc = raw + 2 * kMats * BN * 64;                                       // [kMats][scale_bytes]
  const int64_t scale_bytes = BN * s_cols > 4 * (K / 128) ? BN * s_cols : 4 * (K / 128);
  const int64_t sc_stride = (scale_bytes + 15) / 16 * 16;

  for (int r = tid; r < BM; r += kThreads) {
    const int i = row0 + min(r, rows - 1);
    rsrc[r] = p.gather ? p.perm[i] / p.top_k : i;
  }
  const MoeWeightPtr wp[2] = {p.w1[expert], kGateUp ? p.w3[expert] : p.w1[expert]};
#pragma unroll
  for (int m = 0; m < kMats; ++m) {
    if constexpr (kFp4) {
      const uint8_t* src = wp[m].scale + static_cast<int64_t>(n0) * s_cols;
      for (int idx = tid; idx < BN * s_cols; idx += kThreads) sc[m * sc_stride + idx] = src[idx];
    } else {
      const int kb = K / 128;
      const uint8_t* src = wp[m].scale + static_cast<int64_t>(n0 / 128) * kb;
      float* scf = reinterpret_cast<float*>(sc + m * sc_stride);
      for (int idx = tid; idx < kb; idx += kThreads) scf[idx] = e8m0_to_f32(src[idx]);
    }
  }
  __syncthreads();

  const int64_t w_row_bytes = kFp4 ? K / 2 : K;
  auto load_stage = [&](int stage, int kt) {
    for (int c = tid; c < BM * 8; c += kThreads) {
      const int r = c >> 3, ch = c & 7;
      moe_cp_async16(As + (stage * BM + r) * kLds + ch * 8, p.a_bf16 + static_cast<int64_t>(rsrc[r]) * K + kt * BK + ch * 8);
    }
    constexpr int kChunks = kRawRow / 16;
#pragma unroll
    for (int m = 0; m < kMats; ++m)
      for (int c = tid; c < BN * kChunks; c += kThreads) {
        const int r = c / kChunks, ch = c % kChunks;
        moe_cp_async16(raw + ((stage * kMats + m) * BN + r) * 64 + ch * 16,
                       wp[m].data + static_cast<int64_t>(n0 + r) * w_row_bytes + static_cast<int64_t>(kt) * kRawRow + ch * 16);
      }
    moe_cp_async_commit();
  };

  float acc[kMats][MT][NT][4] = {};
  load_stage(0, 0);
  for (int kt = 0; kt < KT; ++kt) {
    const int st = kt & 1;
    __syncthreads();  // everyone is done with the previous step's As[st ^ 1] and Wb
    if (kt + 1 < KT) {
      load_stage(st ^ 1, kt + 1);
      moe_cp_async_wait<1>();
    } else {
      moe_cp_async_wait<0>();
    }
    __syncthreads();
    // Expand the raw weights of this step to bf16: units of 8 elements.
#pragma unroll
    for (int m = 0; m < kMats; ++m)
      for (int u = tid; u < BN * 8; u += kThreads) {
        const int r = u >> 3, q = u & 7;
        const uint8_t* rr = raw + ((st * kMats + m) * BN + r) * 64;
        float v[8];
        if constexpr (kFp4) {
          const uint32_t word = *reinterpret_cast<const uint32_t*>(rr + q * 4);
          const float s = e8m0_to_f32(sc[m * sc_stride + r * s_cols + kt * 2 + (q >> 2)]);
#pragma unroll
          for (int j = 0; j < 8; ++j) v[j] = e2m1_to_f32((word >> (4 * j)) & 0xFu) * s;
        } else {
          const uint2 codes = *reinterpret_cast<const uint2*>(rr + q * 8);
          const float s = reinterpret_cast<const float*>(sc + m * sc_stride)[kt / 2];
          const uint32_t w2[2] = {codes.x, codes.y};
#pragma unroll
          for (int j = 0; j < 8; ++j) v[j] = e4m3_to_f32(static_cast<uint8_t>(w2[j / 4] >> (8 * (j & 3)))) * s;
        }
        __nv_bfloat162 h[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) h[j] = __floats2bfloat162_rn(v[2 * j], v[2 * j + 1]);
        *reinterpret_cast<uint4*>(Wb + (m * BN + r) * kLds + q * 8) = *reinterpret_cast<const uint4*>(h);
      }
    __syncthreads();
    const __nv_bfloat16* Ast = As + st * BM * kLds;
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t af[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        moe_ldmatrix_x4(af[mt], Ast + (wm * 16 * MT + mt * 16 + (lane & 15)) * kLds + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int m = 0; m < kMats; ++m)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          uint32_t bf[2];
          moe_ldmatrix_x2(bf, Wb + (m * BN + wn * 8 * NT + nt * 8 + (lane & 7)) * kLds + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) moe_mma_bf16(acc[m][mt][nt], af[mt], bf);
        }
    }
  }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = wm * 16 * MT + mt * 16 + (lane >> 2) + h * 8;
        const int c = n0 + wn * 8 * NT + nt * 8 + (lane & 3) * 2;
        if (r < rows) {
          moe_store<kGateUp>(p, row0 + r, c, acc[0][mt][nt][2 * h], acc[kMats - 1][mt][nt][2 * h]);
          moe_store<kGateUp>(p, row0 + r, c + 1, acc[0][mt][nt][2 * h + 1], acc[kMats - 1][mt][nt][2 * h + 1]);
        }
      }
}

}  // namespace dsv4::cuda
