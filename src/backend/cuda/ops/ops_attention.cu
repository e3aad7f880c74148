// CudaOps attention-side ops (cuda_ops.h): sparse attention with sink, the indexer's scores + top-k, the
// compressor's softmax pooling, row copies, RoPE and the cache roundings. Each op turns its host plan data
// (pointer lists, positions, offsets) into stream-ordered uploads and launches the attention kernel family
// (backend/cuda/attention); only indexer_topk returns data to the host (its index lists, one download).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "backend/cuda/attention/launch.h"
#include "backend/cuda/attention/plan.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/check.h"

namespace dsv4::backend {
namespace {

void check_on_device(const Tensor& x, const char* op) {
  check(x.device() == Device::Cuda, std::string(op) + ": tensor is not on the CUDA device");
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

int32_t to_i32(int64_t v, const char* what) {
  check(v >= 0 && v <= INT32_MAX, std::string(what) + " " + std::to_string(v) + " out of the 32-bit range");
  return static_cast<int32_t>(v);
}

}  // namespace

void CudaOps::sparse_attention(std::span<const AttentionQuery> queries, int64_t n_heads, int64_t dim,
                               const Weight& sink, float scale, Tensor& out) {
  const int64_t nq = static_cast<int64_t>(queries.size());
  on_device(out, {nq, n_heads, dim});
  if (nq == 0) return;
  check(sink.rows() == n_heads, "sparse_attention: sink " + sink.name + " has " + std::to_string(sink.rows()) +
                                    " entries, expected n_heads " + std::to_string(n_heads));
  std::vector<const float*> q_rows(static_cast<size_t>(nq)), keys;
  std::vector<int32_t> offsets(static_cast<size_t>(nq) + 1, 0);
  bool aligned = dim % 4 == 0;
  int64_t max_keys = 0;
  for (int64_t i = 0; i < nq; ++i) {
    const AttentionQuery& q = queries[static_cast<size_t>(i)];
    check(!q.keys.empty(), "sparse_attention: empty key list for query " + std::to_string(i));
    q_rows[static_cast<size_t>(i)] = q.q;
    aligned = aligned && aligned16(q.q);
    for (const float* k : q.keys) aligned = aligned && aligned16(k);
    keys.insert(keys.end(), q.keys.begin(), q.keys.end());
    max_keys = std::max<int64_t>(max_keys, static_cast<int64_t>(q.keys.size()));
    offsets[static_cast<size_t>(i) + 1] = to_i32(static_cast<int64_t>(keys.size()), "sparse_attention: key count");
  }
  const cuda::SparseAttnPlan plan =
      cuda::plan_sparse_attention(nq, n_heads, dim, max_keys, bf16_acts() && aligned, ctx_.sm_count());
  check(plan.unsupported.empty(), plan.unsupported);
  cuda::Scratch d_q = ctx_.upload(std::span<const float* const>(q_rows));
  cuda::Scratch d_keys = ctx_.upload(std::span<const float* const>(keys));
  cuda::Scratch d_offsets = ctx_.upload(std::span<const int32_t>(offsets));
  cuda::SparseAttnParams p;
  p.q_rows = d_q.as<const float* const>();
  p.keys = d_keys.as<const float* const>();
  p.key_offsets = d_offsets.as<const int32_t>();
  p.sink = dw_.f32(sink);
  p.out = out.data();
  p.n_q = to_i32(nq, "sparse_attention: n_q");
  p.n_heads = to_i32(n_heads, "sparse_attention: n_heads");
  p.dim = to_i32(dim, "sparse_attention: dim");
  p.scale = scale;
  p.round_bf16 = bf16_acts();
  p.n_split = plan.n_split;
  p.keys_per_split = plan.keys_per_split;
  cuda::Scratch part_o, part_ml;
  if (plan.n_split > 1) {
    const size_t rows = static_cast<size_t>(nq * n_heads * plan.n_split);
    part_o = cuda::Scratch(rows * static_cast<size_t>(dim) * sizeof(float));
    part_ml = cuda::Scratch(rows * 2 * sizeof(float));
    p.part_o = part_o.as<float>();
    p.part_ml = part_ml.as<float>();
  }
  cuda::launch_sparse_attention(p, plan, ctx_.stream());
}

void CudaOps::indexer_topk(const Tensor& q, const Tensor& w, std::span<const float* const> keys,
                           std::span<const int64_t> n_keys, int64_t n_heads, int64_t head_dim, int64_t top_k,
                           std::vector<std::vector<int64_t>>& selected) {
  const int64_t T = static_cast<int64_t>(n_keys.size());
  selected.assign(static_cast<size_t>(T), {});
  if (T == 0) return;
  check_on_device(q, "indexer_topk");
  check_on_device(w, "indexer_topk");
  check(q.numel() == T * n_heads * head_dim, "indexer_topk: q has " + std::to_string(q.numel()) +
                                                  " values, expected T x n_heads x head_dim");
  check(w.numel() == T * n_heads, "indexer_topk: w has " + std::to_string(w.numel()) + " values, expected T x n_heads");
  std::vector<int32_t> nk(static_cast<size_t>(T));
  int64_t max_keys = 0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t n = n_keys[static_cast<size_t>(t)];
    check(n >= 0 && n <= static_cast<int64_t>(keys.size()),
          "indexer_topk: n_keys " + std::to_string(n) + " exceeds the " + std::to_string(keys.size()) + " keys");
    nk[static_cast<size_t>(t)] = to_i32(n, "indexer_topk: n_keys");
    max_keys = std::max(max_keys, n);
  }
  if (max_keys == 0) return;
  const cuda::IndexerPlan plan = cuda::plan_indexer(T, max_keys, n_heads, head_dim, top_k);
  check(plan.unsupported.empty(), plan.unsupported);
  cuda::Scratch d_keys = ctx_.upload(keys.first(static_cast<size_t>(max_keys)));
  cuda::Scratch d_nk = ctx_.upload(std::span<const int32_t>(nk));
  const int64_t rows = std::min<int64_t>(plan.rows_per_chunk, 65535);
  cuda::Scratch scores(static_cast<size_t>(rows * max_keys) * sizeof(float));
  cuda::Scratch d_out(static_cast<size_t>(T * top_k) * sizeof(int32_t));
  for (int64_t r0 = 0; r0 < T; r0 += rows) {
    const int32_t nr = static_cast<int32_t>(std::min(rows, T - r0));
    cuda::IndexerScoreParams sp;
    sp.q = q.data() + r0 * n_heads * head_dim;
    sp.w = w.data() + r0 * n_heads;
    sp.keys = d_keys.as<const float* const>();
    sp.n_keys = d_nk.as<const int32_t>() + r0;
    sp.scores = scores.as<float>();
    sp.ld = max_keys;
    sp.T = nr;
    sp.max_keys = static_cast<int32_t>(max_keys);
    sp.n_heads = to_i32(n_heads, "indexer_topk: n_heads");
    sp.head_dim = to_i32(head_dim, "indexer_topk: head_dim");
    sp.round_bf16 = bf16_acts();
    cuda::launch_indexer_scores(sp, plan.score_smem, ctx_.stream());
    cuda::TopkParams tp;
    tp.scores = scores.as<const float>();
    tp.n_keys = sp.n_keys;
    tp.out = d_out.as<int32_t>() + r0 * top_k;
    tp.ld = max_keys;
    tp.T = nr;
    tp.top_k = static_cast<int32_t>(top_k);
    cuda::launch_topk(tp, ctx_.stream());
  }
  std::vector<int32_t> host(static_cast<size_t>(T * top_k));
  ctx_.download_bytes(host.data(), d_out.data(), host.size() * sizeof(int32_t));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t k = std::min<int64_t>(top_k, n_keys[static_cast<size_t>(t)]);
    const int32_t* r = host.data() + t * top_k;
    selected[static_cast<size_t>(t)].assign(r, r + k);
  }
}

void CudaOps::softmax_pool(std::span<const float* const> a_rows, std::span<const float* const> g_rows,
                           std::span<const int64_t> offsets, int64_t dim, Tensor& out) {
  check(a_rows.size() == g_rows.size(), "softmax_pool: candidate lists differ");
  check(!offsets.empty() && offsets.front() == 0 && offsets.back() == static_cast<int64_t>(a_rows.size()),
        "softmax_pool: bad offsets");
  const int64_t n = static_cast<int64_t>(offsets.size()) - 1;
  for (int64_t i = 0; i < n; ++i)
    check(offsets[static_cast<size_t>(i) + 1] > offsets[static_cast<size_t>(i)],
          "softmax_pool: an entry without candidates");
  on_device(out, {n, dim});
  if (n == 0) return;
  cuda::Scratch d_a = ctx_.upload(a_rows), d_g = ctx_.upload(g_rows), d_off = ctx_.upload(offsets);
  cuda::SoftmaxPoolParams p;
  p.a_rows = d_a.as<const float* const>();
  p.g_rows = d_g.as<const float* const>();
  p.offsets = d_off.as<const int64_t>();
  p.out = out.data();
  p.n = to_i32(n, "softmax_pool: entries");
  p.dim = to_i32(dim, "softmax_pool: dim");
  cuda::launch_softmax_pool(p, ctx_.stream());
}

// Copies run in segments with no destination aliasing a source or another destination of the same segment
// (exact row pointers), so a later copy to the same row wins and a copy reading an earlier copy's output sees it.
void CudaOps::copy_rows(std::span<const float* const> src, std::span<float* const> dst, int64_t width) {
  check(src.size() == dst.size(), "copy_rows: source and destination lists differ in length");
  const int32_t w = to_i32(width, "copy_rows: width");
  auto run = [&](size_t b, size_t e) {
    if (e <= b) return;
    cuda::Scratch d_src = ctx_.upload(src.subspan(b, e - b));
    cuda::Scratch d_dst = ctx_.upload(dst.subspan(b, e - b));
    cuda::CopyRowsParams p;
    p.src = d_src.as<const float* const>();
    p.dst = d_dst.as<float* const>();
    p.n = to_i32(static_cast<int64_t>(e - b), "copy_rows: rows");
    p.width = w;
    cuda::launch_copy_rows(p, ctx_.stream());
  };
  std::unordered_set<const float*> seg_src, seg_dst;
  size_t b = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    if (seg_dst.count(src[i]) || seg_dst.count(dst[i]) || seg_src.count(dst[i])) {
      run(b, i);
      b = i;
      seg_src.clear();
      seg_dst.clear();
    }
    seg_src.insert(src[i]);
    seg_dst.insert(dst[i]);
  }
  run(b, src.size());
}

void CudaOps::rope(Tensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos, const RopeTable& table,
                   bool inverse) {
  check_on_device(x, "rope");
  check(dim > 0 && x.numel() % dim == 0 && rope_dim <= dim && rope_dim % 2 == 0, "rope: bad dims");
  check(static_cast<int64_t>(table.freqs.size()) == rope_dim / 2, "rope: table size mismatch");
  const int64_t T = static_cast<int64_t>(pos.size());
  check(T > 0 && x.numel() % (T * dim) == 0, "rope: rows do not match positions");
  cuda::Scratch d_pos = ctx_.upload(pos);
  cuda::Scratch d_freqs = ctx_.upload(std::span<const float>(table.freqs));
  cuda::RopeParams p;
  p.x = x.data();
  p.pos = d_pos.as<const int64_t>();
  p.freqs = d_freqs.as<const float>();
  p.T = T;
  p.segs = to_i32(x.numel() / (T * dim), "rope: segments");
  p.dim = to_i32(dim, "rope: dim");
  p.rope_dim = to_i32(rope_dim, "rope: rope_dim");
  p.inverse = inverse;
  p.round_bf16 = bf16_acts();
  cuda::launch_rope(p, ctx_.stream());
}

void CudaOps::kv_round(Tensor& x, int64_t dim, int64_t rope_dim, KvCacheDtype dt) {
  if (dt == KvCacheDtype::F32 || x.numel() == 0) return;
  check_on_device(x, "kv_round");
  check(dim > 0 && x.numel() % dim == 0 && rope_dim >= 0 && rope_dim <= dim, "kv_round: bad dims");
  cuda::KvRoundParams p;
  p.x = x.data();
  p.n_rows = x.numel() / dim;
  p.dim = to_i32(dim, "kv_round: dim");
  p.nope = static_cast<int32_t>(dim - rope_dim);
  p.fp8 = dt == KvCacheDtype::Fp8;
  cuda::launch_kv_round(p, ctx_.stream());
}

void CudaOps::indexer_round(Tensor& x, int64_t dim, IndexerDtype dt) {
  if (dt == IndexerDtype::F32 || x.numel() == 0) return;
  check_on_device(x, "indexer_round");
  check(dim > 0 && x.numel() % dim == 0, "indexer_round: size not a multiple of dim");
  if (dt == IndexerDtype::Bf16) {
    cuda::KvRoundParams p;  // plain bf16 rounding of every value
    p.x = x.data();
    p.n_rows = x.numel() / dim;
    p.dim = to_i32(dim, "indexer_round: dim");
    cuda::launch_kv_round(p, ctx_.stream());
    return;
  }
  cuda::IndexerRoundParams p;
  p.x = x.data();
  p.n_rows = x.numel() / dim;
  p.dim = to_i32(dim, "indexer_round: dim");
  p.hadamard_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim)));
  cuda::launch_indexer_round(p, ctx_.stream());
}

}  // namespace dsv4::backend
