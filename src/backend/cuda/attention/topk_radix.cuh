// Indexer top-k of long rows (more than one kTopkSegment segment) as a multi-CTA radix select over the whole row,
// instead of a top-k per segment and merges of their candidates (at 1M context, B=1: 32 segment CTAs, then 4 + 1
// merge CTAs each sorting thousands of candidates; ~70 us on the H200, run 26).
// Scores become order keys (larger score -> larger key; indexer_detail::order_key). CTA (chunk c, row t) holds
// the kTopkRadixChunk keys of its chunk in registers (4 per thread) through the passes:
//   pass 1: histogram of bits 31..21 (shared memory, warp-aggregated atomics, then added to the row's global one);
//           rows of one segment run topk_segment_cta instead (their selection in one CTA, as before);
//   pass 2: every CTA finds digit d1 holding the top_k-th largest key (scan of the row's pass-1 histogram), then
//           histograms bits 20..10 of its keys whose bits 31..21 equal d1;
//   pass 3: digit d2 the same way; histogram of bits 9..0 of the keys matching d1 d2;
//   collect: the threshold key thr (d1 d2 d3) and need, the number of keys equal to thr that are selected (the
//           lowest indices, the tie rule); keys above thr (top_k - need of them) go to the row's list through a
//           global counter (any order), each chunk's first min(need, count) keys equal to thr to its own tie
//           list in ascending index order with its count;
//   final:  one CTA per row: the keys above thr plus the first `need` ties in chunk order, sorted by (score
//           descending, index ascending) in shared memory, as the row's selection.
// The result is the exact top-k with the reference's tie rule (the same as topk_segment / merge kernels).
// topk_radix_fused_kernel runs all of it in one launch: the CTAs of a row meet on a barrier word between the
// passes, so the grid must be resident at once (the launcher checks the occupancy). With bf16 scores
// (p.bf16_scores) it skips pass 3: the low 16 bits of a bf16 value's order key are fixed by its sign, so the keys
// of pass 2's digit are all equal and that digit already gives the threshold and the ties to keep. Each pass is a few dependent
// instructions per key and warp (ncu, run 48: 17.7 cycles per issued instruction), so chunks are small (2048
// keys: 128 CTAs per 1M-context row) and the passes run wide. The separate kernels (topk_radix_pass_kernel<1..3>,
// _collect_, _final_) serve grids too large to be resident; there each CTA of passes 2, 3 and collect re-derives
// the digit from the previous histogram and its chunk-0 CTA stores the (prefix, need) pair the next pass reads
// (distinct state words per pass: no CTA reads a word another CTA of the same grid writes).
// The launcher zeroes the row areas (histograms, counters, barrier word) first.
#pragma once
#include <cstdint>

#include "backend/cuda/attention/indexer.cuh"
#include "backend/cuda/common/warp.cuh"

namespace dsv4::cuda {
namespace radix_detail {

// Word offsets in a row's radix area (topk_radix_words).
inline constexpr int kHist1 = 0;
inline constexpr int kHist2 = kTopkRadixBins;
inline constexpr int kHist3 = 2 * kTopkRadixBins;
inline constexpr int kState = kTopkRadixHist;  // [0, 1] after pass 1, [2, 3] after pass 2, [4, 5] thr / need,
                                               // [6] count of keys above thr
inline constexpr int kEqCount = kTopkRadixHist + kTopkRadixState;  // [max chunks] ties kept per chunk
inline constexpr int kPerThread = kTopkRadixChunk / kTopkThreads;  // keys of a chunk per thread
static_assert(kTopkRadixChunk % kTopkThreads == 0 && kTopkSegment % kTopkRadixChunk == 0 &&
              kTopkRadixBins <= 4 * kTopkThreads &&
              kTopkRadixBins % kTopkThreads == 0 && kTopkRadixBins3 % kTopkThreads == 0);

template <int kPass>
struct Digit;
template <>
struct Digit<1> {
  static constexpr int kShift = 21, kBins = kTopkRadixBins, kHist = kHist1;
};
template <>
struct Digit<2> {
  static constexpr int kShift = 10, kBins = kTopkRadixBins, kHist = kHist2;
};
template <>
struct Digit<3> {
  static constexpr int kShift = 0, kBins = kTopkRadixBins3, kHist = kHist3;
};

__device__ __forceinline__ int row_segments(int n) { return max(1, (n + kTopkSegment - 1) / kTopkSegment); }
__device__ __forceinline__ int row_chunks(int n) { return (n + kTopkRadixChunk - 1) / kTopkRadixChunk; }

// A row area's lists (topk_radix_words): keys above the threshold [top_k], their indices [top_k], then each
// chunk's kept ties [max chunks][top_k]; max chunks = the launch's n_seg x kTopkSegment / kTopkRadixChunk.
__device__ __forceinline__ int max_chunks(const TopkSegParams& p) { return p.n_seg * (kTopkSegment / kTopkRadixChunk); }
__device__ __forceinline__ uint32_t* gt_keys(const TopkSegParams& p, uint32_t* row) {
  return row + kEqCount + max_chunks(p);
}
__device__ __forceinline__ int32_t* chunk_ties(const TopkSegParams& p, uint32_t* row, int c) {
  return reinterpret_cast<int32_t*>(gt_keys(p, row) + 2 * p.top_k) + int64_t(c) * p.top_k;
}

// Block-wide (every thread calls, every thread gets the result): the digit d of hist[0, kBins) in which the
// need-th largest entry lies (digits descending) and the need left within d. sh: kTopkThreads / 32 + 2 words.
template <int kBins>
__device__ uint2 pick_digit(const uint32_t* hist, uint32_t need, uint32_t* sh) {
  constexpr int kWarps = kTopkThreads / 32, kPer = kBins / kTopkThreads;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  uint32_t c[kPer], sum = 0;
#pragma unroll
  for (int j = 0; j < kPer; ++j) sum += (c[j] = __ldcg(hist + kBins - 1 - (tid * kPer + j)));
  uint32_t incl = warp_inclusive_sum(sum);
  if (lane == 31) sh[warp] = incl;
  if (tid == 0) {  // defaults if the histogram holds fewer than need entries (cannot happen for valid rows)
    sh[kWarps] = 0;
    sh[kWarps + 1] = 1;
  }
  __syncthreads();
  for (int w = 0; w < warp; ++w) incl += sh[w];
  const uint32_t excl = incl - sum;
  if (excl < need && incl >= need) {
    uint32_t cum = excl;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      if (cum + c[j] >= need) {
        sh[kWarps] = static_cast<uint32_t>(kBins - 1 - (tid * kPer + j));
        sh[kWarps + 1] = need - cum;
        break;
      }
      cum += c[j];
    }
  }
  __syncthreads();
  const uint2 r = make_uint2(sh[kWarps], sh[kWarps + 1]);
  __syncthreads();
  return r;
}

// Adds the in-lanes' digits to hist (one shared atomic per distinct digit per warp). All lanes call it.
__device__ __forceinline__ void hist_add(uint32_t* hist, bool in, uint32_t digit) {
  const uint32_t active = __ballot_sync(0xffffffffu, in);
  if (in) {
    const uint32_t peers = __match_any_sync(active, digit);
    if (static_cast<int>(threadIdx.x & 31) == __ffs(peers) - 1)
      atomicAdd(&hist[digit], static_cast<uint32_t>(__popc(peers)));
  }
}

// The order keys of this CTA's segment: u[j] = key of segment position j·kTopkThreads + tid (valid below len).
__device__ __forceinline__ void load_keys(const TopkSegParams& p, int t, int s0, int len, uint32_t (&u)[kPerThread]) {
  const float* __restrict__ row = p.scores + int64_t(t) * p.ld + s0;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int i = j * kTopkThreads + static_cast<int>(threadIdx.x);
    u[j] = i < len ? indexer_detail::order_key(row[i]) : 0u;
  }
}


// Arrival on a row's barrier word by thread 0 after a CTA barrier: a release add at GPU scope, which publishes the
// CTA's global writes ordered before it by the barrier (the pattern of CUTLASS's generic barrier), instead of a
// sequentially consistent __threadfence() and a relaxed add (run 86: the fence was the arrive-only path's top stall).
__device__ __forceinline__ void row_arrive(uint32_t* word) {
  asm volatile("red.release.gpu.global.add.u32 [%0], 1;\n" ::"l"(word) : "memory");
}

// Arrival on a row's barrier word, then a wait for `target` arrivals (every CTA of the row resident: fused path):
// the acquire load by thread 0 and the CTA barrier after it order the CTA's later reads after the other CTAs'
// released writes.
__device__ __forceinline__ void row_barrier(uint32_t* word, uint32_t target) {
  __syncthreads();
  if (threadIdx.x == 0) {
    row_arrive(word);
    uint32_t seen = 0;
    while (true) {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(seen) : "l"(word) : "memory");
      if (seen >= target) break;
      __nanosleep(32);  // fewer polls on the word the other CTAs add to
    }
  }
  __syncthreads();
}

// Histogram of this thread's keys into the row's global histogram g (through the shared one, hist).
template <int kPass>
__device__ __forceinline__ void pass_hist(const uint32_t (&u)[kPerThread], int len, uint32_t prefix, uint32_t* hist,
                                          uint32_t* g) {
  constexpr int kBins = Digit<kPass>::kBins, kShift = Digit<kPass>::kShift;
  const int tid = threadIdx.x;
  for (int i = tid; i < kBins; i += kTopkThreads) hist[i] = 0;
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    bool in = j * kTopkThreads + tid < len;
    if constexpr (kPass > 1) in = in && (u[j] >> Digit<kPass - 1>::kShift) == (prefix >> Digit<kPass - 1>::kShift);
    hist_add(hist, in, (u[j] >> kShift) & (kBins - 1));
  }
  __syncthreads();
  for (int i = tid; i < kBins; i += kTopkThreads)
    if (hist[i]) atomicAdd(&g[i], hist[i]);
}

// Collect of chunk c (see the file comment): keys above thr to the row's list, the first min(need, count) keys
// equal to thr to the chunk's tie list, and the kept tie count.
__device__ __forceinline__ void collect_chunk(const TopkSegParams& p, const uint32_t (&u)[kPerThread], int c, int s0,
                                              int len, uint32_t thr, uint32_t need, uint32_t* row, int* warp_cnt) {
  const int tid = threadIdx.x;
  uint32_t* gt_key = gt_keys(p, row);
  int32_t* gt_idx = reinterpret_cast<int32_t*>(gt_key + p.top_k);
  bool any_eq = false;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int i = j * kTopkThreads + tid;
    if (i >= len) continue;
    if (u[j] > thr) {
      const uint32_t slot = atomicAdd(&row[kState + 6], 1u);
      gt_key[slot] = u[j];
      gt_idx[slot] = s0 + i;
    }
    any_eq = any_eq || u[j] == thr;
  }
  int32_t* eq_out = chunk_ties(p, row, c);
  uint32_t taken = 0;
  if (__syncthreads_count(any_eq) != 0) {
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      if (taken >= need) break;  // uniform: every thread sums the same warp counts
      const int i = j * kTopkThreads + tid;
      const bool eq = i < len && u[j] == thr;
      const uint32_t rank = indexer_detail::ordered_rank<kTopkThreads>(eq, taken, warp_cnt);
      if (eq && rank < need) eq_out[rank] = s0 + i;
    }
  }
  if (tid == 0) row[kEqCount + c] = min(taken, need);
}

// Final selection of a row (one CTA): the keys above thr plus the first `need` ties in chunk order, sorted.
__device__ __forceinline__ void final_row(const TopkSegParams& p, int t, int nch, uint32_t thr, uint32_t need,
                                          uint32_t* row, unsigned long long* cand) {
  const int tid = threadIdx.x, lane = tid & 31;
  const int n_gt = p.top_k - static_cast<int>(need);
  const uint32_t* gt_key = gt_keys(p, row);
  const int32_t* gt_idx = reinterpret_cast<const int32_t*>(gt_key + p.top_k);
  for (int j = tid; j < n_gt; j += kTopkThreads)
    cand[j] = (static_cast<unsigned long long>(~__ldcg(gt_key + j)) << 32) | static_cast<uint32_t>(__ldcg(gt_idx + j));
  // Ties: chunks in order, each its kept count, until `need` are taken. The counts of kTopkThreads chunks at a time
  // are scanned across the block and each warp copies whole chunks (lanes over the chunk's ties), so the chunks'
  // L2 reads overlap. Before (run 86), warp 0 walked the chunks one after another, one dependent L2 read per chunk
  // with ties: at 1M context (128 chunks, bf16 scores tie often) that serial walk was most of the kernel's time.
  __shared__ uint32_t s_excl[kTopkThreads], s_take[kTopkThreads], s_warp[kTopkThreads / 32];
  const int warp = tid >> 5;
  const unsigned long long tie = static_cast<unsigned long long>(~thr) << 32;
  uint32_t base = 0;
  for (int s0 = 0; s0 < nch && base < need; s0 += kTopkThreads) {  // base is block-uniform
    const int s = s0 + tid;
    const uint32_t c = s < nch ? __ldcg(row + kEqCount + s) : 0u;
    const uint32_t incl = warp_inclusive_sum(c);
    if (lane == 31) s_warp[warp] = incl;
    __syncthreads();
    uint32_t before = 0, total = 0;
#pragma unroll
    for (int w = 0; w < kTopkThreads / 32; ++w) {
      const uint32_t v = s_warp[w];
      before += w < warp ? v : 0u;
      total += v;
    }
    const uint32_t el = base + before + incl - c;
    s_excl[tid] = el;
    s_take[tid] = c == 0 || el >= need ? 0u : min(c, need - el);
    __syncthreads();
    for (int j = warp; j < kTopkThreads && s0 + j < nch; j += kTopkThreads / 32) {
      const uint32_t take = s_take[j];
      if (take == 0) continue;
      const int32_t* src = chunk_ties(p, row, s0 + j);
      const uint32_t at = static_cast<uint32_t>(n_gt) + s_excl[j];
      for (uint32_t r = lane; r < take; r += 32) cand[at + r] = tie | static_cast<uint32_t>(__ldcg(src + r));
    }
    base += total;
    __syncthreads();  // s_warp, s_excl and s_take are rewritten by the next group of chunks
  }
  __syncthreads();
  topk_detail::sort_candidates<kTopkThreads>(cand, p.top_k);
  indexer_detail::write_selection(cand, p.top_k, p.top_k, p.out + int64_t(t) * p.top_k);
}

}  // namespace radix_detail

// Fused radix select (grid: segments x rows, kTopkThreads, kTopkSegSmem of dynamic shared memory): all passes
// in one launch, each CTA keeping its segment's keys in registers; the CTAs of a row meet on row barriers
// (state word 8) between passes, so every CTA of the grid must be resident at once (the launcher checks the
// occupancy); the segment-0 CTA then selects the row. Rows of one segment run topk_segment_cta.
__global__ void __launch_bounds__(kTopkThreads) topk_radix_fused_kernel(const __grid_constant__ TopkSegParams p) {
  using namespace radix_detail;
  grid_dependency_sync();
  extern __shared__ __align__(16) unsigned char topk_smem[];
  __shared__ uint32_t hist[kTopkRadixBins];
  __shared__ uint32_t sh[kTopkThreads / 32 + 2];
  __shared__ int warp_cnt[kTopkThreads / 32];
  const int t = blockIdx.y, c = blockIdx.x;
  const int n = p.n_keys[t], nch = row_chunks(n);
  if (row_segments(n) == 1) {
    topk_segment_cta(p, topk_smem);  // CTA 0 of the row; the others return
    return;
  }
  if (c >= nch) return;
  uint32_t* row = p.radix + int64_t(t) * p.radix_ld;
  uint32_t* bar = row + kState + 8;
  const int s0 = c * kTopkRadixChunk, len = min(kTopkRadixChunk, n - s0);
  uint32_t u[kPerThread];
  load_keys(p, t, s0, len, u);
  pass_hist<1>(u, len, 0u, hist, row + kHist1);
  row_barrier(bar, static_cast<uint32_t>(nch));
  uint2 d = pick_digit<kTopkRadixBins>(row + kHist1, static_cast<uint32_t>(p.top_k), sh);
  uint32_t prefix = d.x << Digit<1>::kShift;
  pass_hist<2>(u, len, prefix, hist, row + kHist2);
  row_barrier(bar, 2u * nch);
  d = pick_digit<kTopkRadixBins>(row + kHist2, d.y, sh);
  prefix |= d.x << Digit<2>::kShift;
  uint32_t thr, need = d.y, passes = 2;
  if (p.bf16_scores) {  // the keys of digit d.x are equal: bits 9..0 follow the sign (bit 31: positive)
    thr = prefix | ((prefix >> 31) ? 0u : 0x3FFu);
  } else {
    pass_hist<3>(u, len, prefix, hist, row + kHist3);
    row_barrier(bar, 3u * nch);
    d = pick_digit<kTopkRadixBins3>(row + kHist3, d.y, sh);
    thr = prefix | d.x;
    need = d.y;
    passes = 3;
  }
  collect_chunk(p, u, c, s0, len, thr, need, row, warp_cnt);
  if (c != 0) {  // arrive only: chunk 0's CTA selects the row
    __syncthreads();
    if (threadIdx.x == 0) row_arrive(bar);
    return;
  }
  row_barrier(bar, (passes + 1) * nch);
  final_row(p, t, nch, thr, need, row, indexer_detail::topk_scratch(topk_smem).cand);
}

// Histogram passes 1-3 (grid: segments x rows, kTopkThreads). Pass 1 needs kTopkSegSmem of dynamic shared memory.
template <int kPass>
__global__ void __launch_bounds__(kTopkThreads) topk_radix_pass_kernel(const __grid_constant__ TopkSegParams p) {
  using namespace radix_detail;
  grid_dependency_sync();
  extern __shared__ __align__(16) unsigned char topk_smem[];
  __shared__ uint32_t hist[Digit<kPass>::kBins];
  __shared__ uint32_t sh[kTopkThreads / 32 + 2];
  const int t = blockIdx.y, c = blockIdx.x, tid = threadIdx.x;
  const int n = p.n_keys[t];
  if (row_segments(n) == 1) {
    if constexpr (kPass == 1) topk_segment_cta(p, topk_smem);  // CTA 0 of the row; the others return
    return;
  }
  if (c >= row_chunks(n)) return;
  uint32_t* row = p.radix + int64_t(t) * p.radix_ld;
  uint32_t prefix = 0;  // the key bits above this pass's digit (those of the top_k-th largest key)
  if constexpr (kPass > 1) {
    constexpr int kPrev = kPass - 1, kSlot = 2 * (kPass - 2);
    const uint32_t prev_prefix = kPass == 2 ? 0u : row[kState + 0];
    const uint32_t prev_need = kPass == 2 ? static_cast<uint32_t>(p.top_k) : row[kState + 1];
    const uint2 d = pick_digit<Digit<kPrev>::kBins>(row + Digit<kPrev>::kHist, prev_need, sh);
    prefix = prev_prefix | (d.x << Digit<kPrev>::kShift);
    if (c == 0 && tid == 0) {
      row[kState + kSlot] = prefix;
      row[kState + kSlot + 1] = d.y;
    }
  }
  const int s0 = c * kTopkRadixChunk, len = min(kTopkRadixChunk, n - s0);
  uint32_t u[kPerThread];
  load_keys(p, t, s0, len, u);
  pass_hist<kPass>(u, len, prefix, hist, row + Digit<kPass>::kHist);
}

// Collect (grid: segments x rows, kTopkThreads).
__global__ void __launch_bounds__(kTopkThreads) topk_radix_collect_kernel(const __grid_constant__ TopkSegParams p) {
  using namespace radix_detail;
  grid_dependency_sync();
  constexpr int kWarps = kTopkThreads / 32;
  __shared__ uint32_t sh[kWarps + 2];
  __shared__ int warp_cnt[kWarps];
  const int t = blockIdx.y, c = blockIdx.x, tid = threadIdx.x;
  const int n = p.n_keys[t];
  if (row_segments(n) == 1 || c >= row_chunks(n)) return;
  uint32_t* row = p.radix + int64_t(t) * p.radix_ld;
  const uint2 d = pick_digit<kTopkRadixBins3>(row + kHist3, row[kState + 3], sh);
  const uint32_t thr = row[kState + 2] | d.x, need = d.y;
  if (c == 0 && tid == 0) {
    row[kState + 4] = thr;
    row[kState + 5] = need;
  }
  const int s0 = c * kTopkRadixChunk, len = min(kTopkRadixChunk, n - s0);
  uint32_t u[kPerThread];
  load_keys(p, t, s0, len, u);
  collect_chunk(p, u, c, s0, len, thr, need, row, warp_cnt);
}

// Final (grid: rows, kTopkThreads, kTopkSegSmem of dynamic shared memory).
__global__ void __launch_bounds__(kTopkThreads) topk_radix_final_kernel(const __grid_constant__ TopkSegParams p) {
  using namespace radix_detail;
  grid_dependency_sync();
  extern __shared__ __align__(16) unsigned char topk_smem[];
  const indexer_detail::TopkScratch sc = indexer_detail::topk_scratch(topk_smem);
  const int t = blockIdx.x;
  const int n = p.n_keys[t];
  if (row_segments(n) == 1) return;
  uint32_t* row = p.radix + int64_t(t) * p.radix_ld;
  final_row(p, t, row_chunks(n), __ldcg(row + kState + 4), __ldcg(row + kState + 5), row, sc.cand);
}

}  // namespace dsv4::cuda
