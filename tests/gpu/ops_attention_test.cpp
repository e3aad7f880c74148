// CudaOps attention family vs CpuOps (src/backend/cpu/cpu_attention.cpp and cpu_elementwise.cpp are the spec),
// both numerics (official: Bf16 acts, FP8 KV, FP4 indexer; exact_f32) on fresh random inputs with NaN-poisoned
// outputs:
//  * sparse_attention: tiny (4 heads x 128, ragged key lists), the generic kernel (dim 96),
//    Flash decode (64 heads x 512, 128 window + 512 compressed keys; batch 1 = split-K, batch 64), the wide
//    (64 heads per CTA) kernel on ragged lists, two head groups and without split, and the previous 16-head
//    kernel (DSV4_SPARSE_ATTN_NARROW=1, "narrow" rows) at the Flash decode shapes for before/after;
//  * indexer_topk: tiny and Flash (64 heads x 128, top-512) rows, one or several sequences per call (own key
//    lists of different lengths, key_begin per row), rows of 1..5 top-k segments (8192 keys each: the merge
//    stage), and the previous kernels (DSV4_INDEXER_LEGACY=1); the index lists must match exactly (the
//    kernels reproduce the reference's score arithmetic bit for bit), including rows with n_keys <= top_k;
//  * softmax_pool, copy_rows (with a repeated destination: the later copy wins), rope (forward and inverse,
//    positions up to 1M), kv_round (Fp8 / Bf16, bitwise), indexer_round (Fp4 / Bf16, bitwise).
// Timing rows: sparse_attention Flash decode batch 1 and 64 (wide and narrow), 256 and a 2048-query prefill; indexer_topk Flash
// decode at 4K context batch 1 and 64 (one call), 1M context (262144 keys, one query, top-512) and a
// 1024-query prefill chunk, each also with the previous kernels ("legacy").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/ops/context.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/dtype.h"
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

// narrow: run the previous 16-head tensor-core kernel instead of the wide (64-head) one.
void check_sparse_attention(Env& env, const Numerics& num, int64_t n_q, int64_t H, int64_t d, int64_t window,
                            int64_t compressed, bool timed, bool check_ref = true, bool narrow = false) {
  const NarrowAttention narrow_env(narrow);
  const bool bf = is_bf16(num);
  const int64_t pool_rows = n_q * window + std::max<int64_t>(compressed * 2, 1);
  const std::string detail = fmt("%s nq=%lld H=%lld d=%lld keys<=%lld%s", num_name(num), (long long)n_q,
                                 (long long)H, (long long)d, (long long)(window + compressed),
                                 narrow ? " narrow" : "");
  HostTensor pool = host_tensor({pool_rows, d}, values(env, size_t(pool_rows * d), 1.0f, bf));
  HostTensor q = host_tensor({n_q, H, d}, values(env, size_t(n_q * H * d), 1.0f, bf));
  std::vector<float> sink_v = values(env, size_t(H), 1.0f, false);
  weights::Weight sink;
  sink.name = "attn_sink";
  sink.shape = {H};
  sink.data = sink_v.data();
  const Tensor dpool = pool.to(Device::Cuda), dq = q.to(Device::Cuda);
  // Key lists (row indices into the pool): this query's window rows, then compressed rows in a shuffled order;
  // ragged lengths for the tiny shapes.
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(n_q));
  std::uniform_int_distribution<int64_t> pick(n_q * window, pool_rows - 1);
  for (int64_t i = 0; i < n_q; ++i) {
    auto& r = rows[size_t(i)];
    const int64_t w = window > 8 && !timed ? 1 + (i * 37) % window : window;
    for (int64_t j = 0; j < w; ++j) r.push_back(i * window + j);
    for (int64_t j = 0; j < compressed; ++j) r.push_back(pick(env.rng));
  }
  std::vector<std::vector<const float*>> hk(rows.size()), dk(rows.size());
  std::vector<AttentionQuery> hq(rows.size()), dqs(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t r : rows[i]) {
      hk[i].push_back(pool.row(r));
      dk[i].push_back(dpool.row(r));
    }
    hq[i] = {q.row(int64_t(i)), hk[i]};
    dqs[i] = {dq.row(int64_t(i)), dk[i]};
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  CudaOps gpu(num);
  Tensor out(Device::Cuda, {n_q, H, d});
  out.resize({n_q, H, d}, NAN);
  gpu.sparse_attention(dqs, H, d, sink, scale, out);
  if (check_ref) {
    CpuOps cpu(num);
    HostTensor ref;
    cpu.sparse_attention(hq, H, d, sink, scale, ref);
    const std::vector<float> got = download(out);
    env.report.check("sparse_attention", detail, compare(got.data(), ref.data(), got.size()),
                     bf ? kTolAttentionBf16 : 1e-5);
  }
  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.sparse_attention(dqs, H, d, sink, scale, out);
    });
    const double keys = double(n_q) * double(window + compressed);
    env.report.perf("sparse_attention", detail, t, keys * d * 4 + 2.0 * n_q * H * d * 4,
                    4.0 * keys * H * d, env.ceil);
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

// n_seq sequences in one call, each with its own key list (concatenated; key_begin per row) and `rows` query
// rows. Sequence 0 has n_max keys, sequence j > 0 fewer (n_max·(n_seq + 1 - j)/(n_seq + 1), at least 1), so the
// lists differ in length and content. Within a sequence row r sees n_max_j·(r+1)/rows keys (all of them when
// rows == 1); with rows > 2 its first row sees fewer keys than top_k. legacy: the previous kernels.
void check_indexer(Env& env, const Numerics& num, int64_t n_seq, int64_t rows, int64_t nh, int64_t hd,
                   int64_t n_max, int64_t top_k, bool timed, bool check_ref = true, bool legacy = false) {
  const bool bf = is_bf16(num);
  const int64_t T = n_seq * rows;
  const std::string detail =
      fmt("%s%s seqs=%lld T=%lld heads=%lld hd=%lld keys<=%lld k=%lld", num_name(num), legacy ? " legacy" : "",
          (long long)n_seq, (long long)T, (long long)nh, (long long)hd, (long long)n_max, (long long)top_k);
  std::vector<int64_t> seq_keys(static_cast<size_t>(n_seq)), seq_begin(static_cast<size_t>(n_seq));
  int64_t total = 0;
  for (int64_t j = 0; j < n_seq; ++j) {
    seq_keys[size_t(j)] = j == 0 ? n_max : std::max<int64_t>(1, n_max * (n_seq + 1 - j) / (n_seq + 1));
    seq_begin[size_t(j)] = total;
    total += seq_keys[size_t(j)];
  }
  HostTensor keys = host_tensor({total, hd}, values(env, size_t(total * hd), 0.5f, bf));
  HostTensor q = host_tensor({T, nh, hd}, values(env, size_t(T * nh * hd), 0.5f, bf));
  HostTensor w = host_tensor({T, nh}, values(env, size_t(T * nh), 0.1f, bf));
  const Tensor dkeys = keys.to(Device::Cuda), dq = q.to(Device::Cuda), dw = w.to(Device::Cuda);
  std::vector<const float*> hk(static_cast<size_t>(total)), dk(static_cast<size_t>(total));
  for (int64_t s = 0; s < total; ++s) {
    hk[size_t(s)] = keys.row(s);
    dk[size_t(s)] = dkeys.row(s);
  }
  std::vector<int64_t> n_keys(static_cast<size_t>(T)), key_begin(static_cast<size_t>(T));
  for (int64_t j = 0; j < n_seq; ++j) {
    const int64_t L = seq_keys[size_t(j)];
    for (int64_t r = 0; r < rows; ++r) {
      const size_t t = size_t(j * rows + r);
      key_begin[t] = seq_begin[size_t(j)];
      n_keys[t] = rows == 1 ? L : std::max<int64_t>(1, L * (r + 1) / rows);
      if (rows > 2 && r == 0) n_keys[t] = std::min<int64_t>(top_k / 2 + 1, L);  // fewer keys than top_k
    }
  }
  LegacyIndexer guard(legacy);
  CudaOps gpu(num);
  std::vector<std::vector<int64_t>> got;
  gpu.indexer_topk(dq, dw, dk, key_begin, n_keys, nh, hd, top_k, got);
  if (check_ref) {
    CpuOps cpu(num);
    std::vector<std::vector<int64_t>> ref;
    cpu.indexer_topk(q, w, hk, key_begin, n_keys, nh, hd, top_k, ref);
    size_t n = 0, bad = 0;
    for (int64_t t = 0; t < T; ++t) {
      const auto& a = got[size_t(t)];
      const auto& b = ref[size_t(t)];
      n += b.size();
      if (a.size() != b.size()) {
        bad += b.size();
        continue;
      }
      for (size_t j = 0; j < b.size(); ++j) bad += a[j] != b[j];
    }
    env.report.exact("indexer_topk", detail, n, bad);
  }
  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.indexer_topk(dq, dw, dk, key_begin, n_keys, nh, hd, top_k, got);
    });
    double pairs = 0;
    for (int64_t n : n_keys) pairs += double(n);
    env.report.perf("indexer_topk", detail, t, double(total) * hd * 4 + pairs * 4 * 5, 2.0 * pairs * nh * hd,
                    env.ceil);
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

}  // namespace

void test_ops_attention(Env& env) {
  const Numerics nums[2] = {Numerics{}, Numerics::exact_f32()};
  for (const Numerics& num : nums) {
    check_sparse_attention(env, num, 5, 4, 128, 128, 40, false);  // tiny, ragged windows
    check_sparse_attention(env, num, 3, 6, 96, 20, 7, false);     // generic kernel shape
    check_sparse_attention(env, num, 1, 64, 512, 128, 512, true);  // Flash decode, batch 1 (split-K)
    check_sparse_attention(env, num, 64, 64, 512, 128, 512, true);
    // The wide path runs from kAttnWideMinQueries (8) queries on.
    check_sparse_attention(env, num, 9, 64, 512, 128, 40, false);  // wide path, ragged windows, partial tiles
    check_sparse_attention(env, num, 8, 128, 512, 96, 300, false);  // wide path, two head groups, split-K
    check_sparse_attention(env, num, 3, 64, 512, 128, 40, false);   // few queries: the 16-head kernel
    check_sparse_attention(env, num, 264, 64, 512, 128, 8, false);  // wide path without split (2 waves)
    if (is_bf16(num)) {  // the previous 16-head kernel (fallback) for before/after
      check_sparse_attention(env, num, 1, 64, 512, 128, 512, true, true, true);
      check_sparse_attention(env, num, 64, 64, 512, 128, 512, true, true, true);
    }
    check_indexer(env, num, 1, 5, 4, 128, 300, 64, false);
    check_indexer(env, num, 1, 4, 64, 128, 4096, 512, false);
    check_indexer(env, num, 1, 2, 64, 128, 16384, 512, false);   // two top-k segments (merge stage)
    check_indexer(env, num, 3, 3, 4, 128, 300, 64, false);       // 3 sequences x 3 rows, tiny, ragged
    check_indexer(env, num, 6, 1, 64, 128, 20000, 512, false);   // 6 sequences: 1..3 segments, different lists
    check_indexer(env, num, 1, 1, 64, 128, 40000, 512, false);   // 5 segments
    check_indexer(env, num, 2, 3, 64, 128, 4096, 512, false, true, true);  // legacy kernels, batched call
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
}

}  // namespace dsv4::gpu_test
