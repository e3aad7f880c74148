// CudaOps attention-side ops (cuda_ops.h): sparse attention with sink, the indexer's scores + top-k, the
// compressor's softmax pooling, row copies, RoPE and the cache roundings. Each op turns its host plan data
// (pointer lists, positions, offsets) into stream-ordered uploads and launches the attention kernel family
// (backend/cuda/attention); only indexer_topk returns data to the host (its index lists, one download).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <unordered_set>
#include <vector>

#include "backend/cuda/attention/launch.h"
#include "backend/cuda/attention/plan.h"
#include "backend/cuda/attention/rowwise.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "backend/cuda/common/kernel_paths.h"
#include "core/check.h"

namespace dsv4::backend {
namespace {

void check_on_device(const Tensor& x, const char* op) {
  check(x.device() == Device::Cuda, std::string(op) + ": tensor is not on the CUDA device");
}

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
  // One host buffer, one allocation, one upload per call: [key offsets i32 (nq + 1), padded to 8 bytes]
  // [q row pointers (nq)] [key pointers] then, on the device only, the split-K partials.
  size_t n_keys_total = 0;
  for (const AttentionQuery& q : queries) n_keys_total += q.keys.size();
  const size_t off_words = (static_cast<size_t>(nq) + 2) / 2;  // 8-byte words holding nq + 1 int32
  // Reused across calls (no allocation or zero fill of the ~2 KB-per-query pointer list at decode).
  static thread_local std::vector<uint64_t> host;
  host.resize(off_words + static_cast<size_t>(nq) + n_keys_total);
  int32_t* offsets = reinterpret_cast<int32_t*>(host.data());
  const float** q_rows = reinterpret_cast<const float**>(host.data() + off_words);
  const float** keys = q_rows + nq;
  bool aligned = dim % 4 == 0;
  int64_t max_keys = 0;
  size_t nk = 0;
  offsets[0] = 0;
  for (int64_t i = 0; i < nq; ++i) {
    const AttentionQuery& q = queries[static_cast<size_t>(i)];
    check(!q.keys.empty(), "sparse_attention: empty key list for query " + std::to_string(i));
    q_rows[i] = q.q;
    std::copy(q.keys.begin(), q.keys.end(), keys + nk);
    uintptr_t bits = reinterpret_cast<uintptr_t>(q.q);
    for (const float* k : q.keys) bits |= reinterpret_cast<uintptr_t>(k);
    nk += q.keys.size();
    aligned = aligned && bits % 16 == 0;
    max_keys = std::max<int64_t>(max_keys, static_cast<int64_t>(q.keys.size()));
    offsets[i + 1] = to_i32(static_cast<int64_t>(nk), "sparse_attention: key count");
  }
  // kernel_paths().sparse_attn_wide = false forces the previous 16-head tensor-core kernel.
  const bool allow_wide = cuda::kernel_paths().sparse_attn_wide;
  const cuda::SparseAttnPlan plan = cuda::plan_sparse_attention(nq, n_heads, dim, max_keys, bf16_acts() && aligned,
                                                                ctx_.sm_count(), allow_wide);
  check(plan.unsupported.empty(), plan.unsupported);
  const size_t list_bytes = host.size() * sizeof(uint64_t);
  size_t part_rows = 0;
  if (plan.n_split > 1) part_rows = static_cast<size_t>(nq * n_heads * plan.n_split);
  const size_t ml_off = (list_bytes + 255) / 256 * 256;
  const size_t po_off = ml_off + (part_rows * 2 * sizeof(float) + 255) / 256 * 256;
  cuda::Scratch buf(po_off + part_rows * static_cast<size_t>(dim) * sizeof(float));
  ctx_.upload_bytes(buf.data(), host.data(), list_bytes);
  unsigned char* base = static_cast<unsigned char*>(buf.data());
  cuda::SparseAttnParams p;
  p.key_offsets = reinterpret_cast<const int32_t*>(base);
  p.q_rows = reinterpret_cast<const float* const*>(base + off_words * sizeof(uint64_t));
  p.keys = p.q_rows + nq;
  p.sink = dw_.f32(sink);
  p.out = out.data();
  p.n_q = to_i32(nq, "sparse_attention: n_q");
  p.n_heads = to_i32(n_heads, "sparse_attention: n_heads");
  p.dim = to_i32(dim, "sparse_attention: dim");
  p.scale = scale;
  p.round_bf16 = bf16_acts();
  p.n_split = plan.n_split;
  p.keys_per_split = plan.keys_per_split;
  if (plan.n_split > 1) {
    p.part_ml = reinterpret_cast<float*>(base + ml_off);
    p.part_o = reinterpret_cast<float*>(base + po_off);
  }
  cuda::launch_sparse_attention(p, plan, ctx_.stream());
}

void CudaOps::indexer_topk(const Tensor& q, const Tensor& w, std::span<const float* const> keys,
                           std::span<const int64_t> key_begin, std::span<const int64_t> n_keys, int64_t n_heads,
                           int64_t head_dim, int64_t top_k, std::vector<std::vector<int64_t>>& selected) {
  const int64_t T = static_cast<int64_t>(n_keys.size());
  selected.assign(static_cast<size_t>(T), {});
  if (T == 0) return;
  check(key_begin.size() == n_keys.size(), "indexer_topk: key_begin and n_keys differ in length");
  check_on_device(q, "indexer_topk");
  check_on_device(w, "indexer_topk");
  check(q.numel() == T * n_heads * head_dim, "indexer_topk: q has " + std::to_string(q.numel()) +
                                                  " values, expected T x n_heads x head_dim");
  check(w.numel() == T * n_heads, "indexer_topk: w has " + std::to_string(w.numel()) + " values, expected T x n_heads");
  // One device buffer: [key_begin i64 (T)] [n_keys i32 (T), padded to 8 bytes] [key pointers (used)] [scores]
  // [out] [segment candidates]; two uploads (the row table from a host buffer, the key pointers straight from
  // `keys`). Only the prefix of `keys` that some row reaches is uploaded.
  int64_t max_keys = 0, used = 0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t b = key_begin[static_cast<size_t>(t)], n = n_keys[static_cast<size_t>(t)];
    check(b >= 0 && n >= 0 && b + n <= static_cast<int64_t>(keys.size()),
          "indexer_topk: row " + std::to_string(t) + " key list [" + std::to_string(b) + ", " +
              std::to_string(b + n) + ") outside the " + std::to_string(keys.size()) + " keys");
    to_i32(n, "indexer_topk: n_keys");
    max_keys = std::max(max_keys, n);
    if (n > 0) used = std::max(used, b + n);
  }
  if (max_keys == 0) return;
  // kernel_paths().indexer_fast = false runs the previous kernels (fallback, before/after timing).
  const bool legacy = !cuda::kernel_paths().indexer_fast;
  cuda::IndexerPlan plan = cuda::plan_indexer(T, max_keys, n_heads, head_dim, top_k, ctx_.sm_count(), legacy);
  check(plan.unsupported.empty(), plan.unsupported);
  const size_t nk_words = (static_cast<size_t>(T) + 1) / 2;
  static thread_local std::vector<uint64_t> host;
  host.resize(static_cast<size_t>(T) + nk_words);
  int64_t* h_begin = reinterpret_cast<int64_t*>(host.data());
  int32_t* h_nk = reinterpret_cast<int32_t*>(host.data() + T);
  uintptr_t bits = 0;
  for (int64_t t = 0; t < T; ++t) {
    h_begin[t] = key_begin[static_cast<size_t>(t)];
    h_nk[t] = static_cast<int32_t>(n_keys[static_cast<size_t>(t)]);
  }
  if (T % 2) h_nk[T] = 0;
  for (int64_t s = 0; s < used; ++s) bits |= reinterpret_cast<uintptr_t>(keys[static_cast<size_t>(s)]);
  const int64_t rows = plan.rows_per_chunk;
  const int64_t top_k_i = top_k;
  const size_t table_bytes = host.size() * sizeof(uint64_t);
  const size_t list_bytes = table_bytes + static_cast<size_t>(used) * sizeof(const float*);
  const size_t scores_off = (list_bytes + 255) / 256 * 256;
  const size_t scores_bytes = static_cast<size_t>(rows * max_keys) * sizeof(float);
  const size_t out_off = scores_off + (scores_bytes + 255) / 256 * 256;
  const size_t out_bytes = static_cast<size_t>(T * top_k) * sizeof(int32_t);
  const int64_t cand_ld = plan.segmented_topk && plan.n_seg > 1 ? int64_t(plan.n_seg) * top_k : 0;
  const size_t cand_key_off = out_off + (out_bytes + 255) / 256 * 256;
  const size_t cand_bytes = static_cast<size_t>(rows * cand_ld) * 4;
  const size_t cand_idx_off = cand_key_off + (cand_bytes + 255) / 256 * 256;
  cuda::Scratch buf(cand_idx_off + cand_bytes);
  unsigned char* base = static_cast<unsigned char*>(buf.data());
  ctx_.upload_bytes(base, host.data(), table_bytes);
  ctx_.upload_bytes(base + table_bytes, keys.data(), static_cast<size_t>(used) * sizeof(const float*));
  const int64_t* d_begin = reinterpret_cast<const int64_t*>(base);
  const int32_t* d_nk = reinterpret_cast<const int32_t*>(base + static_cast<size_t>(T) * 8);
  const float* const* d_keys = reinterpret_cast<const float* const*>(base + (static_cast<size_t>(T) + nk_words) * 8);
  float* d_scores = reinterpret_cast<float*>(base + scores_off);
  int32_t* d_out = reinterpret_cast<int32_t*>(base + out_off);
  for (int64_t r0 = 0; r0 < T; r0 += rows) {
    const int32_t nr = static_cast<int32_t>(std::min(rows, T - r0));
    cuda::IndexerScoreParams sp;
    sp.q = q.data() + r0 * n_heads * head_dim;
    sp.w = w.data() + r0 * n_heads;
    sp.keys = d_keys;
    sp.key_begin = d_begin + r0;
    sp.n_keys = d_nk + r0;
    sp.scores = d_scores;
    sp.ld = max_keys;
    sp.T = nr;
    sp.max_keys = static_cast<int32_t>(max_keys);
    sp.n_heads = to_i32(n_heads, "indexer_topk: n_heads");
    sp.head_dim = to_i32(head_dim, "indexer_topk: head_dim");
    sp.round_bf16 = bf16_acts();
    sp.vec4 = head_dim % 4 == 0 && bits % 16 == 0;
    cuda::launch_indexer_scores(sp, plan, ctx_.stream());
    if (plan.segmented_topk) {
      cuda::TopkSegParams tp;
      tp.scores = d_scores;
      tp.n_keys = sp.n_keys;
      tp.out = d_out + r0 * top_k_i;
      tp.cand_key = cand_ld ? reinterpret_cast<uint32_t*>(base + cand_key_off) : nullptr;
      tp.cand_idx = cand_ld ? reinterpret_cast<int32_t*>(base + cand_idx_off) : nullptr;
      tp.ld = max_keys;
      tp.cand_ld = cand_ld;
      tp.T = nr;
      tp.top_k = static_cast<int32_t>(top_k);
      tp.n_seg = plan.n_seg;
      cuda::launch_topk_segmented(tp, ctx_.stream());
    } else {
      cuda::TopkParams tp;
      tp.scores = d_scores;
      tp.n_keys = sp.n_keys;
      tp.out = d_out + r0 * top_k_i;
      tp.ld = max_keys;
      tp.T = nr;
      tp.top_k = static_cast<int32_t>(top_k);
      cuda::launch_topk(tp, ctx_.stream());
    }
  }
  std::vector<int32_t> host_out(static_cast<size_t>(T * top_k));
  ctx_.download_bytes(host_out.data(), d_out, host_out.size() * sizeof(int32_t));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t k = std::min<int64_t>(top_k, n_keys[static_cast<size_t>(t)]);
    const int32_t* r = host_out.data() + t * top_k;
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
// A segment of up to 4 x kCopyInlineMaxRows rows runs as launches with the pointers in the parameters (no
// upload; kernel_paths().copy_rows_inline = false: the uploaded lists); longer ones upload their lists.
void CudaOps::copy_rows(std::span<const float* const> src, std::span<float* const> dst, int64_t width) {
  check(src.size() == dst.size(), "copy_rows: source and destination lists differ in length");
  const int32_t w = to_i32(width, "copy_rows: width");
  const bool inline_lists = cuda::kernel_paths().copy_rows_inline;
  auto run = [&](size_t b, size_t e) {
    if (e <= b || w == 0) return;
    if (inline_lists && e - b <= 4 * static_cast<size_t>(cuda::kCopyInlineMaxRows)) {
      for (size_t c0 = b; c0 < e; c0 += cuda::kCopyInlineMaxRows) {
        const size_t c1 = std::min(e, c0 + cuda::kCopyInlineMaxRows);
        cuda::CopyRowsInlineParams p;
        p.n = static_cast<int32_t>(c1 - c0);
        p.width = w;
        uintptr_t bits = 0;
        for (size_t i = c0; i < c1; ++i) {
          p.src[i - c0] = src[i];
          p.dst[i - c0] = dst[i];
          bits |= reinterpret_cast<uintptr_t>(src[i]) | reinterpret_cast<uintptr_t>(dst[i]);
        }
        p.vec4 = w % 4 == 0 && bits % 16 == 0;
        cuda::copy_rows_inline_kernel<cuda::kCopyInlineThreads>
            <<<static_cast<unsigned>(p.n), cuda::kCopyInlineThreads, 0, ctx_.stream()>>>(p);
        DSV4_CUDA_CHECK_LAUNCH();
      }
      return;
    }
    cuda::Scratch d_src = ctx_.upload(src.subspan(b, e - b));
    cuda::Scratch d_dst = ctx_.upload(dst.subspan(b, e - b));
    cuda::CopyRowsParams p;
    p.src = d_src.as<const float* const>();
    p.dst = d_dst.as<float* const>();
    p.n = to_i32(static_cast<int64_t>(e - b), "copy_rows: rows");
    p.width = w;
    cuda::launch_copy_rows(p, ctx_.stream());
  };
  if (src.size() <= 32) {  // short lists (decode): the same segmentation by a linear scan, no hash sets
    size_t b = 0;
    for (size_t i = 0; i < src.size(); ++i) {
      bool conflict = false;
      for (size_t j = b; j < i && !conflict; ++j)
        conflict = dst[j] == src[i] || dst[j] == dst[i] || src[j] == dst[i];
      if (conflict) {
        run(b, i);
        b = i;
      }
    }
    run(b, src.size());
    return;
  }
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

// Up to kRopeInlineMaxRows rows (decode): positions and frequencies travel in the kernel parameters (one launch,
// no upload; kernel_paths().rope_inline = false: the uploaded arrays and rope_kernel). Bitwise the same results.
void CudaOps::rope(Tensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos, const RopeTable& table,
                   bool inverse) {
  check_on_device(x, "rope");
  check(dim > 0 && x.numel() % dim == 0 && rope_dim <= dim && rope_dim % 2 == 0, "rope: bad dims");
  check(static_cast<int64_t>(table.freqs.size()) == rope_dim / 2, "rope: table size mismatch");
  const int64_t T = static_cast<int64_t>(pos.size());
  check(T > 0 && x.numel() % (T * dim) == 0, "rope: rows do not match positions");
  const int64_t np = rope_dim / 2;
  const int64_t segs = x.numel() / (T * dim);
  if (cuda::kernel_paths().rope_inline && T <= cuda::kRopeInlineMaxRows && np <= cuda::kRopeInlineMaxPairs) {
    if (np == 0 || segs == 0) return;
    cuda::RopeInlineParams p;
    p.x = x.data();
    p.T = T;
    p.segs = to_i32(segs, "rope: segments");
    p.dim = to_i32(dim, "rope: dim");
    p.rope_dim = static_cast<int32_t>(rope_dim);
    p.segs_per_cta = static_cast<int32_t>(std::max<int64_t>(1, cuda::kRopeInlineThreads / np));
    p.inverse = inverse;
    p.round_bf16 = bf16_acts();
    for (int64_t t = 0; t < T; ++t) p.pos[t] = static_cast<float>(pos[static_cast<size_t>(t)]);
    for (int64_t i = 0; i < np; ++i) p.freqs[i] = table.freqs[static_cast<size_t>(i)];
    const int64_t groups = (segs + p.segs_per_cta - 1) / p.segs_per_cta;
    check(groups <= 65535, "rope: " + std::to_string(segs) + " segments per row out of range");
    cuda::rope_inline_kernel<cuda::kRopeInlineThreads>
        <<<dim3(static_cast<unsigned>(T), static_cast<unsigned>(groups)), cuda::kRopeInlineThreads, 0,
           ctx_.stream()>>>(p);
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  cuda::Scratch d_pos = ctx_.upload(pos);
  cuda::Scratch d_freqs = ctx_.upload(std::span<const float>(table.freqs));
  cuda::RopeParams p;
  p.x = x.data();
  p.pos = d_pos.as<const int64_t>();
  p.freqs = d_freqs.as<const float>();
  p.T = T;
  p.segs = to_i32(segs, "rope: segments");
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
