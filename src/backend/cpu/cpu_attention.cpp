// Attention-side ops of the CPU reference: sparse attention with the per-head sink (spec §5.5) over each
// query's key list (window rows, then compressed entries resolved through the sequence's row blocks and, on
// CSA layers, the indexer's selections; packed Fp8Kv window rows and entries decoded exactly first),
// lightning-indexer scores and top-k (§5.8 steps 6-7), the compressor's per-channel softmax pooling (§5.7), and
// row copies and packing (Mxfp4 indexer keys, Fp8Kv KV rows) between tensors and caches.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/numerics.h"
#include "core/parallel.h"
#include "weights/quant/dequant.h"

namespace dsv4::backend {

namespace {
// Index of the chunk holding each of n rows (chunks in order, covering [0, n)).
std::vector<size_t> chunk_of_rows(std::span<const SeqEntries> seqs, int64_t n, const char* op) {
  std::vector<size_t> of(static_cast<size_t>(n));
  int64_t next = 0;
  for (size_t c = 0; c < seqs.size(); ++c) {
    check(seqs[c].row_begin == next && seqs[c].n_rows >= 0,
          [&] { return std::string(op) + ": chunk " + std::to_string(c) + " does not start at row " + std::to_string(next); });
    for (int64_t r = 0; r < seqs[c].n_rows; ++r) of[static_cast<size_t>(next + r)] = c;
    next += seqs[c].n_rows;
  }
  check(next == n, [&] { return std::string(op) + ": chunks cover " + std::to_string(next) + " rows, expected " +
                       std::to_string(n); });
  return of;
}

// Key lists of a sparse_attention call: query i's window rows, then its compressed entries (the first n, or its
// selected entries). Fp8Kv entries are decoded once per (chunk, entry) into `decoded`; the decoding is exact (the
// values the f32 row would hold), so the arithmetic over the lists does not depend on the entries' format.
struct KeyLists {
  std::vector<std::vector<const float*>> keys;  // per query
  std::vector<float> decoded;                   // f32 [decoded entries, dim]
};

KeyLists resolve_keys(const AttentionKeys& keys, int64_t dim) {
  const int64_t nq = static_cast<int64_t>(keys.queries.size());
  const std::vector<size_t> chunk = chunk_of_rows(keys.seqs, nq, "sparse_attention");
  for (size_t c = 0; c < keys.seqs.size(); ++c) {
    const RowBlocks& rb = keys.seqs[c].entries;
    check(rb.format != RowFormat::Mxfp4, [&] { return "sparse_attention: chunk " + std::to_string(c) +
                                           " holds Mxfp4 rows (indexer keys), not KV entries (f32 or Fp8Kv)"; });
    check(rb.format != RowFormat::Fp8Kv || (rb.rope_dim >= 0 && rb.rope_dim < dim && (dim - rb.rope_dim) % 64 == 0),
          [&] { return "sparse_attention: chunk " + std::to_string(c) + "'s Fp8Kv rows have rope_dim " +
                std::to_string(rb.rope_dim) + ", dim - rope_dim must be a positive multiple of 64"; });
  }
  // Entry e of chunk c resolves to its row, or (Fp8Kv) to slot[c][e] of the decoded rows.
  std::vector<std::vector<int64_t>> entries(static_cast<size_t>(nq)), slot(keys.seqs.size());
  std::vector<std::pair<size_t, int64_t>> to_decode;  // (chunk, entry) of each decoded row
  for (int64_t i = 0; i < nq; ++i) {
    const AttentionQuery& q = keys.queries[static_cast<size_t>(i)];
    const size_t c = chunk[static_cast<size_t>(i)];
    const RowBlocks& rb = keys.seqs[c].entries;
    if (keys.selected)
      check(keys.selected->on_host() && keys.selected->rows() == nq && keys.selected->cols() >= q.n_compressed,
            "sparse_attention: selections are not a host i32 [n_q, >= n_compressed] tensor");
    for (int64_t j = 0; j < q.n_compressed; ++j) {
      const int64_t e = keys.selected ? keys.selected->row(i)[j] : j;
      check(e >= 0 && e < rb.capacity(), [&] { return "sparse_attention: query " + std::to_string(i) + " entry " +
                                             std::to_string(e) + " outside its sequence's rows"; });
      entries[static_cast<size_t>(i)].push_back(e);
      if (rb.format != RowFormat::Fp8Kv) continue;
      std::vector<int64_t>& s = slot[c];
      if (static_cast<int64_t>(s.size()) <= e) s.resize(static_cast<size_t>(e) + 1, -1);
      if (s[static_cast<size_t>(e)] >= 0) continue;
      s[static_cast<size_t>(e)] = static_cast<int64_t>(to_decode.size());
      to_decode.emplace_back(c, e);
    }
  }
  // Fp8Kv window rows: each distinct row decoded once (queries of a chunk share most of theirs).
  const bool fp8_window = keys.window_format == RowFormat::Fp8Kv;
  check(keys.window_format == RowFormat::F32 ||
            (fp8_window && fp8kv_shape_ok(dim, keys.window_rope_dim) && keys.window_rope_dim < dim),
        [&] { return "sparse_attention: window rows must be f32 rows or Fp8Kv rows whose dim - rope_dim (" +
                     std::to_string(dim - keys.window_rope_dim) + ") is a positive multiple of 64"; });
  std::unordered_map<const float*, int64_t> window_slot;
  std::vector<const float*> window_rows;
  if (fp8_window)
    for (const AttentionQuery& q : keys.queries)
      for (const float* w : q.window)
        if (window_slot.emplace(w, static_cast<int64_t>(to_decode.size() + window_rows.size())).second)
          window_rows.push_back(w);
  const size_t n_decoded = to_decode.size() + window_rows.size();
  KeyLists out;
  out.decoded.resize(n_decoded * static_cast<size_t>(dim));
  parallel_for(static_cast<int64_t>(n_decoded), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      if (static_cast<size_t>(r) >= to_decode.size()) {
        fp8kv_unpack_row(window_rows[static_cast<size_t>(r) - to_decode.size()], static_cast<size_t>(dim),
                         static_cast<size_t>(keys.window_rope_dim), out.decoded.data() + r * dim);
        continue;
      }
      const auto [c, entry] = to_decode[static_cast<size_t>(r)];
      const RowBlocks& rb = keys.seqs[c].entries;
      fp8kv_unpack_row(rb.row(entry), static_cast<size_t>(dim), static_cast<size_t>(rb.rope_dim),
                       out.decoded.data() + r * dim);
    }
  });
  out.keys.resize(static_cast<size_t>(nq));
  for (int64_t i = 0; i < nq; ++i) {
    const AttentionQuery& q = keys.queries[static_cast<size_t>(i)];
    const size_t c = chunk[static_cast<size_t>(i)];
    const RowBlocks& rb = keys.seqs[c].entries;
    auto& k = out.keys[static_cast<size_t>(i)];
    if (fp8_window) {
      k.clear();
      for (const float* w : q.window) k.push_back(out.decoded.data() + window_slot.at(w) * dim);
    } else {
      k.assign(q.window.begin(), q.window.end());
    }
    for (int64_t e : entries[static_cast<size_t>(i)])
      k.push_back(rb.format == RowFormat::Fp8Kv ? out.decoded.data() + slot[c][static_cast<size_t>(e)] * dim
                                                : rb.row(e));
  }
  return out;
}
}  // namespace

void CpuOps::sparse_attention(const AttentionKeys& keys, int64_t n_heads, int64_t dim, const Weight& sink_w,
                              float scale, HostTensor& out) {
  const std::vector<float> sink_v = weights::dequant_all(sink_w);
  const float* sink = sink_v.data();
  const KeyLists resolved = resolve_keys(keys, dim);
  const std::vector<std::vector<const float*>>& lists = resolved.keys;
  int64_t nq = static_cast<int64_t>(lists.size());
  out.resize({nq, n_heads, dim});
  bool round = bf16_acts();
  parallel_for(nq * n_heads, [&](int64_t b, int64_t e) {
    std::vector<float> z, acc(static_cast<size_t>(dim));
    for (int64_t i = b; i < e; ++i) {
      int64_t qi = i / n_heads, h = i % n_heads;
      const std::vector<const float*>& kl = lists[static_cast<size_t>(qi)];
      const float* qh = keys.queries[static_cast<size_t>(qi)].q + h * dim;
      size_t n = kl.size();
      check(n > 0, "sparse_attention: empty key list");
      z.resize(n);
      float m = -std::numeric_limits<float>::infinity();
      for (size_t s = 0; s < n; ++s) {
        z[s] = dot_f32(qh, kl[s], dim) * scale;
        m = std::max(m, z[s]);
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      float denom = 0;
      for (size_t s = 0; s < n; ++s) {
        float pe = std::exp(z[s] - m);
        denom += pe;  // the denominator sums unrounded exponentials (spec §13.2)
        float pv = round ? round_bf16(pe) : pe;
        const float* k = kl[s];
        for (int64_t c = 0; c < dim; ++c) acc[c] += pv * k[c];
      }
      denom += std::exp(sink[h] - m);
      float* o = out.data() + i * dim;
      for (int64_t c = 0; c < dim; ++c) o[c] = round ? round_bf16(acc[c] / denom) : acc[c] / denom;
    }
  });
}

namespace {
// score[s] for s < n of one query (the reference's rounding points).
// Mxfp4 key rows are decoded first (exact: the values the f32 row would hold).
void indexer_row_scores(const float* qt, const float* wt, const RowBlocks& keys, int64_t n,
                        int64_t n_heads, int64_t head_dim, bool round, std::vector<float>& sc) {
  sc.assign(static_cast<size_t>(n), 0.0f);
  std::vector<float> key(keys.format == RowFormat::Mxfp4 ? static_cast<size_t>(head_dim) : 0);
  for (int64_t s = 0; s < n; ++s) {
    const float* k = keys.row(s);
    if (keys.format == RowFormat::Mxfp4) {
      fp4_unpack_row(k, static_cast<size_t>(head_dim), key.data());
      k = key.data();
    }
    float total = 0;
    for (int64_t h = 0; h < n_heads; ++h) {
      float d = dot_f32(qt + h * head_dim, k, head_dim);
      if (round) d = round_bf16(d);
      float r = d > 0 ? d : 0.0f;
      total += round ? round_bf16(wt[h] * r) : wt[h] * r;
      if (round) total = round_bf16(total);
    }
    sc[static_cast<size_t>(s)] = total;
  }
}
}  // namespace

void CpuOps::indexer_topk(const HostTensor& q, const HostTensor& w, std::span<const SeqEntries> seqs,
                          std::span<const int64_t> n_keys, const IndexerDims& dims, IndexTensor& selected) {
  const int64_t T = static_cast<int64_t>(n_keys.size()), top_k = dims.top_k;
  const std::vector<size_t> chunk = chunk_of_rows(seqs, T, "indexer_topk");
  for (int64_t t = 0; t < T; ++t) {
    const int64_t n = n_keys[static_cast<size_t>(t)];
    check(n >= 0 && n <= seqs[chunk[static_cast<size_t>(t)]].entries.capacity(),
          [&] { return "indexer_topk: row " + std::to_string(t) + " sees " + std::to_string(n) + " keys, its sequence holds " +
              std::to_string(seqs[chunk[static_cast<size_t>(t)]].entries.capacity()); });
  }
  selected.resize_on(Device::Host, T, top_k);
  std::fill(selected.data(), selected.data() + selected.numel(), -1);
  bool round = bf16_acts();
  parallel_for(T, [&](int64_t b, int64_t e) {
    std::vector<float> sc;
    for (int64_t t = b; t < e; ++t) {
      int64_t n = n_keys[static_cast<size_t>(t)];
      indexer_row_scores(q.data() + t * dims.n_heads * dims.head_dim, w.data() + t * dims.n_heads,
                         seqs[chunk[static_cast<size_t>(t)]].entries, n, dims.n_heads, dims.head_dim, round, sc);
      int64_t k = std::min<int64_t>(top_k, n);
      std::vector<int64_t> idx(static_cast<size_t>(n));
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t x, int64_t y) {
        return sc[x] > sc[y] || (sc[x] == sc[y] && x < y);
      });
      std::copy(idx.begin(), idx.begin() + k, selected.row(t));
    }
  }, 1);
}

void CpuOps::softmax_pool(std::span<const float* const> a_rows, std::span<const float* const> g_rows,
                          std::span<const int64_t> offsets, int64_t dim, HostTensor& out) {
  check(a_rows.size() == g_rows.size(), "softmax_pool: candidate lists differ");
  check(!offsets.empty() && offsets.back() == static_cast<int64_t>(a_rows.size()), "softmax_pool: bad offsets");
  const int64_t n_out = static_cast<int64_t>(offsets.size()) - 1;
  out.resize({n_out, dim});
  parallel_for(n_out, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t j0 = offsets[static_cast<size_t>(i)], j1 = offsets[static_cast<size_t>(i) + 1];
      check(j1 > j0, "softmax_pool: an entry without candidates");
      float* o = out.row(i);
      for (int64_t k = 0; k < dim; ++k) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t j = j0; j < j1; ++j) m = std::max(m, g_rows[j][k]);
        float den = 0, num = 0;
        for (int64_t j = j0; j < j1; ++j) {
          float p = std::exp(g_rows[j][k] - m);
          den += p;
          num += p * a_rows[j][k];
        }
        o[k] = num / den;
      }
    }
  });
}

void CpuOps::copy_rows(std::span<const float* const> src, std::span<float* const> dst, int64_t width) {
  check(src.size() == dst.size(), "copy_rows: source and destination lists differ in length");
  for (size_t i = 0; i < src.size(); ++i) std::copy(src[i], src[i] + width, dst[i]);
}

void CpuOps::pack_rows_mxfp4(std::span<const float* const> src, std::span<float* const> dst, int64_t dim) {
  check(src.size() == dst.size(), "pack_rows_mxfp4: source and destination lists differ in length");
  check(dim > 0 && dim % 32 == 0, "pack_rows_mxfp4: dim must be a positive multiple of 32");
  for (size_t i = 0; i < src.size(); ++i) fp4_pack_row(src[i], static_cast<size_t>(dim), dst[i]);
}

void CpuOps::pack_rows_fp8kv(std::span<const float* const> src, std::span<float* const> dst, int64_t dim,
                             int64_t rope_dim) {
  check(src.size() == dst.size(), "pack_rows_fp8kv: source and destination lists differ in length");
  check(rope_dim >= 0 && dim > rope_dim && (dim - rope_dim) % 64 == 0,
        "pack_rows_fp8kv: dim - rope_dim must be a positive multiple of 64");
  for (size_t i = 0; i < src.size(); ++i)
    fp8kv_pack_row(src[i], static_cast<size_t>(dim), static_cast<size_t>(rope_dim), dst[i]);
}

}  // namespace dsv4::backend
