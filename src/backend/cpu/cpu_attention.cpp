// Attention-side ops of the CPU reference: sparse attention over an explicit key list with the per-head sink
// (spec §5.5), lightning-indexer scores (§5.8 step 6) and the compressor's per-channel softmax pooling (§5.7).
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/parallel.h"

namespace dsv4::backend {

void CpuOps::sparse_attention(std::span<const AttentionQuery> queries, int64_t n_heads, int64_t dim,
                              const float* sink, float scale, HostTensor& out) {
  int64_t nq = static_cast<int64_t>(queries.size());
  out.resize({nq, n_heads, dim});
  bool round = bf16_acts();
  parallel_for(nq * n_heads, [&](int64_t b, int64_t e) {
    std::vector<float> z, acc(static_cast<size_t>(dim));
    for (int64_t i = b; i < e; ++i) {
      int64_t qi = i / n_heads, h = i % n_heads;
      const AttentionQuery& q = queries[static_cast<size_t>(qi)];
      const float* qh = q.q + h * dim;
      size_t n = q.keys.size();
      check(n > 0, "sparse_attention: empty key list");
      z.resize(n);
      float m = -std::numeric_limits<float>::infinity();
      for (size_t s = 0; s < n; ++s) {
        z[s] = dot_f32(qh, q.keys[s], dim) * scale;
        m = std::max(m, z[s]);
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      float denom = 0;
      for (size_t s = 0; s < n; ++s) {
        float pe = std::exp(z[s] - m);
        denom += pe;  // the denominator sums unrounded exponentials (spec §13.2)
        float pv = round ? round_bf16(pe) : pe;
        const float* k = q.keys[s];
        for (int64_t c = 0; c < dim; ++c) acc[c] += pv * k[c];
      }
      denom += std::exp(sink[h] - m);
      float* o = out.data() + i * dim;
      for (int64_t c = 0; c < dim; ++c) o[c] = round ? round_bf16(acc[c] / denom) : acc[c] / denom;
    }
  });
}

void CpuOps::indexer_scores(const HostTensor& q, const HostTensor& w, std::span<const float* const> keys,
                            std::span<const int64_t> n_keys, int64_t n_heads, int64_t head_dim,
                            std::vector<std::vector<float>>& scores) {
  int64_t T = static_cast<int64_t>(n_keys.size());
  scores.resize(static_cast<size_t>(T));
  bool round = bf16_acts();
  parallel_for(T, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      auto& sc = scores[static_cast<size_t>(t)];
      int64_t n = n_keys[static_cast<size_t>(t)];
      sc.assign(static_cast<size_t>(n), 0.0f);
      const float* qt = q.data() + t * n_heads * head_dim;
      const float* wt = w.data() + t * n_heads;
      for (int64_t s = 0; s < n; ++s) {
        float total = 0;
        for (int64_t h = 0; h < n_heads; ++h) {
          float d = dot_f32(qt + h * head_dim, keys[static_cast<size_t>(s)], head_dim);
          if (round) d = round_bf16(d);
          float r = d > 0 ? d : 0.0f;
          total += round ? round_bf16(wt[h] * r) : wt[h] * r;
          if (round) total = round_bf16(total);
        }
        sc[static_cast<size_t>(s)] = total;
      }
    }
  }, 1);
}

void CpuOps::softmax_pool(std::span<const float* const> a_rows, std::span<const float* const> g_rows,
                          int64_t dim, float* out) {
  size_t n = a_rows.size();
  check(n == g_rows.size() && n > 0, "softmax_pool: candidate lists differ or are empty");
  for (int64_t k = 0; k < dim; ++k) {
    float m = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < n; ++i) m = std::max(m, g_rows[i][k]);
    float den = 0, num = 0;
    for (size_t i = 0; i < n; ++i) {
      float p = std::exp(g_rows[i][k] - m);
      den += p;
      num += p * a_rows[i][k];
    }
    out[k] = num / den;
  }
}

}  // namespace dsv4::backend
