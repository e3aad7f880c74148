// CudaOps attention family vs CpuOps (src/backend/cpu/cpu_attention.cpp and cpu_elementwise.cpp are the spec),
// both numerics (official: Bf16 acts, FP8 KV, FP4 indexer; exact_f32) on fresh random inputs with NaN-poisoned
// outputs:
//  * sparse_attention (window row pointers per query + compressed entries through row blocks: CSA selections
//    from a device i32 IndexTensor, or HCA all of the first n entries): tiny (4 heads x 128, ragged key lists),
//    the generic kernel (dim 96),
//    Flash decode (64 heads x 512, 128 window + 512 compressed keys; batch 1 = split-K, batch 64), the wide
//    (64 heads per CTA) kernel on ragged lists, two head groups and without split, and the previous 16-head
//    kernel (DSV4_SPARSE_ATTN_NARROW=1, "narrow" rows) at the Flash decode shapes for before/after; HCA rows
//    (ragged counts) and several sequences per call; paged rows (blocks of 64 / 2 rows in shuffled slots);
//    split-K merged in thread-block clusters (default) vs the combine kernel ("combine" rows, attn_cluster off;
//    "cluster vs combine" rows require bitwise-equal outputs), B=1 cluster sizes forced ("split=N" rows);
//    compressed entries and window rows as packed Fp8Kv rows ("fp8-rows": the engine's store with the FP8 KV cache;
//    each also run over f32 rows of the same values, bitwise: "fp8 rows vs f32"; "f32-window": f32 window rows
//    beside Fp8Kv entries; "swa": window rows only); the 64-head kernel runs on wgmma by default
//    (from one query on), the mma.sync kernels in the "mma-sync" rows (also the split-K cluster rows); on the
//    fp8-rows cases the wgmma variants bitwise against the default ("wg3", "combine preload", "2wg heads N": the
//    two-warpgroup kernel everywhere with N heads per CTA);
//  * indexer_topk: tiny and Flash (64 heads x 128, top-512) rows, one or several sequences per call (own key
//    rows as row blocks, contiguous or paged in blocks of 64), rows of 1..32 top-k segments (8192 keys each: the
//    radix select by default, the segment merges with topk_radix off, "merge-topk" rows), rows with ties at the
//    k-th score in every segment ("key-period") and all-zero scores ("zero-w"), also in one short row of 1500
//    keys; "sort_rows vs bitonic" rows: rows of top_k < keys <= kTopkMaxK by the block radix sort (the default)
//    against block_topk's bitonic sort, bitwise; keys as packed Mxfp4 rows
//    ("mxfp4-rows": the engine's FP4 indexer store, read by the tensor-core kernel or decoded for the others), and
//    the previous kernels (DSV4_INDEXER_LEGACY=1); the index lists must match exactly (the
//    kernels reproduce the reference's score arithmetic bit for bit), including rows with n_keys <= top_k: the
//    device i32 [T, top_k] selections are poisoned before the run and compared slot by slot (-1 padding too);
//  * pack_rows_mxfp4 and pack_rows_fp8kv (bitwise vs core fp4_pack / fp8kv_pack_row, scattered destination rows,
//    NaN / inf / zero blocks);
//  * softmax_pool, copy_rows (with a repeated destination: the later copy wins), rope (forward and inverse,
//    positions up to 1M), kv_round (Fp8 / Bf16, bitwise), indexer_round (Fp4 / Bf16, bitwise), finish_rows
//    (vs the CPU op sequence, and bitwise vs the CUDA op sequence).
// Timing rows: sparse_attention Flash decode batch 1 and 64 (wide and narrow), 256 and a 2048-query prefill;
// indexer_topk Flash decode at 4K context batch 1 and 64 (one call), 1M context (262144 keys, one query,
// top-512) and a 1024-query prefill chunk, each also with the previous kernels ("legacy"); paged 1M-context rows: indexer_topk
// over 4096 blocks of 64 keys, HCA sparse_attention over 8192 entries in blocks of 2, CSA decode batch 64.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/attention/plan.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/ops/context.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/dtype.h"
#include "core/index_tensor.h"
#include "core/numerics.h"
#include "core/row_blocks.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

using backend::AttentionQuery;
using backend::CpuOps;
using backend::CudaOps;
using backend::Numerics;

const char* num_name(const Numerics& n) { return n.act == backend::ActDtype::Bf16 ? "official" : "f32"; }
bool is_bf16(const Numerics& n) { return n.act == backend::ActDtype::Bf16; }

// Normal values (sigma), rounded to bf16 when `bf16`.
std::vector<float> values(Env& env, size_t n, float sigma, bool bf16) {
  if (bf16) return random_bf16_values(env.rng, n, sigma);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(env.rng);
  return v;
}

std::vector<float> download(const Tensor& t) { return t.to(Device::Host).vec(); }

cudaStream_t ops_stream() { return cuda::CudaContext::get().stream(); }

// Forces the previous 16-head tensor-core kernel for its lifetime.
struct NarrowAttention {
  explicit NarrowAttention(bool on) : on_(on) {
    if (on_) cuda::kernel_paths().sparse_attn_wide = false;
  }
  ~NarrowAttention() {
    if (on_) cuda::kernel_paths().sparse_attn_wide = true;
  }
  bool on_;
};

// Entry rows of n_seq sequences as row blocks inside one pool tensor: sequence j's n[j] entries in blocks of
// rpb rows (rpb == 0: one block holding all of them, the contiguous SequenceState), the blocks of all sequences
// placed in shuffled slots after the pool's first `first` rows (the paged store: pages anywhere in the pool).
struct PoolLayout {
  std::vector<std::vector<int64_t>> block_row;  // [seq][block] first pool row of the block
  std::vector<int64_t> rpb;                     // [seq] rows per block
  int64_t rows = 0;                             // pool rows in all
};

PoolLayout make_layout(Env& env, const std::vector<int64_t>& n, int64_t rpb, int64_t first) {
  PoolLayout L;
  std::vector<std::pair<size_t, int64_t>> slots;  // (seq, rows) of each block, in slot order after the shuffle
  for (size_t j = 0; j < n.size(); ++j) {
    const int64_t r = rpb > 0 ? rpb : std::max<int64_t>(1, n[j]);
    L.rpb.push_back(r);
    L.block_row.emplace_back();
    for (int64_t k = 0; k * r < std::max<int64_t>(1, n[j]); ++k) slots.push_back({j, r});
  }
  std::vector<size_t> order(slots.size());
  std::iota(order.begin(), order.end(), size_t(0));
  if (rpb > 0) std::shuffle(order.begin(), order.end(), env.rng);
  L.rows = first;
  for (size_t o : order) {
    L.block_row[slots[o].first].push_back(L.rows);
    L.rows += slots[o].second;
  }
  if (rpb > 0)  // block k of a sequence in any slot
    for (auto& br : L.block_row) std::shuffle(br.begin(), br.end(), env.rng);
  return L;
}

RowBlocks blocks_of(const PoolLayout& L, size_t j, const Tensor& pool) {
  RowBlocks b;
  b.rows_per_block = L.rpb[j];
  b.stride = pool.row_size();
  for (int64_t r : L.block_row[j]) b.blocks.push_back(pool.row(r));
  return b;
}

// Compressed-entry layout of an attention case: sequences in one call, paged blocks, HCA (all of the first
// n entries) or CSA (selected entries); then the split-K merge path.
struct AttnLayout {
  int64_t n_seq = 1;
  int64_t rows_per_block = 0;  // 0: one contiguous block per sequence
  bool hca = false;
  bool combine = false;        // attn_cluster off: split-K partials merged by the combine kernel ("combine" rows)
  bool vs_combine = false;     // also run with attn_cluster off: the cluster merge must match it bitwise
  int64_t cluster_split = 0;   // > 0: kernel_paths().attn_cluster_split for this case ("split=N" rows)
  bool mma_sync = false;       // the 64-head kernel on mma.sync (attn_wgmma off; "mma-sync" rows, before/after)
  bool fp8_rows = false;       // compressed entries as Fp8Kv rows (the paged store of the official numerics):
                               // also run over f32 rows holding the same values, bitwise ("fp8 rows vs f32");
                               // on the wgmma kernel also with its raw rows by 16-byte cp.asyncs, bitwise
                               // ("wgmma bulk vs cp.async"); window rows Fp8Kv rows too (the engine's ring)
  bool f32_window = false;     // with fp8_rows: window rows stay f32 rows beside the Fp8Kv entries ("f32-window")
  bool swa = false;            // no entries at all (an SWA layer: window rows only; compressed = 0)
};

// The rope width of an Fp8Kv test row of dim values (dim - rope a multiple of 64).
int64_t kv_rope(int64_t d) { return d % 64 == 0 ? 64 : d % 64; }

// narrow: run the previous 16-head tensor-core kernel instead of the wide (64-head) one. Each query has a
// window of host row pointers then `compressed` entries of its sequence (n_seq sequences share the queries in
// order): HCA the first ones (ragged counts for the untimed cases), CSA a shuffled selection out of
// 2 x compressed entries (i32 [n_q, compressed + 3], -1 padded) uploaded as a device IndexTensor.
void check_sparse_attention(Env& env, const Numerics& num, int64_t n_q, int64_t H, int64_t d, int64_t window,
                            int64_t compressed, bool timed, bool check_ref = true, bool narrow = false,
                            AttnLayout lay = {}) {
  const NarrowAttention narrow_env(narrow);
  cuda::KernelPaths& paths = cuda::kernel_paths();
  const PathSwitch<bool> cluster_env(paths.attn_cluster, paths.attn_cluster && !lay.combine);
  // The split-K cluster rows ("combine", "cluster vs combine", "split=N") exercise the mma.sync kernels' clusters:
  // the wgmma kernel (no clusters) is off for them.
  const bool cluster_rows = lay.combine || lay.vs_combine || lay.cluster_split > 0;
  const PathSwitch<bool> wgmma_env(paths.attn_wgmma, paths.attn_wgmma && !lay.mma_sync && !cluster_rows);
  const PathSwitch<int64_t> split_env(paths.attn_cluster_split,
                                      lay.cluster_split > 0 ? lay.cluster_split : paths.attn_cluster_split);
  const bool bf = is_bf16(num);
  const int64_t n_entries = lay.hca ? compressed : std::max<int64_t>(compressed * 2, 1);
  const std::vector<int64_t> seq_entries(static_cast<size_t>(lay.n_seq), n_entries);
  const PoolLayout L = make_layout(env, seq_entries, lay.rows_per_block, n_q * window);
  const std::string detail = fmt("%s nq=%lld H=%lld d=%lld keys<=%lld%s%s seqs=%lld%s", num_name(num), (long long)n_q,
                                 (long long)H, (long long)d, (long long)(window + compressed),
                                 narrow ? " narrow" : "", lay.hca ? " hca" : " csa", (long long)lay.n_seq,
                                 lay.rows_per_block ? fmt(" paged(%lld)", (long long)lay.rows_per_block).c_str() : "") +
                            (lay.combine ? " combine" : "") +
                            (lay.cluster_split > 0 ? fmt(" split=%lld", (long long)lay.cluster_split) : std::string()) +
                            (paths.attn_inline_rows ? "" : " resolve-kernel") + (lay.fp8_rows ? " fp8-rows" : "") +
                            (lay.fp8_rows && lay.f32_window ? " f32-window" : "") + (lay.swa ? " swa" : "") +
                            (paths.attn_wgmma ? "" : " mma-sync");
  HostTensor pool = host_tensor({L.rows, d}, values(env, size_t(L.rows * d), 1.0f, bf));
  // Fp8Kv entries: every pool row FP8-KV-rounded (bf16, then the nope part FP8 fake-quantized in blocks of 64),
  // the entry rows (and the window rows, fp8_win) also packed into ppool (same slots), which the calls read
  // instead of pool.
  const int64_t rope = kv_rope(d), kv_words = fp8kv_row_bytes(d, rope) / 4;
  const bool fp8_win = lay.fp8_rows && !lay.f32_window;
  HostTensor ppool;
  if (lay.fp8_rows) {
    for (float& v : pool.vec()) v = round_bf16(v);
    for (int64_t r = 0; r < L.rows; ++r) fp8_fake_quant(pool.row(r), size_t(d - rope), 64);
    ppool = host_tensor({L.rows, kv_words}, std::vector<float>(size_t(L.rows * kv_words), 0.0f));
    for (int64_t r = fp8_win ? 0 : n_q * window; r < L.rows; ++r)
      fp8kv_pack_row(pool.row(r), size_t(d), size_t(rope), ppool.row(r));
  }
  const HostTensor& epool = lay.fp8_rows ? ppool : pool;
  auto entries_of = [&](size_t j, const auto& t) {
    if (lay.swa) return RowBlocks{};
    RowBlocks b = blocks_of(L, j, t);
    if (lay.fp8_rows) {
      b.format = RowFormat::Fp8Kv;
      b.rope_dim = rope;
    }
    return b;
  };
  HostTensor q = host_tensor({n_q, H, d}, values(env, size_t(n_q * H * d), 1.0f, bf));
  std::vector<float> sink_v = values(env, size_t(H), 1.0f, false);
  weights::Weight sink;
  sink.name = "attn_sink";
  sink.shape = {H};
  sink.data = sink_v.data();
  const Tensor dpool = pool.to(Device::Cuda), dq = q.to(Device::Cuda);
  const Tensor depool = lay.fp8_rows ? epool.to(Device::Cuda) : Tensor();
  // Chunks: queries split evenly over the sequences, in order (dseqs_f32: the f32 rows of the same values).
  std::vector<backend::SeqEntries> hseqs, dseqs, dseqs_f32;
  for (int64_t j = 0; j < lay.n_seq; ++j) {
    const int64_t r0 = n_q * j / lay.n_seq, r1 = n_q * (j + 1) / lay.n_seq;
    hseqs.push_back({.row_begin = r0, .n_rows = r1 - r0, .entries = entries_of(size_t(j), epool)});
    dseqs.push_back({.row_begin = r0, .n_rows = r1 - r0,
                     .entries = lay.fp8_rows ? entries_of(size_t(j), depool) : blocks_of(L, size_t(j), dpool)});
    dseqs_f32.push_back({.row_begin = r0, .n_rows = r1 - r0,
                         .entries = lay.swa ? RowBlocks{} : blocks_of(L, size_t(j), dpool)});
  }
  const int64_t top_k = compressed + 3;
  IndexTensor hsel(Device::Host, n_q, top_k);
  std::fill(hsel.data(), hsel.data() + hsel.numel(), -1);
  std::vector<std::vector<const float*>> hk(static_cast<size_t>(n_q)), dk(static_cast<size_t>(n_q)),
      dk_f32(static_cast<size_t>(n_q));
  std::vector<AttentionQuery> hq(static_cast<size_t>(n_q)), dqs(static_cast<size_t>(n_q)),
      dqs_f32(static_cast<size_t>(n_q));
  std::vector<int64_t> perm(static_cast<size_t>(n_entries));
  for (int64_t i = 0; i < n_q; ++i) {
    const int64_t w = window > 8 && !timed ? 1 + (i * 37) % window : window;
    for (int64_t j = 0; j < w; ++j) {
      hk[size_t(i)].push_back((fp8_win ? epool : pool).row(i * window + j));
      dk[size_t(i)].push_back((fp8_win ? depool : dpool).row(i * window + j));
      dk_f32[size_t(i)].push_back(dpool.row(i * window + j));
    }
    int64_t nc = compressed;
    if (lay.hca && !timed && compressed > 1) nc = (i * 13) % (compressed + 1);  // 0..compressed entries
    if (!lay.hca) {
      std::iota(perm.begin(), perm.end(), int64_t(0));
      std::shuffle(perm.begin(), perm.end(), env.rng);
      for (int64_t j = 0; j < nc; ++j) hsel.row(i)[j] = static_cast<int32_t>(perm[size_t(j)]);
    }
    hq[size_t(i)] = {q.row(i), hk[size_t(i)], nc};
    dqs[size_t(i)] = {dq.row(i), dk[size_t(i)], nc};
    dqs_f32[size_t(i)] = {dq.row(i), dk_f32[size_t(i)], nc};
  }
  const IndexTensor dsel = hsel.to(Device::Cuda);
  const RowFormat wf = fp8_win ? RowFormat::Fp8Kv : RowFormat::F32;
  const int64_t wrope = fp8_win ? rope : 0;
  const IndexTensor* hs = lay.hca || lay.swa ? nullptr : &hsel;
  const IndexTensor* ds = lay.hca || lay.swa ? nullptr : &dsel;
  const backend::AttentionKeys hkeys{
      .queries = hq, .seqs = hseqs, .selected = hs, .window_format = wf, .window_rope_dim = wrope};
  const backend::AttentionKeys dkeys{
      .queries = dqs, .seqs = dseqs, .selected = ds, .window_format = wf, .window_rope_dim = wrope};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  CudaOps gpu(num);
  Tensor out(Device::Cuda, {n_q, H, d});
  out.resize({n_q, H, d}, NAN);
  gpu.sparse_attention(dkeys, H, d, sink, scale, out);
  if (check_ref) {
    CpuOps cpu(num);
    HostTensor ref;
    cpu.sparse_attention(hkeys, H, d, sink, scale, ref);
    const std::vector<float> got = download(out);
    env.report.check("sparse_attention", detail, compare(got.data(), ref.data(), got.size()),
                     bf ? kTolAttentionBf16 : 1e-5);
    if (lay.fp8_rows && bf && paths.attn_wgmma && d == 512 && H % 64 == 0) {
      // the wgmma kernels with three key splits forced (attn_wide_split, the sweep switch) against the reference:
      // another split count sums in another order, so the recipe's tolerance, not bitwise
      Tensor alt(Device::Cuda, {n_q, H, d});
      alt.resize({n_q, H, d}, NAN);
      {
        const PathSwitch<int64_t> three(paths.attn_wide_split, 3);
        gpu.sparse_attention(dkeys, H, d, sink, scale, alt);
      }
      const std::vector<float> got3 = download(alt);
      env.report.check("sparse_attention wgmma 3 splits forced", detail,
                       compare(got3.data(), ref.data(), got3.size()), kTolAttentionBf16);
    }
  }
  // The call again over `keys` with kernel path `path` (if any) set to `value`: bitwise equal to `out`.
  auto bitwise_as = [&](const char* name, const backend::AttentionKeys& keys, auto& flag, auto value) {
    Tensor ref(Device::Cuda, {n_q, H, d});
    ref.resize({n_q, H, d}, NAN);
    {
      const PathSwitch<std::decay_t<decltype(flag)>> sw(flag, value);
      gpu.sparse_attention(keys, H, d, sink, scale, ref);
    }
    const std::vector<float> got = download(out), want = download(ref);
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) bad += std::memcmp(&got[i], &want[i], 4) != 0;
    env.report.exact(name, detail, got.size(), bad);
  };
  auto bitwise = [&](const char* name, const backend::AttentionKeys& keys, bool* path, bool value) {
    bool unused = false;
    bitwise_as(name, keys, path ? *path : unused, value);
  };
  if (lay.fp8_rows) {  // the same values as f32 rows: the kernels decode to the same bf16 (or f32) keys
    const backend::AttentionKeys fkeys{.queries = dqs_f32, .seqs = dseqs_f32, .selected = ds};
    bitwise("sparse_attention fp8 rows vs f32", fkeys, nullptr, false);
  }
  if (lay.fp8_rows && bf && paths.attn_wgmma && d == 512 && H % 64 == 0) {  // raw rows by 16-byte cp.asyncs
    bitwise("sparse_attention wgmma bulk vs cp.async", dkeys, &paths.attn_bulk, false);
    // three warpgroups by role (attn_wg3 = 1: every CTA) and two (0) against the default (wg3 from 2 tiles per
    // CTA): the same arithmetic
    bitwise_as("sparse_attention wgmma wg3 vs two warpgroups", dkeys, paths.attn_wg3, int64_t{0});
    bitwise_as("sparse_attention wgmma wg3 everywhere vs default", dkeys, paths.attn_wg3, int64_t{1});
    // O rescaled on each CTA's first tile too (attn_rescale_first) against the default that skips it: bitwise
    bitwise("sparse_attention wgmma first-tile rescale vs skip", dkeys, &paths.attn_rescale_first, true);
    // two splits' partials merged by the warp combine kernel with its loads first (B=64) against its loop
    bitwise("sparse_attention wgmma combine preload vs loop", dkeys, &paths.attn_combine_pre, false);
    // split-K partials merged by the warp-per-row kernel at any row count (attn_combine_warp_rows = 1) against the
    // default (the CTA-per-row kernel below 512 rows): the same arithmetic in the same order
    bitwise_as("sparse_attention wgmma warp merge vs default", dkeys, paths.attn_combine_warp_rows, int64_t{1});
    // the two-warpgroup kernel everywhere (attn_wg3 off) with 16 / 32 / 64 real heads per CTA against the default
    // (rows are independent in every product; the default is wg3 or the two-warpgroup kernel with its own head
    // count, so at least two of the three rows run another configuration); up to 256 queries: the 2048-query
    // prefill case would add three calls and 1.6 GB of downloads for no other code path
    if (n_q <= 256) {
      const PathSwitch<int64_t> two(paths.attn_wg3, 0);
      for (const int64_t heads : {16, 32, 64})
        bitwise_as(fmt("sparse_attention wgmma 2wg heads %lld vs default", (long long)heads).c_str(), dkeys,
                   paths.attn_wg_heads, heads);
    }
  }
  if (lay.vs_combine)  // same splits through the combine kernel: the same arithmetic in the same order
    bitwise("sparse_attention cluster vs combine", dkeys, &paths.attn_cluster, false);
  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.sparse_attention(dkeys, H, d, sink, scale, out);
    });
    const double keys = double(n_q) * double(window + compressed);
    const double row_bytes = lay.fp8_rows ? 4.0 * double(kv_words) : 4.0 * double(d);
    const double win_bytes = fp8_win ? row_bytes : 4.0 * double(d);
    const double bytes =
        double(n_q) * (double(window) * win_bytes + double(compressed) * row_bytes) + 2.0 * n_q * H * d * 4;
    env.report.perf("sparse_attention", detail, t, bytes, 4.0 * keys * H * d, env.ceil);
  }
}

// Forces the previous indexer kernels for its lifetime (one CTA per (row, 128 keys) scores, one CTA per row
// top-k).
struct LegacyIndexer {
  explicit LegacyIndexer(bool on) : on_(on) {
    if (on_) cuda::kernel_paths().indexer_fast = false;
  }
  ~LegacyIndexer() {
    if (on_) cuda::kernel_paths().indexer_fast = true;
  }
  bool on_;
};

// Set comparison of one row of selections (got vs ref, top_k slots, -1 padded; the reference's first
// min(top_k, n) slots are valid): the number of bad slots. A key selected by one side only is a near-tie swap
// when score(key) is within 4 bf16 ulps of the reference's k-th score (counted in `swaps`), else bad; an invalid,
// repeated or missing index is bad.
template <typename Score>
size_t tie_swaps(const int32_t* got, const int32_t* ref, int64_t top_k, int64_t n, Score&& score, size_t& swaps) {
  const int64_t k = std::min(top_k, n);
  size_t bad = 0;
  std::vector<int32_t> g(got, got + k), r(ref, ref + k);
  for (int64_t j = k; j < top_k; ++j) bad += got[j] != -1;
  for (int32_t x : g) bad += x < 0 || x >= n;
  std::sort(g.begin(), g.end());
  std::sort(r.begin(), r.end());
  bad += size_t(std::adjacent_find(g.begin(), g.end()) != g.end());
  if (bad) return bad;
  std::vector<int32_t> only;
  std::set_symmetric_difference(g.begin(), g.end(), r.begin(), r.end(), std::back_inserter(only));
  if (only.empty()) return 0;
  float kth = std::numeric_limits<float>::infinity();
  for (int32_t x : r) kth = std::min(kth, score(x));
  const float ulp = std::ldexp(1.0f, std::ilogb(std::max(std::fabs(kth), 1e-30f)) - 7);
  for (int32_t x : only) {
    if (std::fabs(score(x) - kth) <= 4 * ulp) ++swaps;
    else ++bad;
  }
  return bad;
}

// n_seq sequences in one call, each with its own indexer keys (row blocks: one contiguous block, or paged
// blocks of rows_per_block rows in shuffled pool slots) and `rows` query rows. Sequence 0 has n_max keys,
// sequence j > 0 fewer (n_max·(n_seq + 1 - j)/(n_seq + 1), at least 1), so the lists differ in length and
// content. Within a sequence row r sees n_max_j·(r+1)/rows keys (all of them when rows == 1); with rows > 2
// its first row sees fewer keys than top_k. The selections (i32 [T, top_k], -1 padded) are poisoned before the
// run, downloaded here only, and must match the reference in every slot. legacy: the previous kernels.
//
// In the bf16 numerics the default path scores on the tensor cores (indexer_mma.cuh): its dot products are summed
// in the tensor core's order, so a bf16 rounding of d can flip next to a rounding boundary and swap keys whose
// scores tie within a few bf16 ulps at the top-k boundary. Those rows are checked as sets against scores
// recomputed here (tie_swaps_ok): every key selected by one side only must score within 4 bf16 ulps of the
// reference's k-th score. fp4: q and keys Hadamard + FP4 fake-quantized as the model stores them (the sums are
// then exact in any order: those rows must match slot for slot). cuda_core: the CUDA-core tiled kernel instead
// of the tensor cores (bit-identical to the reference). key_period > 0: key row r repeats row r % key_period (every
// score value appears n / key_period times: ties at the k-th score across all segments); zero_w: all weights 0
// (every score 0: the selection is the lowest indices). packed (with fp4): the GPU reads the keys as Mxfp4 rows
// (core/row_blocks.h, packed here by core fp4_pack) in the same pool geometry, the CPU reference its f32 rows: slot
// for slot equal (the tensor-core kernel expands them to the same bf16 values; the other kernels get them decoded).
// neg_w: every weight negative, so every score is <= 0 and the k-th score negative (the radix select's threshold
// key then has its low bits set: order keys of negative bf16 scores end in 0xFFFF).
void check_indexer(Env& env, const Numerics& num, int64_t n_seq, int64_t rows, int64_t nh, int64_t hd,
                   int64_t n_max, int64_t top_k, bool timed, bool check_ref = true, bool legacy = false,
                   int64_t rows_per_block = 0, bool cuda_core = false, bool fp4 = false, int64_t key_period = 0,
                   bool zero_w = false, bool packed = false, bool neg_w = false) {
  const bool bf = is_bf16(num);
  const int64_t T = n_seq * rows;
  const bool mma = bf && !legacy && !cuda_core && nh <= 64 && (hd == 64 || hd == 128);
  int sms = 0;
  DSV4_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const bool wgmma = mma && packed && hd == 128 && cuda::kernel_paths().indexer_wgmma &&
                     cuda::plan_indexer(T, n_max, nh, hd, top_k, sms, false, true, true).wgmma_key_ctas > 0;
  const std::string detail =
      fmt("%s%s%s%s seqs=%lld T=%lld heads=%lld hd=%lld keys<=%lld k=%lld%s", num_name(num), legacy ? " legacy" : "",
          mma ? (wgmma ? " wgmma" : " mma")
              : (bf && !legacy ? " cuda-core" : ""),
          fp4 ? " fp4" : "", (long long)n_seq, (long long)T,
          (long long)nh, (long long)hd, (long long)n_max, (long long)top_k,
          rows_per_block ? fmt(" paged(%lld)", (long long)rows_per_block).c_str() : "") +
      (cuda::kernel_paths().topk_two_level ? "" : " one-level-merge") +
      (cuda::kernel_paths().topk_radix ? (cuda::kernel_paths().topk_radix_fused ? "" : " radix-kernels")
                                        : " merge-topk") +
      (key_period ? fmt(" key-period=%lld", (long long)key_period) : std::string()) + (zero_w ? " zero-w" : "") +
      (packed ? " mxfp4-rows" : "") + (neg_w ? " neg-w" : "");
  const PathSwitch<bool> core_switch(cuda::kernel_paths().indexer_mma, !cuda_core);
  std::vector<int64_t> seq_keys(static_cast<size_t>(n_seq));
  for (int64_t j = 0; j < n_seq; ++j)
    seq_keys[size_t(j)] = j == 0 ? n_max : std::max<int64_t>(1, n_max * (n_seq + 1 - j) / (n_seq + 1));
  const PoolLayout L = make_layout(env, seq_keys, rows_per_block, 0);
  HostTensor keys = host_tensor({L.rows, hd}, values(env, size_t(L.rows * hd), 0.5f, bf));
  HostTensor q = host_tensor({T, nh, hd}, values(env, size_t(T * nh * hd), 0.5f, bf));
  HostTensor w = host_tensor({T, nh}, values(env, size_t(T * nh), 0.1f, bf));
  if (key_period > 0)
    for (int64_t r = key_period; r < L.rows; ++r)
      std::copy_n(keys.data() + (r % key_period) * hd, hd, keys.data() + r * hd);
  if (zero_w) std::fill_n(w.data(), w.numel(), 0.0f);
  if (neg_w)
    for (int64_t i = 0; i < w.numel(); ++i) w.data()[i] = -std::fabs(w.data()[i]);
  if (fp4) {
    CpuOps r(num);
    r.indexer_round(keys, hd, backend::IndexerDtype::Fp4);
    r.indexer_round(q, hd, backend::IndexerDtype::Fp4);
  }
  HostTensor pool = keys;
  if (packed) {
    pool = HostTensor({L.rows, mxfp4_row_bytes(hd) / 4});
    for (int64_t r = 0; r < L.rows; ++r) fp4_pack_row(keys.row(r), size_t(hd), pool.row(r));
  }
  const Tensor dkeys = pool.to(Device::Cuda), dq = q.to(Device::Cuda), dw = w.to(Device::Cuda);
  std::vector<backend::SeqEntries> hseqs, dseqs;
  std::vector<int64_t> n_keys(static_cast<size_t>(T));
  for (int64_t j = 0; j < n_seq; ++j) {
    hseqs.push_back({.row_begin = j * rows, .n_rows = rows, .entries = blocks_of(L, size_t(j), keys)});
    dseqs.push_back({.row_begin = j * rows, .n_rows = rows, .entries = blocks_of(L, size_t(j), dkeys)});
    if (packed) dseqs.back().entries.format = RowFormat::Mxfp4;
    const int64_t n = seq_keys[size_t(j)];
    for (int64_t r = 0; r < rows; ++r) {
      const size_t t = size_t(j * rows + r);
      n_keys[t] = rows == 1 ? n : std::max<int64_t>(1, n * (r + 1) / rows);
      if (rows > 2 && r == 0) n_keys[t] = std::min<int64_t>(top_k / 2 + 1, n);  // fewer keys than top_k
    }
  }
  const backend::IndexerDims dims{.n_heads = nh, .head_dim = hd, .top_k = top_k};
  LegacyIndexer guard(legacy);
  CudaOps gpu(num);
  IndexTensor got(Device::Cuda, T, top_k);
  DSV4_CUDA_CHECK(cudaMemsetAsync(got.data(), 0x5a, size_t(T * top_k) * 4, ops_stream()));  // poison
  gpu.indexer_topk(dq, dw, dseqs, n_keys, dims, got);
  if (check_ref) {
    CpuOps cpu(num);
    IndexTensor ref;
    cpu.indexer_topk(q, w, hseqs, n_keys, dims, ref);
    const IndexTensor h = got.to(Device::Host);
    size_t bad = 0;
    std::string note;
    if (h.rows() != ref.rows() || h.cols() != ref.cols()) {
      bad = size_t(ref.numel());
    } else if (mma && !fp4) {
      size_t swaps = 0;
      for (int64_t t = 0; t < T; ++t) {
        const RowBlocks& kb = hseqs[size_t(t / rows)].entries;
        const float* qt = q.data() + t * nh * hd;
        const float* wt = w.data() + t * nh;
        auto score = [&](int64_t s) {  // the reference formula, dot products in double
          float total = 0.0f;
          for (int64_t hh = 0; hh < nh; ++hh) {
            double d = 0;
            for (int64_t i = 0; i < hd; ++i) d += double(qt[hh * hd + i]) * double(kb.row(s)[i]);
            const float r = std::max(round_bf16(float(d)), 0.0f);
            total = round_bf16(total + round_bf16(wt[hh] * r));
          }
          return total;
        };
        bad += tie_swaps(h.row(t), ref.row(t), top_k, n_keys[size_t(t)], score, swaps);
      }
      note = fmt("sets; %zu near-tie swaps (within 4 bf16 ulps of the k-th score)", swaps);
    } else {
      for (int64_t i = 0; i < ref.numel(); ++i) bad += h.data()[i] != ref.data()[i];
    }
    env.report.exact("indexer_topk", detail, size_t(ref.numel()), bad, note);
  }
  // Rows of top_k < keys <= kTopkMaxK (one segment) by the block radix sort (topk_sort_rows, the default) against
  // block_topk's bitonic sort: the same selections in the same order.
  const bool short_rows = std::any_of(n_keys.begin(), n_keys.end(),
                                     [&](int64_t n) { return n > top_k && n <= cuda::kTopkMaxK; });
  if (!legacy && short_rows && cuda::kernel_paths().topk_sort_rows) {
    IndexTensor alt(Device::Cuda, T, top_k);
    DSV4_CUDA_CHECK(cudaMemsetAsync(alt.data(), 0x5a, size_t(T * top_k) * 4, ops_stream()));
    {
      const PathSwitch<bool> bitonic(cuda::kernel_paths().topk_sort_rows, false);
      gpu.indexer_topk(dq, dw, dseqs, n_keys, dims, alt);
    }
    const IndexTensor a = got.to(Device::Host), b = alt.to(Device::Host);
    size_t bad = 0;
    for (int64_t i = 0; i < a.numel(); ++i) bad += a.data()[i] != b.data()[i];
    env.report.exact("indexer_topk sort_rows vs bitonic", detail, size_t(a.numel()), bad);
  }
  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.indexer_topk(dq, dw, dseqs, n_keys, dims, got);
    });
    double pairs = 0, total = 0;
    for (int64_t n : n_keys) pairs += double(n);
    for (int64_t n : seq_keys) total += double(n);
    const double key_bytes = packed ? double(mxfp4_row_bytes(hd)) : double(hd * 4);
    env.report.perf("indexer_topk", detail, t, total * key_bytes + pairs * 4 * 5, 2.0 * pairs * nh * hd, env.ceil);
  }
}

void check_softmax_pool(Env& env, int64_t n, int64_t dim) {
  const int64_t pool_rows = n * 8;
  HostTensor a = host_tensor({pool_rows, dim}, values(env, size_t(pool_rows * dim), 1.0f, false));
  HostTensor g = host_tensor({pool_rows, dim}, values(env, size_t(pool_rows * dim), 2.0f, false));
  const Tensor da = a.to(Device::Cuda), dg = g.to(Device::Cuda);
  std::vector<const float*> ha, hg, dap, dgp;
  std::vector<int64_t> offsets{0};
  std::uniform_int_distribution<int64_t> cnt(1, 8), row(0, pool_rows - 1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = cnt(env.rng);
    for (int64_t j = 0; j < c; ++j) {
      const int64_t r = row(env.rng);
      ha.push_back(a.row(r));
      hg.push_back(g.row(r));
      dap.push_back(da.row(r));
      dgp.push_back(dg.row(r));
    }
    offsets.push_back(offsets.back() + c);
  }
  CpuOps cpu(Numerics{});
  CudaOps gpu(Numerics{});
  HostTensor ref;
  cpu.softmax_pool(ha, hg, offsets, dim, ref);
  Tensor out(Device::Cuda, {n, dim});
  out.resize({n, dim}, NAN);
  gpu.softmax_pool(dap, dgp, offsets, dim, out);
  const std::vector<float> got = download(out);
  env.report.check("softmax_pool", fmt("n=%lld dim=%lld", (long long)n, (long long)dim),
                   compare(got.data(), ref.data(), got.size()), 1e-5);
}

void check_copy_rows(Env& env, int64_t n, int64_t width) {
  HostTensor src = host_tensor({n, width}, values(env, size_t(n * width), 1.0f, false));
  const Tensor dsrc = src.to(Device::Cuda);
  Tensor ddst(Device::Cuda, {n, width});
  ddst.resize({n, width}, NAN);
  HostTensor dst({n, width}, NAN);
  std::vector<const float*> hs, ds;
  std::vector<float*> hd, dd;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t to = i == n - 1 ? 0 : i;  // the last row overwrites row 0
    hs.push_back(src.row(i));
    ds.push_back(dsrc.row(i));
    hd.push_back(dst.row(to));
    dd.push_back(ddst.row(to));
  }
  hs.push_back(dst.row(0));  // then a copy reading the row just written
  ds.push_back(ddst.row(0));
  hd.push_back(dst.row(n - 1));
  dd.push_back(ddst.row(n - 1));
  CpuOps cpu(Numerics{});
  CudaOps gpu(Numerics{});
  cpu.copy_rows(hs, hd, width);
  gpu.copy_rows(ds, dd, width);
  const std::vector<float> got = download(ddst);
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += std::memcmp(&got[i], &dst.vec()[i], 4) != 0;
  env.report.exact("copy_rows", fmt("n=%lld width=%lld, repeated destination", (long long)n, (long long)width),
                   got.size(), bad);
}

// pack_rows_mxfp4 (kv_rope < 0; core fp4_pack) or pack_rows_fp8kv (kv_rope >= 0; core fp8kv_pack_row) vs
// CpuOps: n rows of dim in scattered destination rows of a pool, bitwise (codes, scales and zero pad). Raw random
// rows over many magnitudes, FP4- / FP8-KV-rounded rows (what the engine packs), an all-zero row and rows with
// NaN / inf blocks (in the FP8 part for Fp8Kv rows).
void check_pack_rows(Env& env, int64_t n, int64_t dim, int64_t kv_rope = -1) {
  const bool kv = kv_rope >= 0;
  const int64_t words = (kv ? fp8kv_row_bytes(dim, kv_rope) : mxfp4_row_bytes(dim)) / 4;
  HostTensor src = host_tensor({n, dim}, values(env, size_t(n * dim), 1.0f, false));
  std::uniform_int_distribution<int> expo(kv ? -60 : -120, kv ? 60 : 100);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < dim / 32; ++b) {
      const float m = std::ldexp(1.0f, expo(env.rng));
      for (int64_t i = 0; i < 32; ++i) src.row(r)[32 * b + i] *= m;
    }
  if (kv)  // rows [n/2, n) stay raw below
    CpuOps(Numerics{}).kv_round(src, dim, kv_rope, backend::KvCacheDtype::Fp8);
  else
    CpuOps(Numerics{}).indexer_round(src, dim, backend::IndexerDtype::Fp4);
  HostTensor raw = host_tensor({n, dim}, values(env, size_t(n * dim), 3.0f, false));
  std::copy_n(raw.data() + (n / 2) * dim, (n - n / 2) * dim, src.data() + (n / 2) * dim);
  std::fill_n(src.row(0), dim, 0.0f);
  src.row(1)[3] = std::numeric_limits<float>::quiet_NaN();
  src.row(2)[kv ? dim - kv_rope - 1 : dim - 1] = std::numeric_limits<float>::infinity();
  std::vector<int64_t> slot(static_cast<size_t>(n));
  std::iota(slot.begin(), slot.end(), int64_t(0));
  std::shuffle(slot.begin(), slot.end(), env.rng);
  const Tensor dsrc = src.to(Device::Cuda);
  Tensor dpool = host_tensor({n, words}, std::vector<float>(size_t(n * words), 0.0f)).to(Device::Cuda);
  DSV4_CUDA_CHECK(cudaMemsetAsync(dpool.data(), 0x5a, size_t(n * words) * 4, ops_stream()));  // poison (pad too)
  HostTensor hpool({n, words});
  std::vector<const float*> hs, ds;
  std::vector<float*> hd, dd;
  for (int64_t r = 0; r < n; ++r) {
    hs.push_back(src.row(r)), ds.push_back(dsrc.row(r));
    hd.push_back(hpool.row(slot[size_t(r)])), dd.push_back(dpool.row(slot[size_t(r)]));
  }
  if (kv) {
    CpuOps(Numerics{}).pack_rows_fp8kv(hs, hd, dim, kv_rope);
    CudaOps(Numerics{}).pack_rows_fp8kv(ds, dd, dim, kv_rope);
  } else {
    CpuOps(Numerics{}).pack_rows_mxfp4(hs, hd, dim);
    CudaOps(Numerics{}).pack_rows_mxfp4(ds, dd, dim);
  }
  const HostTensor got = dpool.to(Device::Host);
  size_t bad = 0;
  for (int64_t i = 0; i < n * words; ++i)
    bad += std::bit_cast<uint32_t>(got.data()[i]) != std::bit_cast<uint32_t>(hpool.data()[i]);
  env.report.exact(kv ? "pack_rows_fp8kv" : "pack_rows_mxfp4",
                   fmt("rows=%lld dim=%lld", (long long)n, (long long)dim) +
                       (kv ? fmt(" rope=%lld", (long long)kv_rope) : std::string()),
                   size_t(n * words), bad, "bitwise (32-bit words)");
}

void check_rope(Env& env, const Numerics& num, int64_t T, int64_t segs, int64_t dim, int64_t rope_dim, bool inverse) {
  HostTensor x = host_tensor({T, segs, dim}, values(env, size_t(T * segs * dim), 1.0f, is_bf16(num)));
  backend::RopeTable table;
  for (int64_t i = 0; i < rope_dim / 2; ++i)
    table.freqs.push_back(static_cast<float>(std::pow(10000.0, -2.0 * double(i) / double(rope_dim))));
  std::vector<int64_t> pos(static_cast<size_t>(T));
  std::uniform_int_distribution<int64_t> pd(0, 1 << 20);
  for (auto& p : pos) p = pd(env.rng);
  pos[0] = 0;
  Tensor dx = x.to(Device::Cuda);
  CpuOps cpu(num);
  CudaOps gpu(num);
  cpu.rope(x, dim, rope_dim, pos, table, inverse);
  gpu.rope(dx, dim, rope_dim, pos, table, inverse);
  const std::vector<float> got = download(dx);
  env.report.check("rope", fmt("%s T=%lld segs=%lld dim=%lld rope=%lld%s", num_name(num), (long long)T,
                               (long long)segs, (long long)dim, (long long)rope_dim, inverse ? " inverse" : ""),
                   compare(got.data(), x.data(), got.size()), is_bf16(num) ? kTolBf16Rowwise : 1e-6);
}

// Bitwise comparison of an in-place rounding op.
template <typename Fn>
void check_bitwise(Env& env, const char* name, const std::string& detail, HostTensor x, Fn&& fn) {
  Tensor dx = x.to(Device::Cuda);
  CpuOps cpu(Numerics{});
  CudaOps gpu(Numerics{});
  fn(static_cast<backend::Ops&>(cpu), x);
  fn(static_cast<backend::Ops&>(gpu), dx);
  const std::vector<float> got = download(dx);
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const float a = got[i], b = x.vec()[i];
    bad += !(a == b || (std::isnan(a) && std::isnan(b))) || std::signbit(a) != std::signbit(b);
  }
  env.report.exact(name, detail, got.size(), bad);
}

// finish_rows (the fused norm + RoPE + cache rounding kernel) against the CPU reference's op sequence (within the
// rowwise tolerance: sincosf vs libm may move a last ulp before a bf16 rounding) and bitwise against the CUDA op
// sequence (kernel path off), for the four uses of the model: q heads, kv row, indexer q, compressor entries.
void check_finish_rows(Env& env, const Numerics& num, const char* what, int64_t T, int64_t segs, int64_t dim,
                       bool weighted, backend::RowFinish f) {
  HostTensor x = host_tensor({T, segs * dim}, random_activations(env.rng, T, segs * dim));
  x.vec()[3] = 1e30f;  // a large value (the norm's f64 sum of squares)
  std::vector<float> wv = values(env, size_t(dim), 1.0f, false);
  weights::Weight w;
  w.name = "finish_norm";
  w.dtype = DType::F32;
  w.shape = {dim};
  w.data = wv.data();
  backend::RopeTable table;
  for (int64_t i = 0; i < f.rope_dim / 2; ++i)
    table.freqs.push_back(static_cast<float>(std::pow(10000.0, -2.0 * double(i) / double(f.rope_dim))));
  f.rope = &table;
  f.norm_weight = weighted ? &w : nullptr;
  f.eps = 1e-6f;
  std::vector<int64_t> pos(static_cast<size_t>(T));
  std::uniform_int_distribution<int64_t> pd(0, 1 << 20);
  for (auto& p : pos) p = pd(env.rng);
  Tensor fused = x.to(Device::Cuda), seq = x.to(Device::Cuda);
  CpuOps cpu(num);
  CudaOps gpu(num);
  cpu.finish_rows(x, dim, pos, f);
  gpu.finish_rows(fused, dim, pos, f);
  {
    const PathSwitch<bool> off(cuda::kernel_paths().finish_rows, false);
    gpu.finish_rows(seq, dim, pos, f);
  }
  const std::vector<float> got = download(fused), want = download(seq);
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += std::memcmp(&got[i], &want[i], 4) != 0;
  const std::string detail = fmt("%s %s T=%lld segs=%lld dim=%lld", what, num_name(num), (long long)T,
                                 (long long)segs, (long long)dim);
  env.report.exact("finish_rows vs CUDA op sequence", detail, got.size(), bad);
  env.report.check("finish_rows", detail, compare(got.data(), x.data(), got.size()),
                   is_bf16(num) ? kTolBf16Rowwise : 1e-6);
}

}  // namespace

void test_ops_attention(Env& env) {
  const Numerics nums[2] = {Numerics{}, Numerics::exact_f32()};
  for (const Numerics& num : nums) {
    check_sparse_attention(env, num, 5, 4, 128, 128, 40, false);  // tiny, ragged windows
    check_sparse_attention(env, num, 3, 6, 96, 20, 7, false);     // generic kernel shape
    // Fp8Kv compressed entries (the paged store with the FP8 KV cache), each also bitwise against f32 rows of the
    // same values: the generic kernel (decoded rows), the 16-head kernel (B=1 split-K cluster over pages of 64;
    // 3 queries of paged HCA), the wide kernel (ragged windows; 4 sequences of paged CSA), tiny heads.
    check_sparse_attention(env, num, 3, 6, 96, 20, 7, false, true, false, {.fp8_rows = true});
    check_sparse_attention(env, num, 5, 4, 128, 128, 40, false, true, false,
                           {.n_seq = 2, .hca = true, .fp8_rows = true});
    check_sparse_attention(env, num, 1, 64, 512, 128, 512, false, true, false,
                           {.rows_per_block = 64, .fp8_rows = true});
    check_sparse_attention(env, num, 3, 64, 512, 128, 300, false, true, false,
                           {.n_seq = 3, .rows_per_block = 2, .hca = true, .fp8_rows = true});
    check_sparse_attention(env, num, 9, 64, 512, 128, 40, false, true, false, {.fp8_rows = true});
    check_sparse_attention(env, num, 16, 64, 512, 128, 512, false, true, false,
                           {.n_seq = 4, .rows_per_block = 64, .fp8_rows = true});
    // Those rows carry Fp8Kv window rows too (the engine's ring with the FP8 KV cache); f32 window rows beside
    // Fp8Kv entries (mixed tiles), and SWA layers (window rows only, packed or f32) on each kernel.
    check_sparse_attention(env, num, 9, 64, 512, 128, 40, false, true, false, {.fp8_rows = true, .f32_window = true});
    check_sparse_attention(env, num, 1, 64, 512, 128, 512, false, true, false,
                           {.rows_per_block = 64, .fp8_rows = true, .f32_window = true});
    check_sparse_attention(env, num, 3, 6, 96, 20, 0, false, true, false, {.fp8_rows = true, .swa = true});
    check_sparse_attention(env, num, 1, 64, 512, 128, 0, false, true, false, {.fp8_rows = true, .swa = true});
    check_sparse_attention(env, num, 64, 64, 512, 128, 0, false, true, false,
                           {.n_seq = 64, .fp8_rows = true, .swa = true});
    check_sparse_attention(env, num, 9, 64, 512, 128, 0, false, true, false, {.swa = true});
    if (is_bf16(num)) {  // timed: Flash decode B=1 and 64 over paged Fp8Kv rows (against the f32 rows below)
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true, false,
                             {.rows_per_block = 64, .fp8_rows = true});
      check_sparse_attention(env, num, 64, 64, 512, 128, 512, true, true, false,
                             {.n_seq = 64, .rows_per_block = 64, .fp8_rows = true});
      // The 64-head kernel on wgmma (default) and on mma.sync (before/after): B=64 and 256 over paged Fp8Kv rows,
      // and the mma.sync kernel's ragged-window case.
      check_sparse_attention(env, num, 64, 64, 512, 128, 512, true, true, false,
                             {.n_seq = 64, .rows_per_block = 64, .mma_sync = true, .fp8_rows = true});
      check_sparse_attention(env, num, 256, 64, 512, 128, 512, true, true, false,
                             {.n_seq = 256, .rows_per_block = 64, .fp8_rows = true});
      check_sparse_attention(env, num, 256, 64, 512, 128, 512, true, true, false,
                             {.n_seq = 256, .rows_per_block = 64, .mma_sync = true, .fp8_rows = true});
      check_sparse_attention(env, num, 9, 64, 512, 128, 40, false, true, false, {.mma_sync = true, .fp8_rows = true});
      // Below 8 queries the 64-head kernel runs on wgmma only (attn_wgmma_min_q = 1; on mma.sync the 16-head one):
      // B=1 split over 20 CTAs against the 16-head kernel, 3 queries of ragged windows.
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true, false,
                             {.rows_per_block = 64, .mma_sync = true, .fp8_rows = true});
      check_sparse_attention(env, num, 3, 64, 512, 128, 40, false, true, false, {.fp8_rows = true});
      // 2 key splits per query: 50 queries of ragged windows (partial last tiles), and of ragged HCA lists (second
      // splits empty for the short ones).
      check_sparse_attention(env, num, 50, 64, 512, 128, 512, false, true, false,
                             {.n_seq = 5, .rows_per_block = 64, .fp8_rows = true});
      check_sparse_attention(env, num, 50, 64, 512, 128, 512, false, true, false,
                             {.n_seq = 5, .rows_per_block = 2, .hca = true, .fp8_rows = true});
      const PathSwitch<bool> resolve(cuda::kernel_paths().attn_inline_rows, false);
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, false, true, false,
                             {.rows_per_block = 64, .fp8_rows = true});
    }
    check_sparse_attention(env, num, 1, 64, 512, 128, 512, true);  // Flash decode, batch 1 (split-K)
    check_sparse_attention(env, num, 64, 64, 512, 128, 512, true);
    // The wide path runs from kAttnWideMinQueries (8) queries on.
    // Split-K of dim 512 runs as clusters (attn_cluster): these three also through the combine kernel, bitwise.
    check_sparse_attention(env, num, 9, 64, 512, 128, 40, false, true, false,
                           {.vs_combine = true});  // wide path, ragged windows, partial tiles, empty splits
    check_sparse_attention(env, num, 8, 128, 512, 96, 300, false, true, false,
                           {.vs_combine = true});  // wide path, two head groups, split-K (cluster of 7)
    check_sparse_attention(env, num, 3, 64, 512, 128, 40, false, true, false,
                           {.vs_combine = true});  // few queries: the 16-head kernel (cluster of 3)
    check_sparse_attention(env, num, 264, 64, 512, 128, 8, false);  // wide path without split (2 waves)
    // Compressed entries through row blocks: HCA (all of the first n, ragged), CSA selections, several
    // sequences per call, paged blocks (CSA pages of 64 rows, HCA pages of 2 rows).
    check_sparse_attention(env, num, 5, 4, 128, 128, 40, false, true, false, {.n_seq = 2, .hca = true});
    check_sparse_attention(env, num, 6, 4, 128, 20, 40, false, true, false, {.n_seq = 3, .rows_per_block = 64});
    check_sparse_attention(env, num, 9, 64, 512, 128, 64, false, true, false,
                           {.n_seq = 3, .rows_per_block = 2, .hca = true});
    check_sparse_attention(env, num, 16, 64, 512, 128, 512, false, true, false, {.n_seq = 4, .rows_per_block = 64});
    check_sparse_attention(env, num, 1, 64, 512, 128, 512, false, true, false, {.rows_per_block = 64});  // split-K
    check_sparse_attention(env, num, 3, 64, 512, 128, 300, false, true, false,
                           {.n_seq = 3, .rows_per_block = 2, .hca = true});  // 16-head kernel, paged HCA
    if (is_bf16(num)) {  // the previous 16-head kernel (fallback) for before/after
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true, true);
      check_sparse_attention(env, num, 64, 64, 512, 128, 512, true, true, true);
      // Flash decode split-K merged by the combine kernel (attn_cluster off) for before/after, the cluster merge
      // bitwise against it, and B=1 cluster sizes forced to 5, 8 and 16 key splits (128, 80 and 40 keys).
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true, false, {.combine = true});
      check_sparse_attention(env, num, 64, 64, 512, 128, 512, true, true, false, {.combine = true});
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, false, true, false, {.vs_combine = true});
      check_sparse_attention(env, num, 64, 64, 512, 128, 512, false, true, false, {.vs_combine = true});
      for (int64_t split : {5, 8, 16})
        check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true, false, {.cluster_split = split});
    }
    check_indexer(env, num, 1, 5, 4, 128, 300, 64, false);
    check_indexer(env, num, 1, 4, 64, 128, 4096, 512, false);
    check_indexer(env, num, 1, 2, 64, 128, 16384, 512, false);   // two top-k segments (merge stage)
    check_indexer(env, num, 3, 3, 4, 128, 300, 64, false);       // 3 sequences x 3 rows, tiny, ragged
    check_indexer(env, num, 6, 1, 64, 128, 20000, 512, false);   // 6 sequences: 1..3 segments, different lists
    check_indexer(env, num, 1, 1, 64, 128, 40000, 512, false);   // 5 segments
    check_indexer(env, num, 2, 3, 64, 128, 4096, 512, false, true, true);  // legacy kernels, batched call
    // Paged indexer keys (blocks of 64 rows in shuffled pool slots, the paged store's CSA page).
    check_indexer(env, num, 3, 3, 64, 128, 4096, 512, false, true, false, 64);
    check_indexer(env, num, 2, 1, 64, 128, 20000, 512, false, true, false, 64);  // 3 segments, paged
    check_indexer(env, num, 2, 3, 4, 128, 300, 64, false, true, true, 64);       // legacy kernels, paged
    if (is_bf16(num)) {
      // The CUDA-core tiled kernel (bit-identical scores) and FP4-simulated inputs on the tensor cores (exact).
      check_indexer(env, num, 1, 4, 64, 128, 4096, 512, false, true, false, 0, true);
      check_indexer(env, num, 3, 3, 64, 128, 4096, 512, false, true, false, 64, true);
      check_indexer(env, num, 1, 4, 64, 128, 4096, 512, false, true, false, 0, false, true);
      check_indexer(env, num, 3, 3, 64, 128, 20000, 512, false, true, false, 64, false, true);
      check_indexer(env, num, 2, 3, 8, 64, 700, 64, false, true, false, 0, false, true);  // head_dim 64, 8 heads
      // Two-level top-k merge: 3 sequences of 13, 10 and 7 segments of 8192 keys (groups of 8: 8 + 5, 8 + 2, and
      // one-level), then the same with one merge CTA per row.
      check_indexer(env, num, 3, 1, 64, 128, 100000, 512, false, true, false, 64, false, true);
      {
        const PathSwitch<bool> merge(cuda::kernel_paths().topk_radix, false);
        check_indexer(env, num, 3, 1, 64, 128, 100000, 512, false, true, false, 64, false, true);
        const PathSwitch<bool> one_level(cuda::kernel_paths().topk_two_level, false);
        check_indexer(env, num, 3, 1, 64, 128, 100000, 512, false, true, false, 64, false, true);
      }
      // Ties at the k-th score in every segment (radix select's tie rule), then all scores 0; the fused and
      // separate radix kernels and the segment merges.
      for (int mode : {0, 1, 2}) {
        const PathSwitch<bool> path(cuda::kernel_paths().topk_radix, mode < 2);
        const PathSwitch<bool> fused(cuda::kernel_paths().topk_radix_fused, mode == 0);
        check_indexer(env, num, 2, 1, 64, 128, 100000, 512, false, true, false, 64, false, true, 97);
        check_indexer(env, num, 2, 2, 64, 128, 40000, 512, false, true, false, 64, false, true, 0, true);
        check_indexer(env, num, 2, 1, 64, 128, 100000, 512, false, true, false, 64, false, true, 97, false, false,
                      true);
        check_indexer(env, num, 1, 1, 64, 128, 40000, 512, false, true, false, 64, false, true, 0, false, true, true);
      }
      // Ties in one short row (top_k < keys <= kTopkMaxK: the block radix sort, stable): key period 97, all scores
      // 0, all weights negative.
      check_indexer(env, num, 1, 1, 64, 128, 1500, 512, false, true, false, 64, false, true, 97);
      check_indexer(env, num, 1, 1, 64, 128, 1500, 512, false, true, false, 64, false, true, 0, true);
      check_indexer(env, num, 1, 1, 64, 128, 1500, 512, false, true, false, 64, false, true, 0, false, false, true);
      // Flash decode at 1M context (262144 keys, paged), batch 1: tensor cores (checked, FP4 inputs) then the
      // CUDA-core kernel, both timed; batch 64 at 4K both ways.
      check_indexer(env, num, 1, 1, 64, 128, 262144, 512, true, true, false, 64, false, true);
      {
        const PathSwitch<bool> kernels(cuda::kernel_paths().topk_radix_fused, false);
        check_indexer(env, num, 1, 1, 64, 128, 262144, 512, true, true, false, 64, false, true);
        check_indexer(env, num, 3, 1, 64, 128, 100000, 512, false, true, false, 64, false, true);
      }
      {
        const PathSwitch<bool> merge(cuda::kernel_paths().topk_radix, false);
        check_indexer(env, num, 1, 1, 64, 128, 262144, 512, true, true, false, 64, false, true);
      }
      check_indexer(env, num, 1, 1, 64, 128, 262144, 512, true, false, false, 64, true, true);
      check_indexer(env, num, 64, 1, 64, 128, 1024, 512, true, true, false, 64, false, true);
      check_indexer(env, num, 64, 1, 64, 128, 1024, 512, true, false, false, 64, true, true);
      // Mxfp4 key rows (the engine's paged store with the FP4 indexer): slot for slot against the CPU on its f32
      // rows; 1M and 4K x 64 timed; 3 sequences x 3 rows ragged; head_dim 64; ties (key period 97, one-launch
      // radix); and through the CUDA-core and legacy kernels (rows decoded to f32 first).
      check_indexer(env, num, 1, 1, 64, 128, 262144, 512, true, true, false, 64, false, true, 0, false, true);
      check_indexer(env, num, 64, 1, 64, 128, 1024, 512, true, true, false, 64, false, true, 0, false, true);
      {  // the same two on the mma.sync score kernel (before/after of indexer_wgmma.cuh)
        const PathSwitch<bool> wgmma(cuda::kernel_paths().indexer_wgmma, false);
        check_indexer(env, num, 1, 1, 64, 128, 262144, 512, true, true, false, 64, false, true, 0, false, true);
        check_indexer(env, num, 64, 1, 64, 128, 1024, 512, true, true, false, 64, false, true, 0, false, true);
      }
      check_indexer(env, num, 3, 3, 64, 128, 20000, 512, false, true, false, 64, false, true, 0, false, true);
      check_indexer(env, num, 2, 3, 8, 64, 700, 64, false, true, false, 0, false, true, 0, false, true);
      // 8 heads at head_dim 128 (q rows 8..63 of the wgmma operand zero), all weights negative.
      check_indexer(env, num, 2, 3, 8, 128, 700, 64, false, true, false, 64, false, true, 0, false, true);
      check_indexer(env, num, 2, 2, 64, 128, 3000, 512, false, true, false, 64, false, true, 0, false, true, true);
      check_indexer(env, num, 2, 1, 64, 128, 100000, 512, false, true, false, 64, false, true, 97, false, true);
      check_indexer(env, num, 3, 3, 64, 128, 4096, 512, false, true, false, 64, true, true, 0, false, true);
      check_indexer(env, num, 2, 3, 4, 128, 300, 64, false, true, true, 64, false, true, 0, false, true);
      // An HCA layer at 1M context, one query: 8192 entries (paged, blocks of 2) + the window.
      check_sparse_attention(env, num, 1, 64, 512, 128, 8192, true, true, false, {.rows_per_block = 2, .hca = true});
      // CSA decode over paged rows (B = 1 and 4), then both 1M HCA and CSA rows with resolve_rows_kernel launched first
      // (attn_inline_rows off: the call before the 16-head kernel resolved its own rows).
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true, false, {.rows_per_block = 64});
      check_sparse_attention(env, num, 4, 64, 512, 128, 512, true, true, false, {.n_seq = 2, .rows_per_block = 64});
      {
        const PathSwitch<bool> resolve(cuda::kernel_paths().attn_inline_rows, false);
        check_sparse_attention(env, num, 1, 64, 512, 128, 8192, true, true, false, {.rows_per_block = 2, .hca = true});
        check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true, false, {.rows_per_block = 64});
        check_sparse_attention(env, num, 4, 64, 512, 128, 512, true, true, false, {.n_seq = 2, .rows_per_block = 64});
      }
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true);  // CSA decode: 640 keys (16-head)
    }
    check_rope(env, num, 7, 4, 128, 64, false);
    check_rope(env, num, 64, 64, 512, 64, true);
  }
  if (!env.quick) {
    check_sparse_attention(env, Numerics{}, 2048, 64, 512, 128, 512, true, false);  // prefill, timing only
    check_sparse_attention(env, Numerics{}, 256, 64, 512, 128, 512, true, false);   // decode batch 256
    // indexer_topk Flash decode: batch 1 and 64 at 4K context (1024 compressed keys), batch 1 at 1M
    // (262144 keys), a 1024-query prefill chunk; new kernels, then the previous ones ("legacy") for before/after.
    check_indexer(env, Numerics{}, 1, 1, 64, 128, 1024, 512, true);
    check_indexer(env, Numerics{}, 64, 1, 64, 128, 1024, 512, true);
    check_indexer(env, Numerics{}, 1, 1, 64, 128, 262144, 512, true, false);
    check_indexer(env, Numerics{}, 1, 1024, 64, 128, 1024, 512, true, false);
    check_indexer(env, Numerics{}, 1, 1, 64, 128, 1024, 512, true, false, true);
    check_indexer(env, Numerics{}, 64, 1, 64, 128, 1024, 512, true, false, true);
    check_indexer(env, Numerics{}, 1, 1, 64, 128, 262144, 512, true, false, true);
    check_indexer(env, Numerics{}, 1, 1024, 64, 128, 1024, 512, true, false, true);
    // 1M context through the paged layout: indexer keys in 4096 blocks of 64, an HCA layer's 8192 entries in
    // blocks of 2 (checked against the reference, then timed), CSA decode batch 64 over paged rows.
    check_indexer(env, Numerics{}, 1, 1, 64, 128, 262144, 512, true, false, false, 64);
    check_sparse_attention(env, Numerics{}, 1, 64, 512, 128, 8192, true, true, false,
                           {.rows_per_block = 2, .hca = true});
    check_sparse_attention(env, Numerics{}, 64, 64, 512, 128, 512, true, false, false,
                           {.n_seq = 64, .rows_per_block = 64});
    // The same with Fp8Kv entries, and decode B=256 and the 2048-query prefill over them.
    check_sparse_attention(env, Numerics{}, 1, 64, 512, 128, 8192, true, true, false,
                           {.rows_per_block = 2, .hca = true, .fp8_rows = true});
    check_sparse_attention(env, Numerics{}, 256, 64, 512, 128, 512, true, false, false,
                           {.n_seq = 256, .rows_per_block = 64, .fp8_rows = true});
    check_sparse_attention(env, Numerics{}, 256, 64, 512, 128, 512, true, false, false,
                           {.n_seq = 256, .rows_per_block = 64});
    // Decode B=1 / 64 / 256 with f32 window rows beside the Fp8Kv entries (the store before its window rows were
    // packed), timed against the rows above.
    check_sparse_attention(env, Numerics{}, 1, 64, 512, 128, 512, true, false, false,
                           {.rows_per_block = 64, .fp8_rows = true, .f32_window = true});
    check_sparse_attention(env, Numerics{}, 64, 64, 512, 128, 512, true, false, false,
                           {.n_seq = 64, .rows_per_block = 64, .fp8_rows = true, .f32_window = true});
    check_sparse_attention(env, Numerics{}, 256, 64, 512, 128, 512, true, false, false,
                           {.n_seq = 256, .rows_per_block = 64, .fp8_rows = true, .f32_window = true});
    check_sparse_attention(env, Numerics{}, 2048, 64, 512, 128, 512, true, false, false,
                           {.n_seq = 1, .rows_per_block = 64, .fp8_rows = true});
  }
  check_pack_rows(env, 300, 128);
  check_pack_rows(env, 5, 64);
  check_pack_rows(env, 200, 1024);
  check_pack_rows(env, 300, 512, 64);  // Fp8Kv: Flash rows (584 B)
  check_pack_rows(env, 5, 128, 64);    // the tiny models' rows (200 B)
  check_pack_rows(env, 9, 96, 32);
  for (const Numerics& num : nums) {
    using R = backend::RowFinish::Round;
    check_finish_rows(env, num, "q heads", 3, 64, 512, false, {.norm = true, .rope_dim = 64});
    check_finish_rows(env, num, "kv", 5, 1, 512, true, {.norm = true, .rope_dim = 64, .round = R::Kv});
    check_finish_rows(env, num, "indexer q", 2, 64, 128, false, {.rope_dim = 64, .round = R::Indexer});
    check_finish_rows(env, num, "kv entries", 7, 1, 512, true,
                      {.round_input = true, .norm = true, .rope_dim = 64, .round = R::Kv});
    check_finish_rows(env, num, "indexer entries", 9, 1, 128, true,
                      {.round_input = true, .norm = true, .rope_dim = 64, .round = R::Indexer});
    check_finish_rows(env, num, "rows 300 (op sequence)", 300, 1, 512, true, {.norm = true, .rope_dim = 64});
  }
  check_softmax_pool(env, 37, 512);
  check_softmax_pool(env, 5, 128);
  check_copy_rows(env, 9, 512);
  for (auto dt : {backend::KvCacheDtype::Fp8, backend::KvCacheDtype::Bf16}) {
    HostTensor x = host_tensor({33, 512}, random_activations(env.rng, 33, 512));
    x.vec()[5] = NAN;  // one NaN block stays NaN
    check_bitwise(env, "kv_round", dt == backend::KvCacheDtype::Fp8 ? "fp8 rows=33 dim=512 rope=64" : "bf16",
                  std::move(x), [dt](backend::Ops& ops, Tensor& t) { ops.kv_round(t, 512, 64, dt); });
  }
  for (auto dt : {backend::IndexerDtype::Fp4, backend::IndexerDtype::Bf16}) {
    HostTensor x = host_tensor({64 * 3, 128}, random_activations(env.rng, 64 * 3, 128));
    check_bitwise(env, "indexer_round", dt == backend::IndexerDtype::Fp4 ? "fp4 rows=192 dim=128" : "bf16",
                  std::move(x), [dt](backend::Ops& ops, Tensor& t) { ops.indexer_round(t, 128, dt); });
  }
  // FP4 rounding at every warp-kernel width (dim <= 512: one warp per row) and above it (the block kernel), rows
  // not a multiple of a CTA's 8 warps, one row with a NaN (the whole row NaN after the rotation).
  for (const int64_t dim : {32, 64, 256, 512, 1024}) {
    HostTensor x = host_tensor({37, dim}, random_activations(env.rng, 37, dim));
    x.vec()[static_cast<size_t>(5 * dim + 3)] = NAN;
    check_bitwise(env, "indexer_round", fmt("fp4 rows=37 dim=%lld nan row", static_cast<long long>(dim)),
                  std::move(x), [dim](backend::Ops& ops, Tensor& t) {
                    ops.indexer_round(t, dim, backend::IndexerDtype::Fp4);
                  });
  }
  if (env.perf) {  // the prefill shape: indexer q of an 8192-token chunk (64 heads of 128)
    const int64_t rows = 8192 * 64;
    Tensor x = host_tensor({rows, 128}, random_activations(env.rng, rows, 128)).to(Device::Cuda);
    CudaOps gpu(Numerics{});
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.indexer_round(x, 128, backend::IndexerDtype::Fp4);
    });
    env.report.perf("indexer_round", "fp4 rows=524288 dim=128", t, rows * 128 * 8.0, 0.0, env.ceil);
  }
}

}  // namespace dsv4::gpu_test
