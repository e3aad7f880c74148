// CudaOps attention-side ops (cuda_ops.h): sparse attention with sink, the indexer's scores + top-k, the
// compressor's softmax pooling, row copies, RoPE and the cache roundings. Each op turns its host plan data
// (pointer lists, row blocks, positions, offsets) into one stream-ordered upload per call and launches the
// attention kernel family (backend/cuda/attention). Nothing returns to the host: the indexer's selections stay
// in a device IndexTensor, and the per-entry key pointer lists of sparse_attention and indexer_topk are built
// on the device (resolve_rows_kernel) from the sequences' row blocks and those selections.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <unordered_set>
#include <vector>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/attention/finish_rows.cuh"
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
  check(x.device() == Device::Cuda, [&] { return std::string(op) + ": tensor is not on the CUDA device"; });
}

int32_t to_i32(int64_t v, const char* what) {
  check(v >= 0 && v <= INT32_MAX,
        [&] { return std::string(what) + " " + std::to_string(v) + " out of the 32-bit range"; });
  return static_cast<int32_t>(v);
}

template <typename T>
size_t words(size_t n) {
  return (n * sizeof(T) + 7) / 8;
}

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

// Index of the chunk holding each of n rows (chunks in order, covering [0, n)).
std::vector<int32_t> chunk_of_rows(std::span<const SeqEntries> seqs, int64_t n, const char* op) {
  std::vector<int32_t> of(static_cast<size_t>(n));
  int64_t next = 0;
  for (size_t c = 0; c < seqs.size(); ++c) {
    check(seqs[c].row_begin == next && seqs[c].n_rows >= 0 && next + seqs[c].n_rows <= n,
          [&] { return std::string(op) + ": chunk " + std::to_string(c) + " does not continue at row " + std::to_string(next); });
    for (int64_t r = 0; r < seqs[c].n_rows; ++r) of[static_cast<size_t>(next + r)] = static_cast<int32_t>(c);
    next += seqs[c].n_rows;
  }
  check(next == n,
        [&] { return std::string(op) + ": chunks cover " + std::to_string(next) + " rows, expected " + std::to_string(n); });
  return of;
}

// Per-chunk row-block descriptors and the concatenated block bases (host side of launch_resolve_rows).
struct BlockTable {
  std::vector<cuda::RowBlocksDesc> desc;  // [n_chunks]
  std::vector<const float*> blocks;
  uintptr_t bits = 0;  // OR of every block base and row stride in bytes (16-byte alignment test)
};

BlockTable block_table(std::span<const SeqEntries> seqs, const char* op) {
  BlockTable t;
  for (const SeqEntries& s : seqs) {
    const RowBlocks& rb = s.entries;
    check(rb.rows_per_block > 0 && rb.rows_per_block <= INT32_MAX && rb.stride >= 0,
          [&] { return std::string(op) + ": bad row blocks (" + std::to_string(rb.rows_per_block) + " rows per block)"; });
    t.desc.push_back({.stride = rb.stride, .block_begin = to_i32(static_cast<int64_t>(t.blocks.size()), op),
                      .rows_per_block = static_cast<int32_t>(rb.rows_per_block)});
    for (const float* b : rb.blocks) {
      t.blocks.push_back(b);
      t.bits |= reinterpret_cast<uintptr_t>(b);
    }
    t.bits |= static_cast<uintptr_t>(rb.stride * 4);
  }
  return t;
}

// The compressed entries' row format of a call (every chunk the same): F32 or Fp8Kv.
RowFormat entry_format(std::span<const SeqEntries> seqs, int64_t dim) {
  const RowFormat f = seqs.empty() ? RowFormat::F32 : seqs[0].entries.format;
  for (const SeqEntries& c : seqs) {
    check(c.entries.format == f, "sparse_attention: compressed row formats differ between chunks");
    check(f == RowFormat::F32 || (f == RowFormat::Fp8Kv && c.entries.rope_dim == seqs[0].entries.rope_dim),
          "sparse_attention: compressed entries must be f32 or Fp8Kv rows of one rope width");
  }
  if (f == RowFormat::Fp8Kv) {
    const int64_t rope = seqs[0].entries.rope_dim;
    check(fp8kv_shape_ok(dim, rope) && rope % 4 == 0,
          [&] { return "sparse_attention: Fp8Kv rows need (dim - rope_dim) % 64 == 0 and rope_dim % 4 == 0, got dim " +
                       std::to_string(dim) + ", rope_dim " + std::to_string(rope); });
  }
  return f;
}

// Host staging of one sparse_attention call, uploaded in one copy (sections in 8-byte words):
// [desc (nq)] [q rows (nq)] [window rows] [block bases] [key offsets i64 (nq + 1)] [key offsets i32 (nq + 1)]
// [window offsets i32 (nq + 1)]. Key list of query i: its window rows, then its n_compressed entries.
struct AttnStaging {
  size_t w_q = 0, w_win = 0, w_blk = 0, w_off64 = 0, w_off32 = 0, w_woff = 0, n_words = 0;
  int64_t n_keys = 0, max_keys = 0;
  bool aligned = false;
};

// The window rows' format of a call: F32, or Fp8Kv rows with the entries' RoPE width when those are Fp8Kv too.
bool fp8_window(const AttentionKeys& keys, int64_t dim, bool fp8_entries) {
  check(keys.window_format == RowFormat::F32 || keys.window_format == RowFormat::Fp8Kv,
        "sparse_attention: window rows must be f32 or Fp8Kv rows");
  if (keys.window_format == RowFormat::F32) return false;
  const int64_t rope = keys.window_rope_dim;
  check(fp8kv_shape_ok(dim, rope) && rope < dim && rope % 4 == 0 &&
            (!fp8_entries || rope == keys.seqs[0].entries.rope_dim),
        [&] { return "sparse_attention: Fp8Kv window rows need (dim - rope_dim) % 64 == 0, rope_dim % 4 == 0 and "
                     "the entries' rope_dim, got dim " + std::to_string(dim) + ", rope_dim " + std::to_string(rope); });
  return true;
}

AttnStaging stage_attention(const AttentionKeys& keys, int64_t dim, bool fp8_entries, bool fp8_win,
                            std::vector<uint64_t>& host) {
  const size_t nq = keys.queries.size();
  const std::vector<int32_t> chunk = chunk_of_rows(keys.seqs, static_cast<int64_t>(nq), "sparse_attention");
  const BlockTable bt = block_table(keys.seqs, "sparse_attention");
  size_t n_win = 0;
  for (const AttentionQuery& q : keys.queries) n_win += q.window.size();
  AttnStaging st;
  st.w_q = words<cuda::RowBlocksDesc>(nq);
  st.w_win = st.w_q + nq;
  st.w_blk = st.w_win + n_win;
  st.w_off64 = st.w_blk + bt.blocks.size();
  st.w_off32 = st.w_off64 + nq + 1;
  st.w_woff = st.w_off32 + words<int32_t>(nq + 1);
  st.n_words = st.w_woff + words<int32_t>(nq + 1);
  host.resize(st.n_words);
  auto* desc = reinterpret_cast<cuda::RowBlocksDesc*>(host.data());
  auto* q_rows = reinterpret_cast<const float**>(host.data() + st.w_q);
  auto* win = reinterpret_cast<const float**>(host.data() + st.w_win);
  auto* off64 = reinterpret_cast<int64_t*>(host.data() + st.w_off64);
  auto* off32 = reinterpret_cast<int32_t*>(host.data() + st.w_off32);
  auto* woff = reinterpret_cast<int32_t*>(host.data() + st.w_woff);
  std::copy(bt.blocks.begin(), bt.blocks.end(), reinterpret_cast<const float**>(host.data() + st.w_blk));
  uintptr_t bits = 0, wbits = 0;  // q rows (f32) and window rows: 16-byte aligned (f32) or 8 (Fp8Kv) for the
  size_t nw = 0;                  // tensor-core kernels; Fp8Kv window rows go up tagged (attention/kv_fp8.cuh)
  off64[0] = off32[0] = woff[0] = 0;
  for (size_t i = 0; i < nq; ++i) {
    const AttentionQuery& q = keys.queries[i];
    const int64_t n = static_cast<int64_t>(q.window.size()) + q.n_compressed;
    check(q.n_compressed >= 0 && n > 0,
          [&] { return "sparse_attention: empty key list for query " + std::to_string(i); });
    check(q.n_compressed <= keys.seqs[static_cast<size_t>(chunk[i])].entries.capacity() &&
              (!keys.selected || q.n_compressed <= keys.selected->cols()),
          [&] { return "sparse_attention: query " + std::to_string(i) + " has " + std::to_string(q.n_compressed) +
              " compressed entries, more than its sequence's rows or selections"; });
    desc[i] = bt.desc[static_cast<size_t>(chunk[i])];
    q_rows[i] = q.q;
    bits |= reinterpret_cast<uintptr_t>(q.q);
    for (const float* k : q.window) {
      win[nw++] = fp8_win ? reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(k) | 1u) : k;
      wbits |= reinterpret_cast<uintptr_t>(k);
    }
    st.max_keys = std::max(st.max_keys, n);
    st.n_keys += n;
    off64[i + 1] = st.n_keys;
    off32[i + 1] = to_i32(st.n_keys, "sparse_attention: key count");
    woff[i + 1] = to_i32(static_cast<int64_t>(nw), "sparse_attention: window rows");
  }
  // f32 rows 16-byte aligned, Fp8Kv rows (584 B at Flash shapes) 8-byte aligned.
  st.aligned = dim % 4 == 0 && bits % 16 == 0 && wbits % (fp8_win ? 8 : 16) == 0 &&
               bt.bits % (fp8_entries ? 8 : 16) == 0;
  return st;
}

}  // namespace

void CudaOps::sparse_attention(const AttentionKeys& keys, int64_t n_heads, int64_t dim, const Weight& sink,
                               float scale, Tensor& out) {
  const int64_t nq = static_cast<int64_t>(keys.queries.size());
  on_device(out, {nq, n_heads, dim});
  if (nq == 0) return;
  check(sink.rows() == n_heads,
        [&] { return "sparse_attention: sink " + sink.name + " has " + std::to_string(sink.rows()) +
                                    " entries, expected n_heads " + std::to_string(n_heads); });
  check(!keys.selected || (keys.selected->device() == Device::Cuda && keys.selected->rows() == nq),
        "sparse_attention: selections are not an i32 [n_q, top_k] tensor on the CUDA device");
  // Reused across calls (no allocation of the staging buffer at decode).
  static thread_local std::vector<uint64_t> host;
  // fp8: some rows of the call are Fp8Kv rows (tagged pointers: the entries through rp.tag_fp8, window rows
  // tagged on the host), all of one RoPE width.
  const bool fp8_entries = entry_format(keys.seqs, dim) == RowFormat::Fp8Kv;
  const bool fp8_win = fp8_window(keys, dim, fp8_entries), fp8 = fp8_entries || fp8_win;
  const int64_t rope = fp8_entries ? keys.seqs[0].entries.rope_dim : fp8_win ? keys.window_rope_dim : 0;
  const AttnStaging st = stage_attention(keys, dim, fp8_entries, fp8_win, host);
  // kernel_paths(): sparse_attn_wide = false forces the previous 16-head tensor-core kernel; attn_cluster = false
  // merges split-K partials with the combine kernel instead of inside thread-block clusters.
  const cuda::KernelPaths& paths = cuda::kernel_paths();
  const cuda::SparseAttnOptions opt{
      .allow_wide = paths.sparse_attn_wide,
      .allow_wgmma = paths.attn_wgmma && (!fp8 || rope == 64),
      .wgmma_min_queries = paths.attn_wgmma_min_q,
      .max_cluster = paths.attn_cluster ? cuda::sparse_attention_max_cluster(false) : 0,
      .max_cluster_wide = paths.attn_cluster ? cuda::sparse_attention_max_cluster(true) : 0,
      .cluster_split = static_cast<int>(paths.attn_cluster_split),
      .wide_split = static_cast<int>(paths.attn_wide_split)};
  const cuda::SparseAttnPlan plan = cuda::plan_sparse_attention(nq, n_heads, dim, st.max_keys,
                                                                bf16_acts() && st.aligned, ctx_.sm_count(), opt);
  check(plan.unsupported.empty(), plan.unsupported);
  // Device: [staging] [key pointers (resolved here)] [split-K partials (combine kernel only)].
  const size_t list_bytes = st.n_words * sizeof(uint64_t);
  const size_t keys_off = align256(list_bytes);
  size_t part_rows = 0;
  if (plan.n_split > 1 && plan.cluster == 0) part_rows = static_cast<size_t>(nq * n_heads * plan.n_split);
  const size_t ml_off = align256(keys_off + static_cast<size_t>(st.n_keys) * sizeof(const float*));
  const size_t po_off = ml_off + align256(part_rows * 2 * sizeof(float));
  cuda::Scratch buf(po_off + part_rows * static_cast<size_t>(dim) * sizeof(float));
  ctx_.upload_bytes(buf.data(), host.data(), list_bytes);
  unsigned char* base = static_cast<unsigned char*>(buf.data());
  const float** d_keys = reinterpret_cast<const float**>(base + keys_off);
  cuda::ResolveRowsParams rp;
  rp.direct = reinterpret_cast<const float* const*>(base + st.w_win * 8);
  rp.direct_offsets = reinterpret_cast<const int32_t*>(base + st.w_woff * 8);
  rp.out_offsets = reinterpret_cast<const int64_t*>(base + st.w_off64 * 8);
  rp.desc = reinterpret_cast<const cuda::RowBlocksDesc*>(base);
  rp.blocks = reinterpret_cast<const float* const*>(base + st.w_blk * 8);
  rp.selected = keys.selected ? keys.selected->data() : nullptr;
  rp.sel_ld = keys.selected ? keys.selected->cols() : 0;
  rp.out = d_keys;
  rp.n = to_i32(nq, "sparse_attention: n_q");
  rp.max_len = to_i32(st.max_keys, "sparse_attention: keys per query");
  rp.tag_fp8 = fp8_entries;
  // The 16-head tensor-core kernel resolves its key rows itself (switch attn_inline_rows); the others read the
  // pointer list resolve_rows_kernel writes.
  const bool inline_rows = plan.mma && !plan.wide && paths.attn_inline_rows;
  if (!inline_rows) cuda::launch_resolve_rows(rp, ctx_.stream());
  // The generic kernel reads f32 rows: Fp8Kv entries decoded into this call's scratch (the same values).
  cuda::Scratch unpacked(fp8 && !plan.mma ? static_cast<size_t>(st.n_keys * dim) * sizeof(float) : 0);
  if (fp8 && !plan.mma) {
    const cuda::UnpackKvRowsParams up{.keys = d_keys, .out = static_cast<float*>(unpacked.data()), .n = st.n_keys,
                                      .dim = static_cast<int32_t>(dim), .rope_dim = static_cast<int32_t>(rope)};
    cuda::launch_kernel(cuda::unpack_kv_rows_kernel, static_cast<unsigned>(st.n_keys), cuda::kUnpackKvThreads, 0,
                        ctx_.stream(), up);
    DSV4_CUDA_CHECK_LAUNCH();
  }
  cuda::SparseAttnParams p;
  p.key_offsets = reinterpret_cast<const int32_t*>(base + st.w_off32 * 8);
  p.q_rows = reinterpret_cast<const float* const*>(base + st.w_q * 8);
  p.keys = inline_rows ? nullptr : d_keys;
  p.rows = rp;
  p.sink = dw_.f32(sink);
  p.out = out.data();
  p.n_q = rp.n;
  p.n_heads = to_i32(n_heads, "sparse_attention: n_heads");
  p.dim = to_i32(dim, "sparse_attention: dim");
  p.scale = scale;
  p.round_bf16 = bf16_acts();
  p.rope_dim = static_cast<int32_t>(rope);
  p.kv_row_bytes = fp8 ? static_cast<int32_t>(fp8kv_row_bytes(dim, rope)) : 0;
  p.n_split = plan.n_split;
  p.keys_per_split = plan.keys_per_split;
  if (part_rows > 0) {
    p.part_ml = reinterpret_cast<float*>(base + ml_off);
    p.part_o = reinterpret_cast<float*>(base + po_off);
  }
  cuda::launch_sparse_attention(p, plan, ctx_.stream());
}

namespace {

// Host staging of one indexer_topk call (8-byte words): [key_begin i64 (T)] [desc (n_chunks)] [block bases]
// [list offsets i64 (n_chunks + 1)] [n_keys i32 (T)]. Chunk c's key list holds its rows' longest prefix.
struct IndexerStaging {
  size_t w_desc = 0, w_blk = 0, w_off = 0, w_nk = 0, n_words = 0;
  int64_t used = 0, max_keys = 0, max_list = 0;
  bool aligned = false;
};

IndexerStaging stage_indexer(std::span<const SeqEntries> seqs, std::span<const int64_t> n_keys, int64_t head_dim,
                             std::vector<uint64_t>& host) {
  const size_t T = n_keys.size(), nc = seqs.size();
  const std::vector<int32_t> chunk = chunk_of_rows(seqs, static_cast<int64_t>(T), "indexer_topk");
  const BlockTable bt = block_table(seqs, "indexer_topk");
  IndexerStaging st;
  st.w_desc = T;
  st.w_blk = st.w_desc + words<cuda::RowBlocksDesc>(nc);
  st.w_off = st.w_blk + bt.blocks.size();
  st.w_nk = st.w_off + nc + 1;
  st.n_words = st.w_nk + words<int32_t>(T);
  host.assign(st.n_words, 0);
  auto* begin = reinterpret_cast<int64_t*>(host.data());
  auto* off = reinterpret_cast<int64_t*>(host.data() + st.w_off);
  auto* nk = reinterpret_cast<int32_t*>(host.data() + st.w_nk);
  std::copy(bt.desc.begin(), bt.desc.end(), reinterpret_cast<cuda::RowBlocksDesc*>(host.data() + st.w_desc));
  std::copy(bt.blocks.begin(), bt.blocks.end(), reinterpret_cast<const float**>(host.data() + st.w_blk));
  std::vector<int64_t> list(nc, 0);
  for (size_t t = 0; t < T; ++t) {
    const int64_t n = n_keys[t], cap = seqs[static_cast<size_t>(chunk[t])].entries.capacity();
    check(n >= 0 && n <= cap, [&] { return "indexer_topk: row " + std::to_string(t) + " sees " + std::to_string(n) +
                                  " keys, its sequence holds " + std::to_string(cap); });
    nk[t] = to_i32(n, "indexer_topk: n_keys");
    list[static_cast<size_t>(chunk[t])] = std::max(list[static_cast<size_t>(chunk[t])], n);
    st.max_keys = std::max(st.max_keys, n);
  }
  off[0] = 0;
  for (size_t c = 0; c < nc; ++c) {
    off[c + 1] = off[c] + list[c];
    st.max_list = std::max(st.max_list, list[c]);
  }
  for (size_t t = 0; t < T; ++t) begin[t] = off[static_cast<size_t>(chunk[t])];
  st.used = off[nc];
  st.aligned = head_dim % 4 == 0 && bt.bits % 16 == 0;
  return st;
}

// Device buffers of one indexer_topk call.
struct IndexerRun {
  const float* q = nullptr;              // f32 [T, n_heads, head_dim]
  const float* w = nullptr;              // f32 [T, n_heads]
  const float* const* keys = nullptr;    // device key pointers (every chunk's list)
  const int64_t* key_begin = nullptr;    // [T] start of row t's list in keys
  const int32_t* n_keys = nullptr;       // [T]
  float* scores = nullptr;               // f32 [rows_per_chunk, max_keys]
  uint32_t* cand_key = nullptr;          // segmented top-k candidates [rows_per_chunk, cand_ld], or nullptr
  int32_t* cand_idx = nullptr;
  uint32_t* cand2_key = nullptr;         // two-level merge: group candidates [rows_per_chunk, cand2_ld], or nullptr
  int32_t* cand2_idx = nullptr;
  uint32_t* radix = nullptr;             // radix top-k row areas [rows_per_chunk, radix_ld], or nullptr
  int32_t* out = nullptr;                // i32 [T, top_k]
  int64_t cand_ld = 0;
  int64_t cand2_ld = 0;
  int64_t radix_ld = 0;
  int64_t max_keys = 0;
  bool vec4 = false;                     // key rows 16-byte aligned, head_dim % 4 == 0
  bool packed = false;                   // key rows are Mxfp4 rows (tensor-core score kernel)
};

// Scores then selects the rows in chunks of plan.rows_per_chunk (score rows [rows, max_keys] reused).
void run_indexer(const IndexerRun& r, const cuda::IndexerPlan& plan, int64_t T, const IndexerDims& dims,
                 bool round_bf16, cudaStream_t stream) {
  const int64_t rows = plan.rows_per_chunk, n_heads = dims.n_heads, head_dim = dims.head_dim, top_k = dims.top_k;
  for (int64_t r0 = 0; r0 < T; r0 += rows) {
    const int32_t nr = static_cast<int32_t>(std::min(rows, T - r0));
    cuda::IndexerScoreParams sp;
    sp.q = r.q + r0 * n_heads * head_dim;
    sp.w = r.w + r0 * n_heads;
    sp.keys = r.keys;
    sp.key_begin = r.key_begin + r0;
    sp.n_keys = r.n_keys + r0;
    sp.scores = r.scores;
    sp.ld = r.max_keys;
    sp.T = nr;
    sp.max_keys = static_cast<int32_t>(r.max_keys);
    sp.n_heads = to_i32(n_heads, "indexer_topk: n_heads");
    sp.head_dim = to_i32(head_dim, "indexer_topk: head_dim");
    sp.round_bf16 = round_bf16;
    sp.vec4 = r.vec4;
    sp.packed = r.packed;
    cuda::launch_indexer_scores(sp, plan, stream);
    if (plan.segmented_topk) {
      cuda::TopkSegParams tp;
      tp.scores = r.scores;
      tp.n_keys = sp.n_keys;
      tp.out = r.out + r0 * top_k;
      tp.cand_key = r.cand_key;
      tp.cand_idx = r.cand_idx;
      tp.ld = r.max_keys;
      tp.cand_ld = r.cand_ld;
      tp.cand2_key = r.cand2_key;
      tp.cand2_idx = r.cand2_idx;
      tp.cand2_ld = r.cand2_ld;
      tp.radix = r.radix;
      tp.radix_ld = r.radix_ld;
      tp.T = nr;
      tp.top_k = static_cast<int32_t>(top_k);
      tp.n_seg = plan.n_seg;
      tp.bf16_scores = round_bf16;
      tp.sort_rows = cuda::kernel_paths().topk_sort_rows;
      cuda::launch_topk_segmented(tp, stream);
    } else {
      cuda::TopkParams tp;
      tp.scores = r.scores;
      tp.n_keys = sp.n_keys;
      tp.out = r.out + r0 * top_k;
      tp.ld = r.max_keys;
      tp.T = nr;
      tp.top_k = static_cast<int32_t>(top_k);
      cuda::launch_topk(tp, stream);
    }
  }
}

}  // namespace

void CudaOps::indexer_topk(const Tensor& q, const Tensor& w, std::span<const SeqEntries> seqs,
                           std::span<const int64_t> n_keys, const IndexerDims& dims, IndexTensor& selected) {
  const int64_t T = static_cast<int64_t>(n_keys.size()), n_heads = dims.n_heads, head_dim = dims.head_dim;
  const int64_t top_k = dims.top_k;
  selected.resize_on(Device::Cuda, T, top_k);
  if (T == 0) return;
  check_on_device(q, "indexer_topk");
  check_on_device(w, "indexer_topk");
  check(q.numel() == T * n_heads * head_dim, [&] { return "indexer_topk: q has " + std::to_string(q.numel()) +
                                                  " values, expected T x n_heads x head_dim"; });
  check(w.numel() == T * n_heads,
        [&] { return "indexer_topk: w has " + std::to_string(w.numel()) + " values, expected T x n_heads"; });
  static thread_local std::vector<uint64_t> host;
  const IndexerStaging st = stage_indexer(seqs, n_keys, head_dim, host);
  const bool packed = !seqs.empty() && seqs[0].entries.format == RowFormat::Mxfp4;
  for (const SeqEntries& c : seqs)
    check((c.entries.format == RowFormat::Mxfp4) == packed, "indexer_topk: key row formats differ between chunks");
  if (st.max_keys == 0) {  // no row sees a key: every slot -1 (0xff bytes)
    DSV4_CUDA_CHECK(cudaMemsetAsync(selected.data(), 0xff, static_cast<size_t>(T * top_k) * 4, ctx_.stream()));
    return;
  }
  // kernel_paths().indexer_fast = false runs the previous kernels (fallback, before/after timing).
  const bool legacy = !cuda::kernel_paths().indexer_fast;
  cuda::IndexerPlan plan = cuda::plan_indexer(T, st.max_keys, n_heads, head_dim, top_k, ctx_.sm_count(), legacy,
                                              bf16_acts(), cuda::kernel_paths().indexer_mma);
  check(plan.unsupported.empty(), plan.unsupported);
  // Device: [staging] [key pointers (resolved here)] [scores] [segment candidates] [radix row areas].
  const int64_t rows = plan.rows_per_chunk;
  const size_t list_bytes = st.n_words * sizeof(uint64_t);
  const size_t keys_off = align256(list_bytes);
  const size_t scores_off = align256(keys_off + static_cast<size_t>(st.used) * sizeof(const float*));
  const size_t scores_bytes = static_cast<size_t>(rows * st.max_keys) * sizeof(float);
  // Rows of several segments: the radix select (kernel_paths().topk_radix, its own row areas), else the segment
  // candidates and their merges, two-level for rows of more than kTopkMergeGroup segments (topk_two_level).
  const bool multi = plan.segmented_topk && plan.n_seg > 1;
  const int64_t radix_ld = multi && cuda::kernel_paths().topk_radix ? cuda::topk_radix_words(plan.n_seg, top_k) : 0;
  const int64_t cand_ld = multi && !radix_ld ? int64_t(plan.n_seg) * top_k : 0;
  const size_t cand_key_off = scores_off + align256(scores_bytes);
  const size_t cand_bytes = static_cast<size_t>(rows * cand_ld) * 4;
  const size_t cand_idx_off = cand_key_off + align256(cand_bytes);
  const int64_t groups = (plan.n_seg + cuda::kTopkMergeGroup - 1) / cuda::kTopkMergeGroup;
  const int64_t cand2_ld =
      cand_ld && plan.n_seg > cuda::kTopkMergeGroup && cuda::kernel_paths().topk_two_level ? groups * top_k : 0;
  const size_t cand2_bytes = static_cast<size_t>(rows * cand2_ld) * 4;
  const size_t cand2_key_off = cand_idx_off + align256(cand_bytes);
  const size_t cand2_idx_off = cand2_key_off + align256(cand2_bytes);
  const size_t radix_off = cand2_idx_off + align256(cand2_bytes);
  cuda::Scratch buf(radix_off + static_cast<size_t>(rows * radix_ld) * 4);
  unsigned char* base = static_cast<unsigned char*>(buf.data());
  ctx_.upload_bytes(base, host.data(), list_bytes);
  cuda::ResolveRowsParams rp;
  rp.out_offsets = reinterpret_cast<const int64_t*>(base + st.w_off * 8);
  rp.desc = reinterpret_cast<const cuda::RowBlocksDesc*>(base + st.w_desc * 8);
  rp.blocks = reinterpret_cast<const float* const*>(base + st.w_blk * 8);
  rp.out = reinterpret_cast<const float**>(base + keys_off);
  rp.n = to_i32(static_cast<int64_t>(seqs.size()), "indexer_topk: sequences");
  rp.max_len = to_i32(st.max_list, "indexer_topk: keys per sequence");
  cuda::launch_resolve_rows(rp, ctx_.stream());
  // Mxfp4 key rows go to the tensor-core score kernel as they are; the other score kernels get them decoded into
  // f32 rows of this call's scratch (the same values).
  const bool direct = !packed || (plan.mma && n_heads <= cuda::kIdxMmaMaxHeads && (head_dim == 64 || head_dim == 128));
  cuda::Scratch unpacked(direct ? 0 : static_cast<size_t>(st.used * head_dim) * sizeof(float));
  if (!direct) {
    check(head_dim % 32 == 0 && head_dim <= cuda::kMxfp4PackMaxDim, "indexer_topk: Mxfp4 keys of this head_dim");
    cuda::UnpackKeysParams up{.keys = rp.out, .out = static_cast<float*>(unpacked.data()), .n = st.used,
                              .dim = static_cast<int32_t>(head_dim)};
    if (st.used > 0) {
      cuda::launch_kernel(cuda::unpack_key_rows_kernel, static_cast<unsigned>(st.used),
                          static_cast<unsigned>(head_dim), 0, ctx_.stream(), up);
      DSV4_CUDA_CHECK_LAUNCH();
    }
  }
  IndexerRun run{.q = q.data(), .w = w.data(), .keys = rp.out, .key_begin = reinterpret_cast<const int64_t*>(base),
                 .n_keys = reinterpret_cast<const int32_t*>(base + st.w_nk * 8),
                 .scores = reinterpret_cast<float*>(base + scores_off),
                 .cand_key = cand_ld ? reinterpret_cast<uint32_t*>(base + cand_key_off) : nullptr,
                 .cand_idx = cand_ld ? reinterpret_cast<int32_t*>(base + cand_idx_off) : nullptr,
                 .cand2_key = cand2_ld ? reinterpret_cast<uint32_t*>(base + cand2_key_off) : nullptr,
                 .cand2_idx = cand2_ld ? reinterpret_cast<int32_t*>(base + cand2_idx_off) : nullptr,
                 .radix = radix_ld ? reinterpret_cast<uint32_t*>(base + radix_off) : nullptr,
                 .out = selected.data(), .cand_ld = cand_ld, .cand2_ld = cand2_ld, .radix_ld = radix_ld,
                 .max_keys = st.max_keys,
                 .vec4 = st.aligned || (packed && !direct), .packed = packed && direct};
  run_indexer(run, plan, T, dims, bf16_acts(), ctx_.stream());
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

// Launches of up to kCopyInlineMaxRows rows with the pointers in the parameters (graph-safe, no upload).
void CudaOps::pack_rows_fp8kv(std::span<const float* const> src, std::span<float* const> dst, int64_t dim,
                              int64_t rope_dim) {
  check(src.size() == dst.size(), "pack_rows_fp8kv: source and destination lists differ in length");
  check(fp8kv_shape_ok(dim, rope_dim) && dim <= 65536,
        [&] { return "pack_rows_fp8kv: dim " + std::to_string(dim) + " with rope_dim " + std::to_string(rope_dim) +
                     " (dim - rope_dim must be a multiple of 64)"; });
  for (size_t c0 = 0; c0 < src.size(); c0 += cuda::kCopyInlineMaxRows) {
    const size_t c1 = std::min(src.size(), c0 + cuda::kCopyInlineMaxRows);
    cuda::CopyRowsInlineParams p;
    p.n = static_cast<int32_t>(c1 - c0);
    p.width = static_cast<int32_t>(dim);
    p.rope_dim = static_cast<int32_t>(rope_dim);
    for (size_t i = c0; i < c1; ++i) {
      check(reinterpret_cast<uintptr_t>(dst[i]) % 2 == 0, "pack_rows_fp8kv: destination row not 2-byte aligned");
      p.src[i - c0] = src[i];
      p.dst[i - c0] = dst[i];
    }
    cuda::launch_kernel(cuda::pack_rows_fp8kv_kernel, static_cast<unsigned>(p.n), cuda::kFp8KvPackThreads, 0,
                        ctx_.stream(), p);
    DSV4_CUDA_CHECK_LAUNCH();
  }
}

void CudaOps::pack_rows_mxfp4(std::span<const float* const> src, std::span<float* const> dst, int64_t dim) {
  check(src.size() == dst.size(), "pack_rows_mxfp4: source and destination lists differ in length");
  check(dim > 0 && dim % 32 == 0 && dim <= cuda::kMxfp4PackMaxDim,
        [&] { return "pack_rows_mxfp4: dim " + std::to_string(dim) + " is not a multiple of 32 in 32..1024"; });
  for (size_t c0 = 0; c0 < src.size(); c0 += cuda::kCopyInlineMaxRows) {
    const size_t c1 = std::min(src.size(), c0 + cuda::kCopyInlineMaxRows);
    cuda::CopyRowsInlineParams p;
    p.n = static_cast<int32_t>(c1 - c0);
    p.width = static_cast<int32_t>(dim);
    for (size_t i = c0; i < c1; ++i) {
      check(reinterpret_cast<uintptr_t>(dst[i]) % 4 == 0, "pack_rows_mxfp4: destination row not 4-byte aligned");
      p.src[i - c0] = src[i];
      p.dst[i - c0] = dst[i];
    }
    cuda::launch_kernel(cuda::pack_rows_mxfp4_kernel, static_cast<unsigned>(p.n), static_cast<unsigned>(dim), 0,
                        ctx_.stream(), p);
    DSV4_CUDA_CHECK_LAUNCH();
  }
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
        cuda::launch_kernel(cuda::copy_rows_inline_kernel<cuda::kCopyInlineThreads>, static_cast<unsigned>(p.n),
                            cuda::kCopyInlineThreads, 0, ctx_.stream(), p);
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
    check(groups <= 65535, [&] { return "rope: " + std::to_string(segs) + " segments per row out of range"; });
    cuda::launch_kernel(cuda::rope_inline_kernel<cuda::kRopeInlineThreads>,
                        dim3(static_cast<unsigned>(T), static_cast<unsigned>(groups)), cuda::kRopeInlineThreads, 0,
                        ctx_.stream(), p);
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

void CudaOps::finish_rows(Tensor& x, int64_t dim, std::span<const int64_t> pos, const RowFinish& f) {
  check_on_device(x, "finish_rows");
  const int64_t T = static_cast<int64_t>(pos.size());
  const int64_t np = f.rope_dim / 2;
  cuda::FinishRound round = cuda::FinishRound::None;
  if (f.round == RowFinish::Round::Kv && numerics_.kv_cache != KvCacheDtype::F32)
    round = numerics_.kv_cache == KvCacheDtype::Fp8 ? cuda::FinishRound::KvFp8 : cuda::FinishRound::Bf16;
  if (f.round == RowFinish::Round::Indexer && numerics_.indexer != IndexerDtype::F32)
    round = numerics_.indexer == IndexerDtype::Fp4 ? cuda::FinishRound::IndexerFp4 : cuda::FinishRound::Bf16;
  const bool pow2 = dim >= 32 && (dim & (dim - 1)) == 0;
  const bool fused = cuda::kernel_paths().finish_rows && T > 0 && T <= cuda::kFinishMaxRows && dim > 0 &&
                     dim % 4 == 0 && dim <= cuda::kFinishMaxDim && x.numel() % (T * dim) == 0 &&
                     f.rope_dim >= 0 && f.rope_dim <= dim && f.rope_dim % 2 == 0 && np <= cuda::kRopeInlineMaxPairs &&
                     (f.rope_dim == 0 || (f.rope && static_cast<int64_t>(f.rope->freqs.size()) == np)) &&
                     (!f.norm || !f.norm_weight || f.norm_weight->rows() == dim) &&
                     (round != cuda::FinishRound::KvFp8 || (dim - f.rope_dim) % 64 == 0) &&
                     (round != cuda::FinishRound::IndexerFp4 || pow2) &&
                     reinterpret_cast<uintptr_t>(x.data()) % 16 == 0;
  if (!fused) {
    Ops::finish_rows(x, dim, pos, f);  // the op sequence (also where a shape is out of this kernel's range)
    return;
  }
  if (x.numel() == 0) return;
  cuda::FinishRowsParams p;
  p.x = x.data();
  p.norm_w = f.norm && f.norm_weight ? dw_.f32(*f.norm_weight) : nullptr;
  p.n_seg = x.numel() / dim;
  p.segs_per_row = to_i32(x.numel() / (T * dim), "finish_rows: segments per row");
  p.dim = static_cast<int32_t>(dim);
  p.rope_dim = static_cast<int32_t>(f.rope_dim);
  p.nope = static_cast<int32_t>(dim - f.rope_dim);
  p.eps = f.eps;
  p.hadamard_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim)));
  p.round_input = f.round_input && bf16_acts();
  p.norm = f.norm;
  p.round_bf16 = bf16_acts();
  p.round = round;
  for (int64_t t = 0; t < T; ++t) p.pos[t] = static_cast<float>(pos[static_cast<size_t>(t)]);
  for (int64_t i = 0; i < np; ++i) p.freqs[i] = f.rope->freqs[static_cast<size_t>(i)];
  const int64_t blocks = (p.n_seg + cuda::kFinishWarps - 1) / cuda::kFinishWarps;
  check(blocks <= INT32_MAX, "finish_rows: too many segments");
  const int n4 = static_cast<int>(dim / 4);
  auto launch = [&]<int kChunks>() {
    cuda::launch_kernel(cuda::finish_rows_kernel<kChunks>, dim3(static_cast<unsigned>(blocks)),
                        cuda::kFinishWarps * 32, 0, ctx_.stream(), p);
  };
  if (n4 <= 32)
    launch.template operator()<1>();
  else if (n4 <= 64)
    launch.template operator()<2>();
  else
    launch.template operator()<4>();
  DSV4_CUDA_CHECK_LAUNCH();
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
