// Routing-side kernels of the MoE family, all deterministic (no float atomics):
// route_kernel<kPer>: one warp per token (spec §6.1). Each lane holds s = sqrt(softplus(z)) and the selection key
//   s + bias of kPer experts in registers; the warp picks top_k times the best untaken key by a shuffle argmax
//   (ties to the lower expert id, the CPU partial_sort order), or reads tid2eid[token] on hash layers; lane 0
//   normalises in k order. Supports E <= 32 kPer <= kRouteMaxExperts, top_k <= kRouteMaxTopK.
// moe_align_count_kernel (one CTA): per-expert counts (shared integer atomics), exclusive offsets, and the
//   GEMM tile list (tiles of bm slots of one expert). moe_align_place_kernel (one CTA per expert): stable
//   compaction of the expert's slot ids into perm, so the permutation does not depend on scheduling.
// moe_fake_quant_kernel: FP8 fake-quant of GEMM inputs, one warp per 1x128 block (core fp8_fake_quant).
// moe_combine_kernel (f32 y) / moe_combine_bf16_kernel (bf16 y from the FP8 prefill kernel): one CTA per (token,
// 4 or 8 x kCombineThreads columns); a token's k slot outputs summed from 0 in ascending (expert, k) order.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/warp.cuh"
#include "backend/cuda/common/numerics.cuh"
#include "backend/cuda/moe/params.h"
#include "backend/cuda/moe/plan.h"

namespace dsv4::cuda {

// s = sqrt(softplus(z)), shared by both router kernels (the same expression, the same value).
__device__ __forceinline__ float route_score(float zv) {
  const float sp = zv > 20.0f ? zv : log1pf(expf(zv));
  return sqrtf(sp);
}

__device__ __forceinline__ bool route_better(float ka, int ia, float kb, int ib) {
  return ka > kb || (ka == kb && ia < ib);
}

// Routing weights of token t (one thread) from the chosen experts' scores sk in k order: normalised by their sum
// in k order, times route_scale.
__device__ __forceinline__ void route_weights(const RouteParams& p, int t, const float* sk) {
  float sum = 0.0f;
  for (int k = 0; k < p.top_k; ++k) sum += sk[k];
  float* w = p.weight + static_cast<int64_t>(t) * p.top_k;
  for (int k = 0; k < p.top_k; ++k) w[k] = (p.normalize ? sk[k] / sum : sk[k]) * p.route_scale;
}

// Lane l of token t's warp holds experts e = l + 32 i (i < kPer) in registers, scanned in that order, as the
// shared-memory version did (36 KB of shared memory per 4-warp CTA capped it at ~24 warps per SM: 24 µs for
// Flash T = 4096, run 264; 17.7-19.0 µs from registers, run 266). Lane 0's pick of each round is the selection (the xor reduction's result in lane 0),
// broadcast so that its owner lane marks it taken; the chosen scores travel by shuffle for the weights.
template <int kPer>
__global__ void __launch_bounds__(kRouteWarps * 32) route_kernel(const __grid_constant__ RouteParams p) {
  grid_dependency_sync();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x * kRouteWarps + warp;
  if (t >= p.T) return;
  const float* z = p.logits + static_cast<int64_t>(t) * p.E;
  float s[kPer], key[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = lane + 32 * i;
    s[i] = e < p.E ? route_score(z[e]) : 0.0f;
    key[i] = e < p.E && p.bias ? s[i] + p.bias[e] : s[i];
  }
  // The score of expert e (any lane's), in every lane.
  auto score_of = [&](int e) {
    float mine = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i)
      if (i == (e >> 5)) mine = s[i];
    return __shfl_sync(0xffffffffu, mine, e & 31);
  };
  int32_t* sel = p.sel + static_cast<int64_t>(t) * p.top_k;
  float sk[kRouteMaxTopK];
  if (p.tid2eid) {
    const int64_t base = static_cast<int64_t>(p.tokens[t]) * p.top_k;
#pragma unroll
    for (int k = 0; k < kRouteMaxTopK; ++k) {
      if (k >= p.top_k) break;
      const int e = p.tid2eid_i64 ? static_cast<int32_t>(static_cast<const int64_t*>(p.tid2eid)[base + k])
                                  : static_cast<const int32_t*>(p.tid2eid)[base + k];
      if (lane == 0) sel[k] = e;
      sk[k] = e >= 0 && e < p.E ? score_of(e) : __uint_as_float(0x7FC00000u);
    }
  } else {
    uint32_t taken = 0;
#pragma unroll
    for (int k = 0; k < kRouteMaxTopK; ++k) {
      if (k >= p.top_k) break;
      float bk = 0.0f;
      int bi = -1;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int e = lane + 32 * i;
        if (e < p.E && !((taken >> i) & 1u) && (bi < 0 || route_better(key[i], e, bk, bi))) {
          bk = key[i];
          bi = e;
        }
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const float ok = __shfl_xor_sync(0xffffffffu, bk, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (oi >= 0 && (bi < 0 || route_better(ok, oi, bk, bi))) {
          bk = ok;
          bi = oi;
        }
      }
      bi = __shfl_sync(0xffffffffu, bi, 0);
      if (lane == (bi & 31)) taken |= 1u << (bi >> 5);
      if (lane == 0) sel[k] = bi;
      sk[k] = score_of(bi);
    }
  }
  if (lane == 0) route_weights(p, t, sk);
}

// route_rank_kernel: the router for few tokens (decode), one CTA per token. Every thread scores its experts,
// then finds each expert's rank by counting the experts that beat it (route_better: higher key, ties to the
// lower id) — the same selection as route_kernel's top_k argmax rounds, in one parallel pass instead of top_k
// dependent warp reductions (H200, ncu: route_kernel took 11 us for one token). A NaN key counts as -inf.
// Weights: thread 0 normalises in k order exactly as route_kernel does.
__global__ void __launch_bounds__(kRouteRankThreads) route_rank_kernel(const __grid_constant__ RouteParams p) {
  grid_dependency_sync();
  __shared__ float s[kRouteMaxExperts];
  __shared__ __align__(16) float key[kRouteMaxExperts];
  __shared__ int32_t chosen[kRouteMaxTopK];
  const int t = blockIdx.x, tid = threadIdx.x;
  const float* z = p.logits + static_cast<int64_t>(t) * p.E;
  for (int e = tid; e < p.E; e += kRouteRankThreads) {
    const float sv = route_score(z[e]);
    s[e] = sv;
    const float kv = p.bias ? sv + p.bias[e] : sv;
    key[e] = isnan(kv) ? -INFINITY : kv;
  }
  __syncthreads();
  int32_t* sel = p.sel + static_cast<int64_t>(t) * p.top_k;
  if (p.tid2eid) {
    const int64_t base = static_cast<int64_t>(p.tokens[t]) * p.top_k;
    for (int k = tid; k < p.top_k; k += kRouteRankThreads) {
      const int32_t e = p.tid2eid_i64 ? static_cast<int32_t>(static_cast<const int64_t*>(p.tid2eid)[base + k])
                                      : static_cast<const int32_t*>(p.tid2eid)[base + k];
      sel[k] = e;
      chosen[k] = e;
    }
  } else {
    // The count reads 4 keys per 16-byte broadcast load, 4 loads in flight (one 4-byte load per key, one at a
    // time, left it latency-bound: 6.9 us for one token, H200 run 147 profile).
    const float4* key4 = reinterpret_cast<const float4*>(key);
    const int e4 = p.E / 4;
    for (int e = tid; e < p.E; e += kRouteRankThreads) {
      const float ke = key[e];
      int rank = 0;
      auto beats = [&](float kj, int j) { return (kj > ke) | ((kj == ke) & (j < e)); };
#pragma unroll 4
      for (int j4 = 0; j4 < e4; ++j4) {
        const float4 k = key4[j4];
        rank += beats(k.x, 4 * j4) + beats(k.y, 4 * j4 + 1) + beats(k.z, 4 * j4 + 2) + beats(k.w, 4 * j4 + 3);
      }
      for (int j = 4 * e4; j < p.E; ++j) rank += beats(key[j], j);
      if (rank < p.top_k) {
        sel[rank] = e;
        chosen[rank] = e;
      }
    }
  }
  __syncthreads();
  if (tid == 0) {
    float sk[kRouteMaxTopK];
    for (int k = 0; k < p.top_k; ++k) sk[k] = s[chosen[k]];
    route_weights(p, t, sk);
  }
}

// Exclusive block scan of one int per thread (blockDim.x == kAlignThreads); returns the block total in *total.
__device__ __forceinline__ int align_block_scan(int v, int* warp_sums, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int inc = warp_inclusive_sum(v);
  if (lane == 31) warp_sums[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    int w = lane < kAlignThreads / 32 ? warp_sums[lane] : 0;
    const int wi = warp_inclusive_sum(w);
    if (lane < kAlignThreads / 32) warp_sums[lane] = wi - w;
    if (lane == 31) *total = wi;
  }
  __syncthreads();
  const int out = warp_sums[warp] + inc - v;
  __syncthreads();
  return out;
}

__global__ void __launch_bounds__(kAlignThreads) moe_align_count_kernel(const __grid_constant__ MoeAlignParams p) {
  grid_dependency_sync();
  __shared__ int cnt[kAlignMaxExperts];
  __shared__ int warp_sums[kAlignThreads / 32];
  __shared__ int total_rows, total_tiles;
  const int e = threadIdx.x;
  if (e < p.E) cnt[e] = 0;
  __syncthreads();
  for (int s = threadIdx.x; s < p.n_slots; s += kAlignThreads) {
    const int x = p.sel[s];
    if (x >= 0 && x < p.E) atomicAdd(&cnt[x], 1);
  }
  __syncthreads();
  const int c = e < p.E ? cnt[e] : 0;
  const int nt = (c + p.bm - 1) / p.bm;
  const int off = align_block_scan(c, warp_sums, &total_rows);
  const int toff = align_block_scan(nt, warp_sums, &total_tiles);
  if (e < p.E) {
    p.counts[e] = c;
    p.offsets[e] = off;
    for (int j = 0; j < nt && toff + j < p.max_tiles; ++j) {
      int32_t* tl = p.tiles + 3 * static_cast<int64_t>(toff + j);
      tl[0] = e;
      tl[1] = off + j * p.bm;
      tl[2] = min(p.bm, c - j * p.bm);
    }
  }
  if (threadIdx.x == 0) {
    p.offsets[p.E] = total_rows;
    *p.n_tiles = min(total_tiles, p.max_tiles);
  }
}

__global__ void __launch_bounds__(kAlignPlaceThreads) moe_align_place_kernel(const __grid_constant__ MoeAlignParams p) {
  grid_dependency_sync();
  constexpr int kWarps = kAlignPlaceThreads / 32;
  __shared__ int warp_counts[kWarps];
  const int e = blockIdx.x;
  if (p.counts[e] == 0) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int running = p.offsets[e];
  // Thread t takes slots c0 + kAlignPlacePer t .. + kAlignPlacePer - 1 of each round (one slot per thread and
  // round, two barriers each, took 32 µs at 24576 slots, run 262): its hits, a warp scan, the warp totals.
  for (int c0 = 0; c0 < p.n_slots; c0 += kAlignPlaceThreads * kAlignPlacePer) {
    const int s0 = c0 + kAlignPlacePer * static_cast<int>(threadIdx.x);
    bool hit[kAlignPlacePer];
    int cnt = 0;
#pragma unroll
    for (int i = 0; i < kAlignPlacePer; ++i) {
      hit[i] = s0 + i < p.n_slots && p.sel[s0 + i] == e;
      cnt += hit[i];
    }
    int incl = cnt;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += y;
    }
    if (lane == 31) warp_counts[warp] = incl;
    __syncthreads();
    int before = 0, total = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      before += w < warp ? warp_counts[w] : 0;
      total += warp_counts[w];
    }
    int pos = running + before + incl - cnt;
#pragma unroll
    for (int i = 0; i < kAlignPlacePer; ++i)
      if (hit[i]) p.perm[pos++] = s0 + i;
    running += total;
    __syncthreads();
  }
}

// route + moe_align in one CTA of kAlignThreads (decode, MoeRouteAlignParams). Phase 1: warp w routes tokens
// w, w + 32, ...; lane l holds the keys of experts l + 32 j (j < 8) in registers and a taken bit mask, the
// scan / shuffle-argmax / lane-0 choice are route_kernel's, so sel and weight are identical. Phase 2: counts
// (shared integer atomics), offsets and tile list by align_block_scan as moe_align_count_kernel, then slot s
// (thread s) is placed at offsets[e] + (number of earlier slots of e): moe_align_place_kernel's stable order.
__global__ void __launch_bounds__(kAlignThreads) moe_route_align_kernel(const __grid_constant__ MoeRouteAlignParams p) {
  grid_dependency_sync();
  constexpr int kJ = kFusedRouteMaxExperts / 32;
  __shared__ int s_sel[kAlignThreads];
  __shared__ int cnt[kFusedRouteMaxExperts];
  __shared__ int s_off[kFusedRouteMaxExperts];
  __shared__ int warp_sums[kAlignThreads / 32];
  __shared__ int total_rows, total_tiles;
  const RouteParams& r = p.route;
  const MoeAlignParams& a = p.align;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int E = r.E, top_k = r.top_k;
  for (int t = warp; t < r.T; t += kAlignThreads / 32) {
    const float* z = r.logits + static_cast<int64_t>(t) * E;
    int32_t* sel = r.sel + static_cast<int64_t>(t) * top_k;
    int* ssel = s_sel + t * top_k;
    if (r.tid2eid) {
      const int64_t base = static_cast<int64_t>(r.tokens[t]) * top_k;
      for (int k = lane; k < top_k; k += 32) {
        const int v = r.tid2eid_i64 ? static_cast<int32_t>(static_cast<const int64_t*>(r.tid2eid)[base + k])
                                    : static_cast<const int32_t*>(r.tid2eid)[base + k];
        sel[k] = v;
        ssel[k] = v;
      }
    } else {
      float key[kJ];
#pragma unroll
      for (int j = 0; j < kJ; ++j) {
        const int e = lane + 32 * j;
        key[j] = 0.0f;
        if (e < E) {
          const float sv = route_score(z[e]);
          key[j] = r.bias ? sv + r.bias[e] : sv;
        }
      }
      uint32_t taken = 0;
      for (int k = 0; k < top_k; ++k) {
        float bk = 0.0f;
        int bi = -1;
#pragma unroll
        for (int j = 0; j < kJ; ++j) {
          const int e = lane + 32 * j;
          if (e < E && !((taken >> j) & 1u) && (bi < 0 || route_better(key[j], e, bk, bi))) {
            bk = key[j];
            bi = e;
          }
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
          const float ok = __shfl_xor_sync(0xffffffffu, bk, o);
          const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
          if (oi >= 0 && (bi < 0 || route_better(ok, oi, bk, bi))) {
            bk = ok;
            bi = oi;
          }
        }
        bi = __shfl_sync(0xffffffffu, bi, 0);  // lane 0's choice, as route_kernel
        if (bi >= 0 && lane == (bi & 31)) taken |= 1u << (bi >> 5);
        if (lane == 0) {
          sel[k] = bi;
          ssel[k] = bi;
        }
      }
    }
    __syncwarp();
    if (lane == 0) {
      float sum = 0.0f;
      for (int k = 0; k < top_k; ++k) sum += route_score(z[ssel[k]]);
      float* w = r.weight + static_cast<int64_t>(t) * top_k;
      for (int k = 0; k < top_k; ++k) {
        const float sv = route_score(z[ssel[k]]);
        w[k] = (r.normalize ? sv / sum : sv) * r.route_scale;
      }
    }
    __syncwarp();
  }
  const int e = threadIdx.x;
  if (e < E) cnt[e] = 0;
  __syncthreads();
  const int n = a.n_slots;
  const int x = e < n ? s_sel[e] : -1;
  if (x >= 0 && x < E) atomicAdd(&cnt[x], 1);
  __syncthreads();
  const int c = e < E ? cnt[e] : 0;
  const int nt = (c + a.bm - 1) / a.bm;
  const int off = align_block_scan(c, warp_sums, &total_rows);
  const int toff = align_block_scan(nt, warp_sums, &total_tiles);
  if (e < E) {
    a.counts[e] = c;
    a.offsets[e] = off;
    s_off[e] = off;
    for (int j = 0; j < nt && toff + j < a.max_tiles; ++j) {
      int32_t* tl = a.tiles + 3 * static_cast<int64_t>(toff + j);
      tl[0] = e;
      tl[1] = off + j * a.bm;
      tl[2] = min(a.bm, c - j * a.bm);
    }
  }
  if (threadIdx.x == 0) {
    a.offsets[E] = total_rows;
    *a.n_tiles = min(total_tiles, a.max_tiles);
  }
  __syncthreads();
  if (x >= 0 && x < E) {
    int rank = 0;
    for (int s2 = 0; s2 < e; ++s2) rank += s_sel[s2] == x;
    a.perm[s_off[x] + rank] = e;
  }
}

__global__ void __launch_bounds__(256) moe_fake_quant_kernel(const __grid_constant__ MoeFakeQuantParams p) {
  grid_dependency_sync();
  constexpr float kInvE4m3Max = static_cast<float>(1.0 / 448.0);
  const int lane = threadIdx.x & 31;
  const int kb_count = p.K / 128;
  const int64_t block = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  if (block >= p.rows * kb_count) return;
  const int64_t off = (block / kb_count) * p.K + (block % kb_count) * 128 + lane * 4;
  const float4 x4 = *reinterpret_cast<const float4*>(p.x + off);
  float v[4] = {x4.x, x4.y, x4.z, x4.w};
  float amax = 0.0f;
  bool nan = false;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    nan |= isnan(v[i]);
    amax = fmaxf(amax, fabsf(v[i]));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  nan = __any_sync(0xffffffffu, nan);
  const float s = nan ? __uint_as_float(0x7FC00000u) : ue8m0_ceil(__fmul_rn(fmaxf(amax, 1e-4f), kInvE4m3Max));
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float c = __fdiv_rn(v[i], s);
    const float q = isnan(c) ? c : e4m3_to_f32(f32_to_e4m3(fminf(fmaxf(c, -448.0f), 448.0f)));
    v[i] = __bfloat162float(__float2bfloat16_rn(__fmul_rn(q, s)));
  }
  if (p.out_f32) *reinterpret_cast<float4*>(p.out_f32 + off) = make_float4(v[0], v[1], v[2], v[3]);
  if (p.out_bf16) {
    __nv_bfloat162 h[2] = {__floats2bfloat162_rn(v[0], v[1]), __floats2bfloat162_rn(v[2], v[3])};
    *reinterpret_cast<uint2*>(p.out_bf16 + off) = *reinterpret_cast<const uint2*>(h);
  }
}

// A token's slot order for the combine: insertion sort of its k slots by (expert, k); every thread builds the same.
__device__ __forceinline__ void combine_order(const int32_t* sel, int top_k, int (&order)[kRouteMaxTopK]) {
  for (int j = 0; j < top_k; ++j) {
    int i = j;
    while (i > 0 && sel[order[i - 1]] > sel[j]) {
      order[i] = order[i - 1];
      --i;
    }
    order[i] = j;
  }
}

__global__ void __launch_bounds__(kCombineThreads) moe_combine_kernel(const __grid_constant__ MoeCombineParams p) {
  grid_dependency_sync();
  const int t = blockIdx.x;
  int order[kRouteMaxTopK];
  combine_order(p.sel + static_cast<int64_t>(t) * p.top_k, p.top_k, order);
  const float* y = p.y + static_cast<int64_t>(t) * p.top_k * p.D;
  float* out = p.out + static_cast<int64_t>(t) * p.D;
  // CTA blockIdx.y covers columns [c0, c0 + 4 kCombineThreads): 4 per thread, each column's loads in flight
  // together (one CTA per token was latency-bound: 16 µs at D = 4096).
  const int c0 = blockIdx.y * 4 * kCombineThreads;
  if ((p.D & 3) == 0) {
    const int c = c0 + 4 * threadIdx.x;
    if (c >= p.D) return;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int j = 0; j < p.top_k; ++j) {
      const float4 v = *reinterpret_cast<const float4*>(y + static_cast<int64_t>(order[j]) * p.D + c);
      acc.x += v.x;
      acc.y += v.y;
      acc.z += v.z;
      acc.w += v.w;
    }
    *reinterpret_cast<float4*>(out + c) = acc;
    return;
  }
  for (int c = c0 + threadIdx.x; c < min(p.D, c0 + 4 * kCombineThreads); c += kCombineThreads) {
    float acc = 0.0f;
    for (int j = 0; j < p.top_k; ++j) acc += y[static_cast<int64_t>(order[j]) * p.D + c];
    out[c] = acc;
  }
}

// bf16 slot outputs (y_bf16, from the FP8 prefill kernel): kCols (4 or 8) columns per thread, the slots' loads
// (8 or 16 bytes each) issued kCombineSlotsInFlight at a time, then summed in the same order as the f32 kernel.
// Its own kernel: in one kernel with the f32 path its registers halved the f32 path's occupancy (run 263: f32
// combine 292 µs against 148 in run 262, Flash T = 4096).
template <int kCols>
__global__ void __launch_bounds__(kCombineThreads) moe_combine_bf16_kernel(const __grid_constant__ MoeCombineParams p) {
  using Vec = std::conditional_t<kCols == 8, uint4, uint2>;
  grid_dependency_sync();
  const int t = blockIdx.x;
  const int c = (blockIdx.y * kCombineThreads + threadIdx.x) * kCols;
  if (c >= p.D) return;
  int order[kRouteMaxTopK];
  combine_order(p.sel + static_cast<int64_t>(t) * p.top_k, p.top_k, order);
  const __nv_bfloat16* y = p.y_bf16 + static_cast<int64_t>(t) * p.top_k * p.D + c;
  float acc[kCols];
#pragma unroll
  for (int i = 0; i < kCols; ++i) acc[i] = 0.0f;
  for (int j0 = 0; j0 < p.top_k; j0 += kCombineSlotsInFlight) {
    Vec r[kCombineSlotsInFlight];
#pragma unroll
    for (int j = 0; j < kCombineSlotsInFlight; ++j)
      if (j0 + j < p.top_k) r[j] = *reinterpret_cast<const Vec*>(y + static_cast<int64_t>(order[j0 + j]) * p.D);
#pragma unroll
    for (int j = 0; j < kCombineSlotsInFlight; ++j) {
      if (j0 + j >= p.top_k) break;
      const uint32_t* w = reinterpret_cast<const uint32_t*>(&r[j]);
#pragma unroll
      for (int h = 0; h < kCols / 2; ++h) {
        const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[h]));
        acc[2 * h] += f.x;
        acc[2 * h + 1] += f.y;
      }
    }
  }
  float* out = p.out + static_cast<int64_t>(t) * p.D + c;
#pragma unroll
  for (int i = 0; i < kCols; i += 4)
    *reinterpret_cast<float4*>(out + i) = make_float4(acc[i], acc[i + 1], acc[i + 2], acc[i + 3]);
}

}  // namespace dsv4::cuda
