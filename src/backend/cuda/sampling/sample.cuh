// sample_kernel: the whole per-row pipeline of docs/sampling.md on device f32 logits, one CTA per row.
//   steps 1-3 (bias, repetition, presence/frequency) rewrite the row's edited tokens in place, with the
//   reference's float operations (no FMA contraction: __f*_rn); step 4 (temperature) is applied on every read.
//   greedy: one pass, the largest rank key (value desc, lower id first).
//   sampled: max and sum of weights w = exp(double(l) - max) (the reference's double probabilities), then
//   top-k, top-p and the draw are each a radix search over a 64-bit rank key (ordered float bits, then ~id)
//   for "the first element, in the reference's candidate order, at which the running weight crosses a target":
//   4-bit digits, per-thread digit histograms (count, double weight) reduced in a fixed order, so the result is
//   deterministic and independent of scheduling. The kept set is always {finite, key >= threshold, w >= min_p}.
// sample_greedy_kernel: batches of up to 16 rows, all greedy without logprobs: a cluster of kGreedyCtas CTAs per
//   row (each scans a chunk; DSMEM combine), the same tokens, the row read by 8 SMs (H200, ncu, 129280 logits at
//   B=1: 10.5 µs, run 150, against 25.2 µs for one CTA, run 149).
// Exactness: kept sets and tokens equal the reference's except where a double running sum lands within a few
// ulps of a threshold (tree vs sequential summation order), which random data does with probability ~1e-13.
#pragma once
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/sampling/params.h"

namespace dsv4::cuda::sampling_detail {

constexpr int kSampleThreads = 512;
constexpr int kSampleWarps = kSampleThreads / 32;
constexpr int kDigits = 16;  // 4-bit radix digits
constexpr int kGreedyCtas = 8;  // sample_greedy_kernel: CTAs (one cluster) per row

// Philox4x32-10 exactly as src/sampling/philox.cpp (Random123 constants).
__device__ inline double philox_uniform(uint64_t seed, uint64_t step) {
  uint32_t c0 = static_cast<uint32_t>(step), c1 = static_cast<uint32_t>(step >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0, n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1, n3 = static_cast<uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
  }
  const uint64_t bits = (static_cast<uint64_t>(c0 >> 5) << 26) | (c1 >> 6);
  return static_cast<double>(bits) * 0x1.0p-53;
}

// Monotone map of a float (not NaN) to uint32; -0 and +0 map alike (the reference compares them equal).
__device__ inline uint32_t order_bits(float v) {
  const uint32_t b = __float_as_uint(v == 0.0f ? 0.0f : v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
// Descending rank key = the reference's order: higher logit first, lower id first among ties.
__device__ inline uint64_t rank_key(float v, int32_t i) {
  return (static_cast<uint64_t>(order_bits(v)) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(i));
}
// Descending id key = ascending token id (the reference's order when neither top-k nor top-p ran).
__device__ inline uint64_t id_key(int32_t i) { return static_cast<uint32_t>(~static_cast<uint32_t>(i)); }
__device__ inline int32_t key_token(uint64_t key) { return static_cast<int32_t>(~static_cast<uint32_t>(key)); }

struct SampleShared {
  double hist_w[kSampleWarps][kDigits];
  int32_t hist_c[kSampleWarps][kDigits];
  unsigned long long red[kSampleWarps];
  uint64_t prefix, mask;
  int32_t count;
  int32_t done;
  int32_t n_top;
  uint64_t top_keys[kSampleMaxTopLogprobs];
};

// Reductions whose result is identical on every thread (xor butterfly + sequential sum over warps).
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, SampleShared& sh) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) reinterpret_cast<T*>(sh.red)[threadIdx.x >> 5] = v;
  __syncthreads();
  T r = reinterpret_cast<T*>(sh.red)[0];
  for (int w = 1; w < kSampleWarps; ++w) r = op(r, reinterpret_cast<T*>(sh.red)[w]);
  return r;
}
__device__ inline double block_sum(double v, SampleShared& sh) {
  return block_reduce(v, [](double a, double b) { return a + b; }, sh);
}
__device__ inline uint64_t block_max(uint64_t v, SampleShared& sh) {
  return block_reduce(v, [](uint64_t a, uint64_t b) { return a > b ? a : b; }, sh);
}
__device__ inline uint64_t block_min(uint64_t v, SampleShared& sh) {
  return block_reduce(v, [](uint64_t a, uint64_t b) { return a < b ? a : b; }, sh);
}

// One row: raw pointer, temperature applied on read exactly as the reference's `v *= inv_t`.
struct Row {
  const float* x;
  int32_t n;
  float inv_t;
  bool scale;
  double lmax;
  __device__ float at(int32_t i) const { return scale ? __fmul_rn(x[i], inv_t) : x[i]; }
  // f(i, at(i)) for each of this thread's elements, in increasing i (per-thread sums keep a fixed order): with a
  // 16-byte aligned row, the 4 consecutive elements of float4 q = threadIdx.x + j·kSampleThreads, the loads of
  // kEachUnroll consecutive j issued before the first call; else one element per step. One scalar load at a time
  // left a row scan latency-bound (greedy over 129280 logits at B=1: 42 µs, H200 run 147).
  template <typename F>
  __device__ void each(F&& f) const;
  __device__ double weight(float l) const { return exp(static_cast<double>(l) - lmax); }
};

constexpr int kEachUnroll = 8;
template <typename F>
__device__ __forceinline__ void Row::each(F&& f) const {
  constexpr int T = kSampleThreads, U = kEachUnroll;
  int32_t i = threadIdx.x;
  if ((reinterpret_cast<uintptr_t>(x) & 15u) == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const int32_t n4 = n / 4;
    auto visit = [&](int32_t q, float4 v) {
      if (scale) v = make_float4(__fmul_rn(v.x, inv_t), __fmul_rn(v.y, inv_t), __fmul_rn(v.z, inv_t),
                                 __fmul_rn(v.w, inv_t));
      f(4 * q, v.x);
      f(4 * q + 1, v.y);
      f(4 * q + 2, v.z);
      f(4 * q + 3, v.w);
    };
    int32_t q = threadIdx.x;
    for (; q + (U - 1) * T < n4; q += U * T) {
      float4 v[U];
#pragma unroll
      for (int u = 0; u < U; ++u) v[u] = x4[q + u * T];
#pragma unroll
      for (int u = 0; u < U; ++u) visit(q + u * T, v[u]);
    }
    for (; q < n4; q += T) visit(q, x4[q]);
    i = 4 * n4 + threadIdx.x;
  }
  for (; i < n; i += T) f(i, at(i));
}

struct Selected {
  bool found;
  uint64_t key;
};

// The first element in descending key order (keys from key_of, among elements with keep(i, l)) at which the
// running sum of weight_of(i, l) crosses target: sum >= target (ge) or sum > target (!ge). Keys of kept
// elements must be distinct. top_shift: 60 for rank keys, 28 for id keys.
template <typename KeyOf, typename Keep, typename WeightOf>
__device__ Selected radix_select(const Row& r, KeyOf key_of, Keep keep, WeightOf weight_of, double target, bool ge,
                                 int top_shift, SampleShared& sh) {
  uint64_t prefix = 0, mask = 0;
  double above = 0.0;
  for (int shift = top_shift; shift >= 0; shift -= 4) {
    double acc[kDigits];
    int32_t cnt[kDigits];
#pragma unroll
    for (int d = 0; d < kDigits; ++d) acc[d] = 0.0, cnt[d] = 0;
    r.each([&](int32_t i, float l) {
      if (!keep(i, l)) return;
      const uint64_t k = key_of(i, l);
      if ((k & mask) != prefix) return;
      const int dig = static_cast<int>((k >> shift) & 15u);
      const double w = weight_of(i, l);
#pragma unroll
      for (int d = 0; d < kDigits; ++d)
        if (d == dig) acc[d] += w, cnt[d] += 1;
    });
#pragma unroll
    for (int d = 0; d < kDigits; ++d)
      for (int o = 16; o > 0; o >>= 1) {
        acc[d] += __shfl_xor_sync(0xffffffffu, acc[d], o);
        cnt[d] += __shfl_xor_sync(0xffffffffu, cnt[d], o);
      }
    __syncthreads();
    if ((threadIdx.x & 31) == 0)
#pragma unroll
      for (int d = 0; d < kDigits; ++d) sh.hist_w[threadIdx.x >> 5][d] = acc[d], sh.hist_c[threadIdx.x >> 5][d] = cnt[d];
    __syncthreads();
    if (threadIdx.x == 0) {
      int chosen = -1, last = -1;
      double before_last = above;
      int32_t chosen_count = 0;
      for (int d = kDigits - 1; d >= 0; --d) {
        double w = 0.0;
        int32_t c = 0;
        for (int wp = 0; wp < kSampleWarps; ++wp) w += sh.hist_w[wp][d], c += sh.hist_c[wp][d];
        if (c == 0) continue;
        const double sum = above + w;
        if (ge ? sum >= target : sum > target) {
          chosen = d, chosen_count = c;
          break;
        }
        last = d, before_last = above, chosen_count = c;
        above = sum;
      }
      // Not crossed: on the first digit the target is out of reach; deeper, the bucket chosen above crossed with
      // its own (differently rounded) sum, so its last element is the one.
      if (chosen < 0 && mask != 0) chosen = last, above = before_last;
      sh.done = chosen < 0 ? -1 : (chosen_count == 1 ? 1 : 0);
      if (chosen >= 0) {
        sh.prefix = prefix | (static_cast<uint64_t>(chosen) << shift);
        sh.mask = mask | (uint64_t{15} << shift);
      }
    }
    __syncthreads();
    const int done = sh.done;
    if (done < 0) return {false, 0};
    prefix = sh.prefix, mask = sh.mask;  // `above` is thread 0's alone: the weight before the prefix
    if (done == 1) break;
    __syncthreads();
  }
  // The unique kept element under the prefix.
  uint64_t best = 0;
  r.each([&](int32_t i, float l) {
    if (!keep(i, l)) return;
    const uint64_t k = key_of(i, l);
    if ((k & mask) == prefix && k > best) best = k;
  });
  return {true, block_max(best, sh)};
}

__device__ inline float order_value(uint32_t b) {
  return __uint_as_float((b & 0x80000000u) ? (b & 0x7fffffffu) : ~b);
}

// Steps 1-3 on the row's edited tokens in [lo, hi), in place, with the reference's float operations.
__device__ inline void apply_edits(float* x, const SampleRowParams& p, const SampleEdit* __restrict__ edits,
                                   int32_t lo = 0, int32_t hi = INT32_MAX) {
  for (int32_t e = threadIdx.x; e < p.n_edits; e += kSampleThreads) {
    const SampleEdit ed = edits[p.edit_begin + e];
    if (ed.token < lo || ed.token >= hi) continue;
    float v = x[ed.token];
    if (ed.flags & kEditBias) v = __fadd_rn(v, ed.bias);
    if (ed.flags & kEditRepetition)
      v = v > 0.0f ? __fdiv_rn(v, p.repetition_penalty) : __fmul_rn(v, p.repetition_penalty);
    if (ed.flags & kEditPresence)
      v = __fsub_rn(v, __fadd_rn(__fmul_rn(p.frequency_penalty, static_cast<float>(ed.count)), p.presence_penalty));
    x[ed.token] = v;
  }
  __syncthreads();
}

struct RowScan {
  uint64_t max_key;  // largest rank key over the whole row (the greedy token)
  bool bad;          // NaN or +inf present
  int32_t n_finite;
};

// The scan of r, whose element i is token first + i of the row.
__device__ inline RowScan scan_row(const Row& r, SampleShared& sh, int32_t first = 0) {
  uint64_t best = 0, bad = 0, finite = 0;
  r.each([&](int32_t i, float l) {
    if (isnan(l) || l == INFINITY) {
      bad = 1;
      return;
    }
    const uint64_t k = rank_key(l, first + i);
    best = k > best ? k : best;
    finite += l > -INFINITY ? 1 : 0;
  });
  RowScan s;
  s.max_key = block_max(best, sh);
  s.bad = block_max(bad, sh) != 0;
  s.n_finite = static_cast<int32_t>(block_reduce(finite, [](uint64_t a, uint64_t b) { return a + b; }, sh));
  return s;
}

// A row's outcome from its scan: the error when it has NaN / +inf or no finite value.
__device__ inline bool scan_failed(const RowScan& scan, SampleRowResult& out) {
  if (!scan.bad && scan.n_finite > 0) return false;
  if (threadIdx.x == 0) out.token = -1, out.n_top = 0, out.error = scan.bad ? kSampleNonFinite : kSampleNoFinite;
  return true;
}

// sum_i exp(double(l_i) - max) over the row (-inf contributes 0), as log_sum_exp and total_weight do.
__device__ inline double row_weight(const Row& r, SampleShared& sh) {
  double s = 0.0;
  r.each([&](int32_t i, float l) {
    if (l > -INFINITY) s += r.weight(l);
  });
  return block_sum(s, sh);
}

// Steps 5-8 (docs/sampling.md) on a non-greedy row; total0 = row_weight(r).
__device__ inline int32_t sample_row_token(const Row& r, const SampleRowParams& p, int32_t n_finite, double total0,
                                           SampleShared& sh) {
  const auto rank = [](int32_t i, float l) { return rank_key(l, i); };
  const auto one = [](int32_t, float) { return 1.0; };
  const auto finite = [](int32_t, float l) { return l > -INFINITY; };
  const auto weight = [&r](int32_t, float l) { return r.weight(l); };
  const bool k_on = p.top_k > 0 && p.top_k < n_finite;
  const bool p_on = p.top_p < 1.0f;
  uint64_t thr = 0;  // kept: rank key >= thr
  double total1 = total0;
  if (k_on) {
    thr = radix_select(r, rank, finite, one, static_cast<double>(p.top_k), true, 60, sh).key;
    double s = 0.0;
    r.each([&](int32_t i, float l) {
      if (l > -INFINITY && rank_key(l, i) >= thr) s += r.weight(l);
    });
    total1 = block_sum(s, sh);
  }
  if (p_on) {
    const auto in_k = [thr](int32_t i, float l) { return l > -INFINITY && rank_key(l, i) >= thr; };
    const Selected sel = radix_select(r, rank, in_k, weight, static_cast<double>(p.top_p) * total1, true, 60, sh);
    if (sel.found) thr = sel.key;
  }
  const bool minp_on = p.min_p > 0.0f;
  const double min_p = p.min_p;
  const auto kept = [&r, thr, minp_on, min_p](int32_t i, float l) {
    return l > -INFINITY && rank_key(l, i) >= thr && (!minp_on || r.weight(l) >= min_p);
  };
  double total = total0;
  if (k_on || p_on || minp_on) {
    double s = 0.0;
    r.each([&](int32_t i, float l) {
      if (kept(i, l)) s += r.weight(l);
    });
    total = block_sum(s, sh);
  }
  const double u = philox_uniform(p.seed, p.step);
  const auto prob = [&r, total](int32_t, float l) { return r.weight(l) / total; };
  // Candidate order: descending when top-k or top-p ran, else token-id order (the reference's).
  const bool sorted = k_on || p_on;
  const auto id = [](int32_t i, float) { return id_key(i); };
  Selected sel = sorted ? radix_select(r, rank, kept, prob, u, false, 60, sh)
                        : radix_select(r, id, kept, prob, u, false, 28, sh);
  if (sel.found) return key_token(sel.key);
  // u within rounding of the total: the last candidate with a non-zero probability.
  uint64_t last = ~uint64_t{0};
  r.each([&](int32_t i, float l) {
    if (!kept(i, l) || !(prob(i, l) > 0.0)) return;
    const uint64_t k = sorted ? rank_key(l, i) : id_key(i);
    last = k < last ? k : last;
  });
  return key_token(block_min(last, sh));
}

// The chosen token's logprob and the top n (descending, lower id first), from lse = log-sum-exp of the row.
__device__ inline void write_logprobs(const Row& r, int32_t n, int32_t token, double lse, SampleRowResult& out,
                                      SampleShared& sh) {
  n = n < r.n ? n : r.n;
  if (threadIdx.x == 0) {
    out.logprob = static_cast<float>(static_cast<double>(r.at(token)) - lse);
    out.n_top = n;
    sh.n_top = 0;
  }
  if (n <= 0) return;
  const auto rank = [](int32_t i, float l) { return rank_key(l, i); };
  const auto all = [](int32_t, float) { return true; };
  const auto one = [](int32_t, float) { return 1.0; };
  const uint64_t thr = radix_select(r, rank, all, one, static_cast<double>(n), true, 60, sh).key;
  r.each([&](int32_t i, float l) {
    const uint64_t k = rank_key(l, i);
    if (k >= thr) sh.top_keys[atomicAdd(&sh.n_top, 1)] = k;
  });
  __syncthreads();
  if (threadIdx.x != 0) return;
  for (int a = 1; a < n; ++a)  // insertion sort, descending
    for (int b = a; b > 0 && sh.top_keys[b] > sh.top_keys[b - 1]; --b) {
      const uint64_t t = sh.top_keys[b];
      sh.top_keys[b] = sh.top_keys[b - 1], sh.top_keys[b - 1] = t;
    }
  for (int a = 0; a < n; ++a) {
    const int32_t id = key_token(sh.top_keys[a]);
    out.top_ids[a] = id;
    out.top_logprobs[a] = static_cast<float>(static_cast<double>(r.at(id)) - lse);
  }
}

}  // namespace dsv4::cuda::sampling_detail

namespace dsv4::cuda {

// grid [n_rows], block kSampleThreads: one CTA per row.
__global__ void __launch_bounds__(sampling_detail::kSampleThreads) sample_kernel(const __grid_constant__ SampleParams prm) {
  grid_dependency_sync();
  using namespace sampling_detail;
  __shared__ SampleShared sh;
  const SampleRowParams p = prm.rows[blockIdx.x];
  float* x = prm.logits + p.logits_row * static_cast<int64_t>(prm.vocab);
  apply_edits(x, p, prm.edits);
  Row r{x, prm.vocab, p.inv_temperature, p.greedy == 0, 0.0};
  const RowScan scan = scan_row(r, sh);
  SampleRowResult& out = prm.results[blockIdx.x];
  if (scan_failed(scan, out)) return;
  const float lmax = order_value(static_cast<uint32_t>(scan.max_key >> 32));
  r.lmax = lmax;
  const double total0 = (!p.greedy || p.n_logprobs >= 0) ? row_weight(r, sh) : 0.0;
  const int32_t token = p.greedy ? key_token(scan.max_key) : sample_row_token(r, p, scan.n_finite, total0, sh);
  if (threadIdx.x == 0) out.token = token, out.error = kSampleOk, out.n_top = 0;
  if (p.n_logprobs >= 0) write_logprobs(r, p.n_logprobs, token, static_cast<double>(lmax) + log(total0), out, sh);
}

// grid [n_rows · kGreedyCtas], clusters of kGreedyCtas CTAs: the batch's rows all greedy without logprobs (the
// host says so: SampleParams::greedy_only). CTA c of row r's cluster applies the edits of its chunk of the row
// (vocab / kGreedyCtas tokens, rounded up to 4) and scans it; CTA 0 combines the chunks' max keys, NaN flags and
// finite counts through distributed shared memory: the same token and errors as sample_kernel (the max over the
// row does not depend on the split), with the row read by kGreedyCtas SMs instead of one.
__global__ void __cluster_dims__(sampling_detail::kGreedyCtas, 1, 1)
    __launch_bounds__(sampling_detail::kSampleThreads) sample_greedy_kernel(const __grid_constant__ SampleParams prm) {
  grid_dependency_sync();
  using namespace sampling_detail;
  namespace cg = cooperative_groups;
  __shared__ SampleShared sh;
  __shared__ RowScan part;
  cg::cluster_group cluster = cg::this_cluster();
  const int chunk = static_cast<int>(cluster.block_rank());
  const int row = static_cast<int>(blockIdx.x) / kGreedyCtas;
  const SampleRowParams p = prm.rows[row];
  float* x = prm.logits + p.logits_row * static_cast<int64_t>(prm.vocab);
  const int32_t len = ((prm.vocab + kGreedyCtas - 1) / kGreedyCtas + 3) & ~3;
  const int32_t c0 = min(prm.vocab, chunk * len), c1 = min(prm.vocab, c0 + len);
  apply_edits(x, p, prm.edits, c0, c1);
  const RowScan scan = scan_row(Row{x + c0, c1 - c0, 1.0f, false, 0.0}, sh, c0);
  if (threadIdx.x == 0) part = scan;
  cluster.sync();
  if (chunk == 0 && threadIdx.x == 0) {
    RowScan all{0, false, 0};
    for (int c = 0; c < kGreedyCtas; ++c) {
      const RowScan s = *cluster.map_shared_rank(&part, c);
      all.max_key = s.max_key > all.max_key ? s.max_key : all.max_key;
      all.bad |= s.bad;
      all.n_finite += s.n_finite;
    }
    SampleRowResult& out = prm.results[row];
    if (!scan_failed(all, out)) out.token = key_token(all.max_key), out.error = kSampleOk, out.n_top = 0;
  }
  cluster.sync();  // every chunk's part stays in place until CTA 0 has read it
}

}  // namespace dsv4::cuda
