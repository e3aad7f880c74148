// Sparse attention with sink (spec §5.5) over per-query key lists (K = V, each key a device row f32 [dim]).
// sparse_attention_mma_kernel (bf16 numerics, dim in {64, 128, 256, 512}): one CTA of 4 warps per (query, group
// of 16 heads, key split); each key tile (64 rows) is read from global memory once for the 16 heads, converted
// to bf16 in shared memory (exact: cache rows and q are bf16 values under bf16 numerics) and used twice by
// mma.sync m16n8k16: S = Q·Kᵀ (each warp 16 keys, f32 accumulate), online softmax in f32 (max over real keys,
// the sink joins only the denominator), P rounded to bf16, O += P·V (each warp dim/4 columns, f32). With
// n_split > 1 (flash-decoding) every split writes unnormalized partials and sparse_attention_combine_kernel
// merges them. The CPU reference takes the global max first; the online rescaling only changes where p is
// rounded to bf16 (well inside the bf16 tolerance).
// sparse_attention_wide_kernel (bf16 numerics, dim 512, n_heads a multiple of 64 — the Flash/Pro decode shape):
// one CTA of 16 warps per (query, group of 64 heads, key split), so each key row is read from memory once per
// query. Key tiles of 32 rows are fetched with cp.async into an f32 staging buffer while the previous tile is
// computed, converted to bf16 (exact), then S = Q·Kᵀ (warp: 16 heads x 8 keys), the online softmax (warp:
// 4 heads, one lane per key; max over real keys, unrounded exponentials summed, P rounded to bf16) and
// O += P·V (warp: 16 heads x 128 columns) on mma.sync m16n8k16 with f32 accumulation. Same arithmetic as the
// 16-head kernel up to the summation order; split-K partials go to the same combine kernel.
// Cluster split-K (kCluster instances of both tensor-core kernels, dim 512, plan.cluster = n_split <= 16): the
// n_split CTAs of one (query, head group) are one thread-block cluster (rank = split). Each leaves its
// unnormalized O (f32, over its now idle tile buffers) and running max / sum in shared memory; after a cluster
// barrier every CTA merges a 1/n_split share of the heads x dim outputs from distributed shared memory with the
// combine kernel's arithmetic (cluster_merge): no partials in global memory and no second launch, bitwise equal
// to the combine path for the same splits.
// Fp8Kv rows (tagged pointers, attention/kv_fp8.cuh): the 16-head kernel loads them in its batches as units of
// 8 code bytes (+ the block's scale byte) or 4 bf16 values (kv_fp8_raw_unit) and decodes them when it stores the
// tile (kv_fp8_store_unit; a row needs nope/8 + rope/4 units of its kDim/4), the wide kernel copies their 584 bytes
// into the row's staging slot (8-byte cp.async) and decodes the same units from there; both convert to the same
// bf16 tile as f32 rows of the same values.
// sparse_attention_kernel (any shape, f32 or bf16 numerics): one CTA per (query, head), the CPU order of
// operations (all scores, global max, unrounded denominator, rounded p·v), scores in shared memory.
#pragma once
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/attention/key_rows.cuh"
#include "backend/cuda/attention/kv_fp8.cuh"
#include "backend/cuda/attention/params.h"
#include "backend/cuda/attention/plan.h"

namespace dsv4::cuda {
namespace attn_detail {

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide reductions (every thread gets the result). `red` holds one float per warp.
template <int kThreads>
__device__ __forceinline__ float block_sum(float v, float* red) {
  v = warp_sum(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float t = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) t += red[w];
  return t;
}

template <int kThreads>
__device__ __forceinline__ float block_max(float v, float* red) {
  v = warp_max(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float t = -INFINITY;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) t = fmaxf(t, red[w]);
  return t;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// Softmax denominator with the sink (spec §5.5): running sum l plus exp(sink - b), b the running max m (0 when
// no key was seen).
__device__ __forceinline__ float sink_denominator(float m, float l, float sink) {
  const float b = m == -INFINITY ? 0.0f : m;
  return l + expf(sink - b);
}

// Fragment row r (0 or 1) of a thread's P·V accumulators o[kNt][4] to out + 8 j, j < kNt (two columns each):
// divided by den and rounded to bf16 (kFinal: an output row), else as they are (a split's partial).
template <int kNt, bool kFinal>
__device__ __forceinline__ void store_o_row(float* __restrict__ out, const float (&o)[kNt][4], int r, float den) {
#pragma unroll
  for (int j = 0; j < kNt; ++j)
    *reinterpret_cast<float2*>(out + j * 8) =
        kFinal ? make_float2(round_bf16(o[j][2 * r] / den), round_bf16(o[j][2 * r + 1] / den))
               : make_float2(o[j][2 * r], o[j][2 * r + 1]);
}

// c += a · b, m16n8k16, bf16 inputs, f32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async8(void* smem, const void* gmem) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(smem_addr(smem)), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

__device__ __forceinline__ void store_bf16x4(__nv_bfloat16* dst, float4 v) {
  __nv_bfloat162* d = reinterpret_cast<__nv_bfloat162*>(dst);
  d[0] = __floats2bfloat162_rn(v.x, v.y);
  d[1] = __floats2bfloat162_rn(v.z, v.w);
}

// Split-K merge inside a thread-block cluster (kCluster kernels; cluster rank j = key split j = blockIdx.x).
// On entry every CTA of the cluster has its unnormalized partial of kRows heads (h0..) in its own shared
// memory: o_s f32 [kRows, kLdO], m_s / l_s f32 [kRows] (running max / sum). The first cluster barrier
// publishes them; each CTA computes the split weights w_j = e^{m_j - b} (b = max_j m_j, 0 when every split is
// empty) and denominators Σ_j l_j w_j + e^{sink - b} of all kRows heads into w_s f32 [kRows, kAttnMaxCluster + 1],
// then merges its share of the output (float4 columns rank·kThreads + t, stride n_split·kThreads) by reading
// the n_split partials from distributed shared memory (kBatch remote loads in flight): y = (Σ_j o_j w_j) / den,
// in split order (fmaf), bf16 rounded when round_bf16 — the combine kernel's arithmetic. The last barrier keeps
// every CTA's shared memory alive until the others have read it.
template <int kRows, int kThreads, int kDim, int kLdO, int kBatch = 8>
__device__ __forceinline__ void cluster_merge(const SparseAttnParams& p, const float* o_s, const float* m_s,
                                              const float* l_s, float* w_s, int h0, int qi) {
  namespace cg = cooperative_groups;
  constexpr int kWs = kAttnMaxCluster + 1, kVec = kDim / 4;
  static_assert(kLdO % 4 == 0 && kDim % 4 == 0, "float4 rows");
  cg::cluster_group cluster = cg::this_cluster();
  const int ns = static_cast<int>(cluster.num_blocks());
  const int rank = static_cast<int>(cluster.block_rank());
  cluster.sync();  // every split's o_s, m_s, l_s written (release / acquire at cluster scope)
  for (int hr = threadIdx.x; hr < kRows; hr += kThreads) {
    float m[kAttnMaxCluster], l[kAttnMaxCluster], mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < kAttnMaxCluster; ++j) {
      if (j < ns) {
        m[j] = cluster.map_shared_rank(m_s, j)[hr];
        l[j] = cluster.map_shared_rank(l_s, j)[hr];
        mx = fmaxf(mx, m[j]);
      }
    }
    const float b = mx == -INFINITY ? 0.0f : mx;
    float den = 0.0f;
#pragma unroll
    for (int j = 0; j < kAttnMaxCluster; ++j) {
      if (j < ns) {
        const float w = expf(m[j] - b);
        den = fmaf(l[j], w, den);
        w_s[hr * kWs + j] = w;
      }
    }
    if (h0 + hr < p.n_heads) den += expf(p.sink[h0 + hr] - b);
    w_s[hr * kWs + kAttnMaxCluster] = den;
  }
  __syncthreads();
  for (int i = rank * kThreads + static_cast<int>(threadIdx.x); i < kRows * kVec; i += ns * kThreads) {
    const int hr = i / kVec, c = (i % kVec) * 4;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int j0 = 0; j0 < ns; j0 += kBatch) {  // kBatch remote loads in flight, then their fmas in split order
      float4 v[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u)
        if (j0 + u < ns) v[u] = *reinterpret_cast<const float4*>(cluster.map_shared_rank(o_s, j0 + u) + hr * kLdO + c);
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        if (j0 + u < ns) {
          const float w = w_s[hr * kWs + j0 + u];
          acc.x = fmaf(v[u].x, w, acc.x);
          acc.y = fmaf(v[u].y, w, acc.y);
          acc.z = fmaf(v[u].z, w, acc.z);
          acc.w = fmaf(v[u].w, w, acc.w);
        }
      }
    }
    if (h0 + hr >= p.n_heads) continue;
    const float den = w_s[hr * kWs + kAttnMaxCluster];
    float4 y = make_float4(acc.x / den, acc.y / den, acc.z / den, acc.w / den);
    if (p.round_bf16) y = make_float4(round_bf16(y.x), round_bf16(y.y), round_bf16(y.z), round_bf16(y.w));
    *reinterpret_cast<float4*>(p.out + (int64_t(qi) * p.n_heads + h0 + hr) * kDim + c) = y;
  }
  cluster.sync();  // no CTA exits (freeing its shared memory) while another still reads it
}

// The 16-head kernel's tiles of Fp8Kv rows with kKvRope RoPE values (dim >= 128): every row of the tile is
// tagged. Branch-free unit loops: the rope units' 8-byte loads and the first batch of code units (8 bytes + the
// block's scale byte each) are issued together, then decoded into the bf16 tile (two memory round trips per tile
// where the f32 rows take four).
inline constexpr int kKvRope = 64;
template <int kDim, int kLd>
__device__ __forceinline__ void fp8_tile_to_bf16(const float* const* kptr, __nv_bfloat16* Ks, int tid) {
  constexpr int kT = kAttnKeyTile, kN = kAttnMmaThreads;
  constexpr int kNope = kDim - kKvRope, kNu = kNope / 8, kRu = kKvRope / 4;
  constexpr int kNIters = kT * kNu / kN, kRIters = kT * kRu / kN;
  constexpr int kB = kNIters > 14 ? (kNIters + 1) / 2 : kNIters;  // code units per batch
  static_assert((kT * kNu) % kN == 0 && (kT * kRu) % kN == 0 && kNIters % kB == 0, "units divide the CTA");
  uint2 rw[kRIters];
#pragma unroll
  for (int b = 0; b < kRIters; ++b) {
    const int i = b * kN + tid, r = i / kRu, u = i % kRu;
    rw[b] = __ldg(reinterpret_cast<const uint2*>(kv_fp8_row(kptr[r]) + kNope + 8 * u));
  }
#pragma unroll
  for (int it0 = 0; it0 < kNIters; it0 += kB) {
    uint2 w[kB];
    uint32_t sc[kB];
#pragma unroll
    for (int b = 0; b < kB; ++b) {
      const int i = (it0 + b) * kN + tid, r = i / kNu, u = i % kNu;
      const uint8_t* row = kv_fp8_row(kptr[r]);
      w[b] = __ldg(reinterpret_cast<const uint2*>(row + 8 * u));
      sc[b] = __ldg(row + kNope + 2 * kKvRope + u / 8);
    }
#pragma unroll
    for (int b = 0; b < kB; ++b) {
      const int i = (it0 + b) * kN + tid, r = i / kNu, u = i % kNu;
      kv_fp8_store_unit(Ks + r * kLd, make_uint4(w[b].x, w[b].y, sc[b], 0u), u, kNope, kKvRope);
    }
  }
#pragma unroll
  for (int b = 0; b < kRIters; ++b) {
    const int i = b * kN + tid, r = i / kRu, u = i % kRu;
    *reinterpret_cast<uint2*>(Ks + r * kLd + kNope + 4 * u) = rw[b];
  }
}

}  // namespace attn_detail

template <int kThreads>
__global__ void __launch_bounds__(kThreads) sparse_attention_kernel(const __grid_constant__ SparseAttnParams p) {
  grid_dependency_sync();
  using namespace attn_detail;
  extern __shared__ float z[];  // [n keys of this query]
  __shared__ float red[kThreads / 32];
  const int h = blockIdx.x, qi = blockIdx.y;
  const int k0 = p.key_offsets[qi], n = p.key_offsets[qi + 1] - k0;
  const float* __restrict__ q = p.q_rows[qi] + int64_t(h) * p.dim;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float m = -INFINITY;
  for (int s = warp; s < n; s += kThreads / 32) {
    const float* __restrict__ k = p.keys[k0 + s];
    float acc = 0.0f;
    for (int c = lane; c < p.dim; c += 32) acc = fmaf(q[c], k[c], acc);
    const float zs = warp_sum(acc) * p.scale;
    if (lane == 0) z[s] = zs;
    m = fmaxf(m, zs);
  }
  m = block_max<kThreads>(m, red);  // its barriers also publish z
  float den = 0.0f;
  for (int s = threadIdx.x; s < n; s += kThreads) {
    const float pe = expf(z[s] - m);
    den += pe;  // unrounded exponentials (spec §13.2)
    z[s] = p.round_bf16 ? round_bf16(pe) : pe;
  }
  den = block_sum<kThreads>(den, red);
  den += expf(p.sink[h] - m);
  float* __restrict__ o = p.out + (int64_t(qi) * p.n_heads + h) * p.dim;
  for (int c = threadIdx.x; c < p.dim; c += kThreads) {
    float acc = 0.0f;
    for (int s = 0; s < n; ++s) acc = fmaf(z[s], p.keys[k0 + s][c], acc);
    const float y = acc / den;
    o[c] = p.round_bf16 ? round_bf16(y) : y;
  }
}

template <int kDim, bool kCluster = false>
__global__ void __launch_bounds__(kAttnMmaThreads) sparse_attention_mma_kernel(
    const __grid_constant__ SparseAttnParams p) {
  grid_dependency_sync();
  using namespace attn_detail;
  constexpr int kG = kAttnHeadGroup, kT = kAttnKeyTile, kWarps = kAttnMmaThreads / 32;
  constexpr int kLd = kDim + 8;        // bf16 row stride of Qs / Ks (16-byte rows, conflict-free ldmatrix)
  constexpr int kPld = kT + 8;         // bf16 row stride of Ps
  constexpr int kCols = kDim / kWarps; // P·V output columns per warp
  constexpr int kNt = kCols / 8;       // n-tiles per warp
  constexpr int kVec = kDim / 4;       // float4 per row
  constexpr bool kFp8Units = kDim >= 128 && (kDim - kKvRope) % 64 == 0;  // fp8_tile_to_bf16 compiled for kDim
  static_assert(kNt % 2 == 0 && kDim % 16 == 0, "head dim must be a multiple of 64");
  extern __shared__ __align__(16) unsigned char attn_smem[];
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(attn_smem);
  __nv_bfloat16* Ks = Qs + kG * kLd;
  __nv_bfloat16* Ps = Ks + kT * kLd;
  float* red_max = reinterpret_cast<float*>(Ps + kG * kPld);
  float* red_sum = red_max + kWarps * kG;
  __shared__ const float* kptr[kT];

  const int split = blockIdx.x, h0 = blockIdx.y * kG, qi = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int list0 = p.key_offsets[qi], n = p.key_offsets[qi + 1] - list0;
  int kb = 0, ke = n;
  if (p.n_split > 1) {
    kb = split * p.keys_per_split;
    ke = min(n, kb + p.keys_per_split);
  }
  const KeyRowList kl = p.keys ? KeyRowList{} : KeyRowList::of(p.rows, qi);  // no resolve_rows_kernel launch

  const float* __restrict__ qrow = p.q_rows[qi];
  for (int i = tid; i < kG * kVec; i += kAttnMmaThreads) {
    const int r = i / kVec, c = (i % kVec) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (h0 + r < p.n_heads) v = __ldg(reinterpret_cast<const float4*>(qrow + int64_t(h0 + r) * kDim + c));
    store_bf16x4(Qs + r * kLd + c, v);
  }

  float o[kNt][4];
#pragma unroll
  for (int j = 0; j < kNt; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  const int kw = warp * 16;  // this warp's keys within the tile (Q·Kᵀ)
  const int n0 = warp * kCols;

  for (int t0 = kb; t0 < ke; t0 += kT) {
    const float* own = nullptr;
    if (tid < kT) {
      own = t0 + tid < ke ? (p.keys ? p.keys[list0 + t0 + tid] : kl.row(p.rows, qi, t0 + tid)) : nullptr;
      kptr[tid] = own;
    }
    // A full tile of Fp8Kv rows with 64 RoPE values (the compressed entries' tiles) takes the unit loops below.
    bool staged = __syncthreads_and(tid >= kT || (own && kv_fp8_tagged(own))) && p.rope_dim == kKvRope;
    if constexpr (kFp8Units) {
      if (staged) fp8_tile_to_bf16<kDim, kLd>(kptr, Ks, tid);
    } else {
      staged = false;
    }
    if (!staged) {
      constexpr int kIters = kT * kVec / kAttnMmaThreads;
      constexpr int kBatch = kIters < kAttnLoadBatch ? kIters : kAttnLoadBatch;
#pragma unroll 1
      for (int it0 = 0; it0 < kIters; it0 += kBatch) {
        float4 v[kBatch];
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
          const int i = (it0 + b) * kAttnMmaThreads + tid, r = i / kVec, c = (i % kVec) * 4;
          const float* kp = kptr[r];
          if (!kp) {
            v[b] = make_float4(0.f, 0.f, 0.f, 0.f);
          } else if (kv_fp8_tagged(kp)) {  // raw words now, decoded below (the batch's loads stay in flight)
            const uint4 w = kv_fp8_raw_unit(kv_fp8_row(kp), c / 4, kDim - p.rope_dim, p.rope_dim);
            v[b] = make_float4(__uint_as_float(w.x), __uint_as_float(w.y), __uint_as_float(w.z), 0.f);
          } else {
            v[b] = __ldg(reinterpret_cast<const float4*>(kp + c));
          }
        }
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
          const int i = (it0 + b) * kAttnMmaThreads + tid, r = i / kVec, c = (i % kVec) * 4;
          const float* kp = kptr[r];
          if (kp && kv_fp8_tagged(kp))
            kv_fp8_store_unit(Ks + r * kLd, make_uint4(__float_as_uint(v[b].x), __float_as_uint(v[b].y),
                                                       __float_as_uint(v[b].z), 0u),
                              c / 4, kDim - p.rope_dim, p.rope_dim);
          else
            store_bf16x4(Ks + r * kLd + c, v[b]);
        }
      }
    }
    __syncthreads();

    // S = Q · Kᵀ for this warp's 16 keys: two n-tiles of 8 keys.
    float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int kk = 0; kk < kDim / 16; ++kk) {
      uint32_t a[4], b[4];
      ldmatrix_x4(a, Qs + (lane % 16) * kLd + kk * 16 + (lane / 16) * 8);
      ldmatrix_x4(b, Ks + (kw + (lane % 8) + (lane / 16) * 8) * kLd + kk * 16 + ((lane / 8) & 1) * 8);
      mma_bf16(s[0], a, b[0], b[1]);
      mma_bf16(s[1], a, b[2], b[3]);
    }
    // Online softmax: rows (heads) lane/4 and lane/4 + 8 of the group.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = t0 + kw + nt * 8 + 2 * (lane % 4) + (e & 1);
        const float v = j < ke ? s[nt][e] * p.scale : -INFINITY;
        s[nt][e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    }
    if (lane % 4 == 0) {
      red_max[warp * kG + lane / 4] = mx[0];
      red_max[warp * kG + lane / 4 + 8] = mx[1];
    }
    __syncthreads();
    float base[2], alpha[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float tm = -INFINITY;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) tm = fmaxf(tm, red_max[w * kG + lane / 4 + 8 * r]);
      const float m_new = fmaxf(m_run[r], tm);
      base[r] = m_new == -INFINITY ? 0.0f : m_new;
      alpha[r] = expf(m_run[r] - base[r]);
      m_run[r] = m_new;
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float p0 = expf(s[nt][2 * r] - base[r]), p1 = expf(s[nt][2 * r + 1] - base[r]);
        sum[r] += p0 + p1;
        *reinterpret_cast<__nv_bfloat162*>(Ps + (lane / 4 + 8 * r) * kPld + kw + nt * 8 + 2 * (lane % 4)) =
            __floats2bfloat162_rn(p0, p1);
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 1);
      sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 2);
    }
    if (lane % 4 == 0) {
      red_sum[warp * kG + lane / 4] = sum[0];
      red_sum[warp * kG + lane / 4 + 8] = sum[1];
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float ts = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) ts += red_sum[w * kG + lane / 4 + 8 * r];
      l_run[r] = l_run[r] * alpha[r] + ts;
    }
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
      o[j][0] *= alpha[0];
      o[j][1] *= alpha[0];
      o[j][2] *= alpha[1];
      o[j][3] *= alpha[1];
    }
    // O += P · V over the tile's 64 keys, this warp's kCols columns.
#pragma unroll
    for (int kk = 0; kk < kT / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, Ps + (lane % 16) * kPld + kk * 16 + (lane / 16) * 8);
#pragma unroll
      for (int np = 0; np < kNt / 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, Ks + (kk * 16 + (lane % 8) + ((lane / 8) & 1) * 8) * kLd + n0 + np * 16 +
                                 (lane / 16) * 8);
        mma_bf16(o[2 * np], a, b[0], b[1]);
        mma_bf16(o[2 * np + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // Ks, Ps, kptr and the reductions are rewritten by the next tile
  }

  if constexpr (kCluster) {  // partials into the free Ks / Qs / red_max space, merged across the cluster
    constexpr int kLdO = kDim + 8;  // f32 row stride of o_s (conflict-free float2 fragment stores)
    static_assert(kG * kLdO * 4 <= kT * kLd * 2 && kG * (kAttnMaxCluster + 1) * 4 <= kG * kLd * 2 &&
                      2 * kG <= kWarps * kG, "cluster merge buffers overlay Ks, Qs and red_max");
    float* o_s = reinterpret_cast<float*>(Ks);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float* orow = o_s + (lane / 4 + 8 * r) * kLdO + n0 + 2 * (lane % 4);
#pragma unroll
      for (int j = 0; j < kNt; ++j)
        *reinterpret_cast<float2*>(orow + j * 8) = make_float2(o[j][2 * r], o[j][2 * r + 1]);
      if (warp == 0 && lane % 4 == 0) {
        red_max[lane / 4 + 8 * r] = m_run[r];
        red_max[kG + lane / 4 + 8 * r] = l_run[r];
      }
    }
    // Every split's remote partial in flight at once (kAttnMaxCluster float4 per thread: the accumulators are dead).
    cluster_merge<kG, kAttnMmaThreads, kDim, kLdO, kAttnMaxCluster>(p, o_s, red_max, red_max + kG,
                                                                    reinterpret_cast<float*>(Qs), h0, qi);
  } else {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int h = h0 + lane / 4 + 8 * r;
      if (h >= p.n_heads) continue;
      const int64_t row = int64_t(qi) * p.n_heads + h;
      if (p.n_split == 1) {
        const float den = sink_denominator(m_run[r], l_run[r], p.sink[h]);
        store_o_row<kNt, true>(p.out + row * kDim + n0 + 2 * (lane % 4), o, r, den);
      } else {
        const int64_t part = row * p.n_split + split;
        store_o_row<kNt, false>(p.part_o + part * kDim + n0 + 2 * (lane % 4), o, r, 0.0f);
        if (warp == 0 && lane % 4 == 0) {
          p.part_ml[part * 2] = m_run[r];
          p.part_ml[part * 2 + 1] = l_run[r];
        }
      }
    }
  }
}

template <int kDim, bool kCluster = false>
__global__ void __launch_bounds__(kAttnWideThreads, 1) sparse_attention_wide_kernel(
    const __grid_constant__ SparseAttnParams p) {
  grid_dependency_sync();
  using namespace attn_detail;
  constexpr int kH = kAttnWideHeads, kT = kAttnWideKeyTile, kThreads = kAttnWideThreads;
  constexpr int kLd = kDim + 8;     // bf16 row stride of Qs / Ks
  constexpr int kSld = kT + 8;      // f32 row stride of Sf, bf16 row stride of Ps
  constexpr int kVec = kDim / 4;    // float4 per row
  constexpr int kCols = kDim / 4;   // P·V columns per warp (4 column groups x 4 head tiles = 16 warps)
  constexpr int kNt = kCols / 8;    // n-tiles per warp
  static_assert(kH == 64 && kT == 32 && kThreads == 512, "warp roles assume 64 heads, 32-key tiles, 16 warps");
  static_assert(kNt % 2 == 0 && (kDim / 16) % 2 == 0, "head dim must be a multiple of 64");
  static_assert((kT * kVec) % kThreads == 0 && (kH * kVec) % kThreads == 0, "tile copies must divide evenly");
  extern __shared__ __align__(16) unsigned char attn_smem[];
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(attn_smem);
  __nv_bfloat16* Ks = Qs + kH * kLd;
  float* stage = reinterpret_cast<float*>(Ks + kT * kLd);
  float* Sf = stage + kT * kDim;
  __nv_bfloat16* Ps = reinterpret_cast<__nv_bfloat16*>(Sf + kH * kSld);
  float* alpha_s = reinterpret_cast<float*>(Ps + kH * kSld);
  float* fin_m = alpha_s + kH;
  float* fin_l = fin_m + kH;

  const int split = blockIdx.x, h0 = blockIdx.y * kH, qi = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int list0 = p.key_offsets[qi], n = p.key_offsets[qi + 1] - list0;
  int kb = 0, ke = n;
  if (p.n_split > 1) {
    kb = split * p.keys_per_split;
    ke = min(n, kb + p.keys_per_split);
  }
  const float* const* __restrict__ klist = p.keys + list0;

  // Tile [t0, t0 + kT) of the key list -> stage (f32 rows; an Fp8Kv row's bytes at the start of its slot), rows
  // past ke zero-filled.
  __shared__ bool row_fp8[kT];  // the staged tile's rows: Fp8Kv (written with its prefetch)
  __shared__ bool tile_fp8;     // every row of it (and 64 RoPE values): the unit loops below
  auto prefetch = [&](int t0) {
    if (tid < kT) {  // warp 0: one lane per row
      const bool f = t0 + tid < ke && kv_fp8_tagged(klist[t0 + tid]);
      row_fp8[tid] = f;
      const bool all = __all_sync(0xffffffffu, f);
      if (tid == 0) tile_fp8 = all && p.rope_dim == kKvRope;
    }
#pragma unroll
    for (int it = 0; it < kT * kVec / kThreads; ++it) {
      const int i = it * kThreads + tid, r = i / kVec, c = (i % kVec) * 4;
      float* dst = stage + r * kDim + c;
      if (t0 + r < ke) {
        const float* kp = klist[t0 + r];
        if (!kv_fp8_tagged(kp))
          cp_async16(dst, kp + c);
        else if (2 * c < p.kv_row_bytes)  // 8 bytes per thread
          cp_async8(reinterpret_cast<unsigned char*>(stage + r * kDim) + 2 * c, kv_fp8_row(kp) + 2 * c);
      } else {
        *reinterpret_cast<float4*>(dst) = make_float4(0.f, 0.f, 0.f, 0.f);
      }
    }
    cp_async_commit();
  };
  if (kb < ke) prefetch(kb);

  const float* __restrict__ qrow = p.q_rows[qi];
  {
    constexpr int kIters = kH * kVec / kThreads, kBatch = kIters < 8 ? kIters : 8;
#pragma unroll 1
    for (int it0 = 0; it0 < kIters; it0 += kBatch) {
      float4 v[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int i = (it0 + b) * kThreads + tid, r = i / kVec, c = (i % kVec) * 4;
        v[b] = h0 + r < p.n_heads ? __ldg(reinterpret_cast<const float4*>(qrow + int64_t(h0 + r) * kDim + c))
                                  : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int i = (it0 + b) * kThreads + tid, r = i / kVec, c = (i % kVec) * 4;
        store_bf16x4(Qs + r * kLd + c, v[b]);
      }
    }
  }

  const int mt = warp & 3;          // head tile (16 heads) of this warp in S and P·V
  const int st = warp >> 2;         // key n-tile (8 keys) of this warp in S
  const int n0 = (warp >> 2) * kCols;  // first P·V column of this warp
  float o[kNt][4];
#pragma unroll
  for (int j = 0; j < kNt; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m_run[4], l_run[4];  // softmax role: heads warp*4 + j (warp-uniform)
#pragma unroll
  for (int j = 0; j < 4; ++j) m_run[j] = -INFINITY, l_run[j] = 0.0f;

  for (int t0 = kb; t0 < ke; t0 += kT) {
    cp_async_wait_all();
    __syncthreads();  // stage complete; the previous tile's P·V is done with Ks / Ps (and Qs is written)
    if (tile_fp8) {  // 8-code units (+ scale) and 4-value RoPE units of the staged rows, no idle lanes
      constexpr int kNope = kDim - kKvRope, kNu = kNope / 8, kRu = kKvRope / 4;
      for (int i = tid; i < kT * kNu; i += kThreads) {
        const int r = i / kNu, u = i % kNu;
        const uint8_t* row = reinterpret_cast<const uint8_t*>(stage + r * kDim);
        const uint2 w = *reinterpret_cast<const uint2*>(row + 8 * u);
        kv_fp8_store_unit(Ks + r * kLd, make_uint4(w.x, w.y, row[kNope + 2 * kKvRope + u / 8], 0u), u, kNope,
                          kKvRope);
      }
      for (int i = tid; i < kT * kRu; i += kThreads) {
        const int r = i / kRu, u = i % kRu;
        *reinterpret_cast<uint2*>(Ks + r * kLd + kNope + 4 * u) =
            *reinterpret_cast<const uint2*>(reinterpret_cast<const uint8_t*>(stage + r * kDim) + kNope + 8 * u);
      }
    } else {
#pragma unroll
      for (int it = 0; it < kT * kVec / kThreads; ++it) {
        const int i = it * kThreads + tid, r = i / kVec, c = (i % kVec) * 4;
        const float* row = stage + r * kDim;
        if (row_fp8[r])  // unit c / 4 of the staged Fp8Kv row (8 codes + scale, or 4 bf16 values; later units idle)
          kv_fp8_store_unit(
              Ks + r * kLd,
              kv_fp8_smem_unit(reinterpret_cast<const uint8_t*>(row), c / 4, kDim - p.rope_dim, p.rope_dim), c / 4,
              kDim - p.rope_dim, p.rope_dim);
        else
          store_bf16x4(Ks + r * kLd + c, *reinterpret_cast<const float4*>(row + c));
      }
    }
    __syncthreads();  // Ks ready, stage free
    if (t0 + kT < ke) prefetch(t0 + kT);

    // S = Q·Kᵀ: heads mt*16.., keys st*8.. (two accumulators over alternating k steps).
    {
      float s0[4] = {0.f, 0.f, 0.f, 0.f}, s1[4] = {0.f, 0.f, 0.f, 0.f};
      const __nv_bfloat16* qa = Qs + (mt * 16 + (lane % 16)) * kLd + (lane / 16) * 8;
      const __nv_bfloat16* kq = Ks + (st * 8 + (lane % 8)) * kLd + (lane / 8) * 8;
#pragma unroll
      for (int kk = 0; kk < kDim / 16; kk += 2) {
        uint32_t a0[4], a1[4], b[4];
        ldmatrix_x4(a0, qa + kk * 16);
        ldmatrix_x4(a1, qa + (kk + 1) * 16);
        ldmatrix_x4(b, kq + kk * 16);  // k 0-7, 8-15 of step kk, then of step kk + 1
        mma_bf16(s0, a0, b[0], b[1]);
        mma_bf16(s1, a1, b[2], b[3]);
      }
      float* srow = Sf + (mt * 16 + lane / 4) * kSld + st * 8 + 2 * (lane % 4);
      *reinterpret_cast<float2*>(srow) = make_float2((s0[0] + s1[0]) * p.scale, (s0[1] + s1[1]) * p.scale);
      *reinterpret_cast<float2*>(srow + 8 * kSld) =
          make_float2((s0[2] + s1[2]) * p.scale, (s0[3] + s1[3]) * p.scale);
    }
    __syncthreads();

    // Online softmax: heads warp*4 + j, lane = key of the tile.
    {
      const bool valid = t0 + lane < ke;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int hr = warp * 4 + j;
        const float z = valid ? Sf[hr * kSld + lane] : -INFINITY;
        const float m_new = fmaxf(m_run[j], warp_max(z));
        const float base = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = expf(m_run[j] - base);
        const float pe = expf(z - base);
        l_run[j] = l_run[j] * alpha + warp_sum(pe);
        m_run[j] = m_new;
        Ps[hr * kSld + lane] = __float2bfloat16_rn(pe);
        if (lane == 0) alpha_s[hr] = alpha;
      }
    }
    __syncthreads();

    // O = alpha·O + P·V: heads mt*16.., columns n0.. over the tile's 32 keys.
    {
      const float a_lo = alpha_s[mt * 16 + lane / 4], a_hi = alpha_s[mt * 16 + lane / 4 + 8];
#pragma unroll
      for (int j = 0; j < kNt; ++j) {
        o[j][0] *= a_lo;
        o[j][1] *= a_lo;
        o[j][2] *= a_hi;
        o[j][3] *= a_hi;
      }
#pragma unroll
      for (int kk = 0; kk < kT / 16; ++kk) {
        uint32_t a[4];
        ldmatrix_x4(a, Ps + (mt * 16 + (lane % 16)) * kSld + kk * 16 + (lane / 16) * 8);
#pragma unroll
        for (int np = 0; np < kNt / 2; ++np) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, Ks + (kk * 16 + (lane % 8) + ((lane / 8) & 1) * 8) * kLd + n0 + np * 16 +
                                   (lane / 16) * 8);
          mma_bf16(o[2 * np], a, b[0], b[1]);
          mma_bf16(o[2 * np + 1], a, b[2], b[3]);
        }
      }
    }
  }

  // Final running max / sum of every head to the P·V warps (and the split partials).
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int hr = warp * 4 + j;
      fin_m[hr] = m_run[j];
      fin_l[hr] = l_run[j];
      if (!kCluster && p.n_split > 1 && h0 + hr < p.n_heads) {
        const int64_t part = (int64_t(qi) * p.n_heads + h0 + hr) * p.n_split + split;
        p.part_ml[part * 2] = m_run[j];
        p.part_ml[part * 2 + 1] = l_run[j];
      }
    }
  }
  __syncthreads();  // also: every warp is done with Qs / Ks / Ps (no cp.async in flight after the last tile)
  if constexpr (kCluster) {  // partials over Qs / Ks / stage, weights in Sf, merged across the cluster
    constexpr int kLdO = kDim + 8;  // f32 row stride of o_s (conflict-free float2 fragment stores)
    static_assert(kH * kLdO * 4 <= (kH + kT) * kLd * 2 + kT * kDim * 4 && kH * (kAttnMaxCluster + 1) <= kH * kSld,
                  "cluster merge buffers overlay Qs / Ks / stage and Sf");
    float* o_s = reinterpret_cast<float*>(attn_smem);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float* orow = o_s + (mt * 16 + lane / 4 + 8 * r) * kLdO + n0 + 2 * (lane % 4);
#pragma unroll
      for (int j = 0; j < kNt; ++j)
        *reinterpret_cast<float2*>(orow + j * 8) = make_float2(o[j][2 * r], o[j][2 * r + 1]);
    }
    cluster_merge<kH, kThreads, kDim, kLdO>(p, o_s, fin_m, fin_l, Sf, h0, qi);
  } else {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int hr = mt * 16 + lane / 4 + 8 * r, h = h0 + hr;
      if (h >= p.n_heads) continue;
      const int64_t row = int64_t(qi) * p.n_heads + h;
      if (p.n_split == 1) {
        const float den = sink_denominator(fin_m[hr], fin_l[hr], p.sink[h]);
        store_o_row<kNt, true>(p.out + row * kDim + n0 + 2 * (lane % 4), o, r, den);
      } else {
        store_o_row<kNt, false>(p.part_o + (row * p.n_split + split) * kDim + n0 + 2 * (lane % 4), o, r, 0.0f);
      }
    }
  }
}

// Merges the n_split partials of one (query, head): grid (n_heads, n_q, dim / kThreads), one column per thread.
// The split weights expf(m_j - b) and the partial sums l_j are staged in shared memory by all threads (up to
// kAttnCombineMaxSplit splits; beyond, per column from global memory), the denominator is summed in split order by
// thread 0 from shared memory, and each column's partials are loaded 16 splits at a time. Before (run 85, an HCA
// layer at 1M context: 65 splits), thread 0 walked the splits' l_j in global memory one dependent load at a time
// and each thread did 4 columns: 12.7 us. Same arithmetic and order as the one-thread-per-column form: bitwise equal.
// Up to kPre splits, a thread's first column's partials are loaded before the split weights (they do not depend on
// them), so the kernel waits for one round of loads instead of the weights' and then the partials' (B=1, 20 splits,
// run 170: 4.6 us).
template <int kThreads>
__global__ void __launch_bounds__(kThreads)
    sparse_attention_combine_kernel(const __grid_constant__ SparseAttnParams p) {
  grid_dependency_sync();
  using namespace attn_detail;
  constexpr int kBatch = 16;
  __shared__ float wsh[kAttnCombineMaxSplit];
  __shared__ float lsh[kAttnCombineMaxSplit];
  __shared__ float red[kThreads / 32];
  __shared__ float s_b, s_den;
  const int h = blockIdx.x, qi = blockIdx.y;
  const int64_t row = int64_t(qi) * p.n_heads + h;
  const float* __restrict__ ml = p.part_ml + row * p.n_split * 2;
  const int ns = p.n_split;
  const bool cached = ns <= kAttnCombineMaxSplit;
  const float* __restrict__ po = p.part_o + row * ns * p.dim;
  constexpr int kPre = 32;
  const int c_first = blockIdx.z * kThreads + threadIdx.x;
  const bool pre = cached && ns <= kPre && c_first < p.dim;
  float v_pre[kPre];
  if (pre) {
#pragma unroll
    for (int u = 0; u < kPre; ++u)
      if (u < ns) v_pre[u] = po[int64_t(u) * p.dim + c_first];
  }
  float m = -INFINITY;
  for (int j = threadIdx.x; j < ns; j += kThreads) m = fmaxf(m, ml[2 * j]);
  m = block_max<kThreads>(m, red);
  const float b = m == -INFINITY ? 0.0f : m;
  if (cached) {
    for (int j = threadIdx.x; j < ns; j += kThreads) {
      const float2 v = *reinterpret_cast<const float2*>(ml + 2 * j);
      wsh[j] = expf(v.x - b);
      lsh[j] = v.y;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float l = 0.0f;
    if (cached) {
      for (int j = 0; j < ns; ++j) l = fmaf(lsh[j], wsh[j], l);
    } else {
      for (int j = 0; j < ns; ++j) l = fmaf(ml[2 * j + 1], expf(ml[2 * j] - b), l);
    }
    s_den = l + expf(p.sink[h] - b);
    s_b = b;
  }
  __syncthreads();
  const float den = s_den;
  for (int c = c_first; c < p.dim; c += gridDim.z * kThreads) {
    float acc = 0.0f;
    int j = 0;
    if (pre && c == c_first) {
#pragma unroll
      for (int u = 0; u < kPre; ++u)
        if (u < ns) acc = fmaf(v_pre[u], wsh[u], acc);
    } else if (cached) {
      for (; j + kBatch <= ns; j += kBatch) {
        float v[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) v[u] = po[int64_t(j + u) * p.dim + c];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) acc = fmaf(v[u], wsh[j + u], acc);
      }
      for (; j < ns; ++j) acc = fmaf(po[int64_t(j) * p.dim + c], wsh[j], acc);
    } else {
      for (; j < ns; ++j) acc = fmaf(po[int64_t(j) * p.dim + c], expf(ml[2 * j] - s_b), acc);
    }
    const float y = acc / den;
    p.out[row * p.dim + c] = p.round_bf16 ? round_bf16(y) : y;
  }
}


// The combine kernel's merge for n_split <= 32, dim % 128 == 0 and at least attn_combine_warp_rows rows (512;
// launch_sparse_attention), one warp per (query, head) row: lane j holds split j's running max and sum, the weights
// expf(m_j - b) and the denominator's fmaf chain in split order reach every lane by shuffles, and each lane merges
// dim / 32 columns (float4 loads of all splits in flight). Why: the combine kernel's CTA per (head, query, 128 columns)
// spends its time in block reductions and barriers (ncu, run 130: 23.6 us for 64 queries x 64 heads x 2 splits, 25 MB).
// Same arithmetic in the same order as the combine kernel (and cluster_merge): bitwise equal.
// kNs > 0 (switch attn_combine_pre): exactly kNs splits and dim <= 512, every partial this lane merges (kNs x 4
// float4) loaded at the start beside its split's m and l, so a warp waits for one round of loads instead of the
// weights' and then one per 128 columns (B=64, 2 splits, run 175: 8.9 us for 4096 rows). Same arithmetic and order.
template <int kWarps, int kNs = 0>
__global__ void __launch_bounds__(kWarps * 32)
    sparse_attention_combine_warp_kernel(const __grid_constant__ SparseAttnParams p) {
  grid_dependency_sync();
  using namespace attn_detail;
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= int64_t(p.n_q) * p.n_heads) return;
  const int ns = p.n_split, h = static_cast<int>(row % p.n_heads);
  const float* __restrict__ ml = p.part_ml + row * ns * 2;
  const float2 mlj = lane < ns ? *reinterpret_cast<const float2*>(ml + 2 * lane) : make_float2(-INFINITY, 0.0f);
  constexpr int kC = kNs > 0 ? 4 : 1, kS = kNs > 0 ? kNs : 1;  // preloaded chunks of 128 columns x splits
  float4 pre[kC][kS];
  if constexpr (kNs > 0) {
    const float* __restrict__ po = p.part_o + row * kNs * p.dim + 4 * lane;
#pragma unroll
    for (int cc = 0; cc < kC; ++cc)
#pragma unroll
      for (int j = 0; j < kNs; ++j)
        if (128 * cc < p.dim) pre[cc][j] = *reinterpret_cast<const float4*>(po + int64_t(j) * p.dim + 128 * cc);
  }
  const float m = warp_max(mlj.x);
  const float b = m == -INFINITY ? 0.0f : m;
  const float wj = expf(mlj.x - b);
  float l = 0.0f;
  for (int j = 0; j < ns; ++j)
    l = fmaf(__shfl_sync(0xffffffffu, mlj.y, j), __shfl_sync(0xffffffffu, wj, j), l);
  const float den = l + expf(p.sink[h] - b);
  float* __restrict__ out = p.out + row * p.dim;
  if constexpr (kNs > 0) {
#pragma unroll
    for (int cc = 0; cc < kC; ++cc) {
      if (128 * cc < p.dim) {
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int j = 0; j < kNs; ++j) {
          const float w = __shfl_sync(0xffffffffu, wj, j);
          acc = make_float4(fmaf(pre[cc][j].x, w, acc.x), fmaf(pre[cc][j].y, w, acc.y),
                            fmaf(pre[cc][j].z, w, acc.z), fmaf(pre[cc][j].w, w, acc.w));
        }
        float4 y = make_float4(acc.x / den, acc.y / den, acc.z / den, acc.w / den);
        if (p.round_bf16) y = make_float4(round_bf16(y.x), round_bf16(y.y), round_bf16(y.z), round_bf16(y.w));
        *reinterpret_cast<float4*>(out + 128 * cc + 4 * lane) = y;
      }
    }
  } else {
    const float* __restrict__ po = p.part_o + row * ns * p.dim;
    for (int c = 4 * lane; c < p.dim; c += 128) {
      float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int j0 = 0; j0 < ns; j0 += 8) {
        float4 v[8];
#pragma unroll
        for (int u = 0; u < 8; ++u)
          if (j0 + u < ns) v[u] = *reinterpret_cast<const float4*>(po + int64_t(j0 + u) * p.dim + c);
#pragma unroll
        for (int u = 0; u < 8; ++u)
          if (j0 + u < ns) {
            const float w = __shfl_sync(0xffffffffu, wj, j0 + u);
            acc = make_float4(fmaf(v[u].x, w, acc.x), fmaf(v[u].y, w, acc.y), fmaf(v[u].z, w, acc.z),
                              fmaf(v[u].w, w, acc.w));
          }
      }
      float4 y = make_float4(acc.x / den, acc.y / den, acc.z / den, acc.w / den);
      if (p.round_bf16) y = make_float4(round_bf16(y.x), round_bf16(y.y), round_bf16(y.z), round_bf16(y.w));
      *reinterpret_cast<float4*>(out + c) = y;
    }
  }
}

}  // namespace dsv4::cuda
