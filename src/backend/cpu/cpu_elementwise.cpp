// Row-wise ops of the CPU reference: RMSNorm (weighted and the unweighted per-head q norm), interleaved
// RoPE on the trailing rope dims, the cache roundings (FP8 KV fake-quant, Hadamard + FP4 indexer), and the
// small data-movement ops (hc_expand, gather_rows, add, scale, add_position_rows).
#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "core/numerics.h"
#include "core/parallel.h"
#include "weights/quant/dequant.h"

namespace dsv4::backend {

void CpuOps::rms_norm(HostTensor& x, int64_t dim, const Weight* w, float eps) {
  check(dim > 0 && x.numel() % dim == 0, "rms_norm: size not a multiple of dim");
  std::vector<float> wv;
  if (w) {
    check(w->rows() == dim, [&] { return "rms_norm: weight " + w->name + " has " + std::to_string(w->rows()) +
                                " elements, expected " + std::to_string(dim); });
    wv = weights::dequant_all(*w);
  }
  int64_t n = x.numel() / dim;
  bool round = bf16_acts();
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* v = x.data() + r * dim;
      double ss = 0;  // sum of squares in f64 then f32 mean: order-independent enough, deterministic
      for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(v[i]) * v[i];
      float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(dim)) + eps);
      for (int64_t i = 0; i < dim; ++i) {
        float y = v[i] * inv;
        if (w) y *= wv[static_cast<size_t>(i)];
        v[i] = round ? round_bf16(y) : y;
      }
    }
  }, 16);
}

void CpuOps::rope(HostTensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos,
                  const RopeTable& table, bool inverse) {
  check(x.numel() % dim == 0 && rope_dim <= dim && rope_dim % 2 == 0, "rope: bad dims");
  check(static_cast<int64_t>(table.freqs.size()) == rope_dim / 2, "rope: table size mismatch");
  int64_t T = static_cast<int64_t>(pos.size());
  check(T > 0 && x.numel() % T == 0, "rope: rows do not match positions");
  int64_t segs = x.numel() / (T * dim);
  bool round = bf16_acts();
  parallel_for(T, [&](int64_t b, int64_t e) {
    std::vector<float> c(static_cast<size_t>(rope_dim / 2)), s(c.size());
    for (int64_t t = b; t < e; ++t) {
      float p = static_cast<float>(pos[static_cast<size_t>(t)]);
      for (size_t i = 0; i < c.size(); ++i) {
        float ang = p * table.freqs[i];
        c[i] = std::cos(ang);
        s[i] = inverse ? -std::sin(ang) : std::sin(ang);
      }
      for (int64_t g = 0; g < segs; ++g) {
        float* v = x.data() + (t * segs + g) * dim + (dim - rope_dim);
        for (size_t i = 0; i < c.size(); ++i) {
          float a = v[2 * i], bb = v[2 * i + 1];
          float y0 = a * c[i] - bb * s[i], y1 = a * s[i] + bb * c[i];
          v[2 * i] = round ? round_bf16(y0) : y0;
          v[2 * i + 1] = round ? round_bf16(y1) : y1;
        }
      }
    }
  }, 4);
}

void CpuOps::kv_round(HostTensor& x, int64_t dim, int64_t rope_dim, KvCacheDtype dt) {
  int64_t n = x.numel() / dim, nope = dim - rope_dim;
  for (int64_t r = 0; r < n; ++r) {
    float* v = x.data() + r * dim;
    if (dt == KvCacheDtype::Fp8) {
      // The reference's KV is bf16 before the fake-quant; the rope dims stay bf16.
      for (int64_t i = 0; i < dim; ++i) v[i] = round_bf16(v[i]);
      fp8_fake_quant(v, static_cast<size_t>(nope), 64);
    } else if (dt == KvCacheDtype::Bf16) {
      for (int64_t i = 0; i < dim; ++i) v[i] = round_bf16(v[i]);
    }
  }
}

void CpuOps::indexer_round(HostTensor& x, int64_t dim, IndexerDtype dt) {
  int64_t n = x.numel() / dim;
  for (int64_t r = 0; r < n; ++r) {
    float* v = x.data() + r * dim;
    if (dt == IndexerDtype::Fp4) {
      for (int64_t i = 0; i < dim; ++i) v[i] = round_bf16(v[i]);
      hadamard_inplace(v, static_cast<size_t>(dim), true);
      fp4_fake_quant(v, static_cast<size_t>(dim), 32);
    } else if (dt == IndexerDtype::Bf16) {
      for (int64_t i = 0; i < dim; ++i) v[i] = round_bf16(v[i]);
    }
  }
}

void CpuOps::hc_expand(const HostTensor& h, int64_t hc, HostTensor& X) {
  const int64_t T = h.dim(0), D = h.row_size();
  X.resize({T, hc, D});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < hc; ++j) std::copy(h.row(t), h.row(t) + D, X.data() + (t * hc + j) * D);
}

void CpuOps::gather_rows(const HostTensor& x, std::span<const int64_t> rows, HostTensor& out) {
  const int64_t width = x.row_size();
  Shape s = x.shape();
  s[0] = static_cast<int64_t>(rows.size());
  out.resize(s);
  for (size_t i = 0; i < rows.size(); ++i) {
    check(rows[i] >= 0 && rows[i] < x.dim(0), "gather_rows: row out of range");
    std::copy(x.row(rows[i]), x.row(rows[i]) + width, out.row(static_cast<int64_t>(i)));
  }
}

void CpuOps::add(HostTensor& y, const HostTensor& x) {
  const int64_t n = y.numel(), m = x.numel();
  check(m > 0 && n % m == 0, [&] { return "add: element counts " + std::to_string(n) + " and " + std::to_string(m); });
  float* yd = y.data();
  const float* xd = x.data();
  for (int64_t i = 0; i < n; ++i) yd[i] += xd[i % m];
}

void CpuOps::scale(HostTensor& x, float s) {
  for (float& v : x.vec()) v *= s;
}

void CpuOps::add_position_rows(HostTensor& x, const Weight& table, std::span<const int64_t> pos) {
  const std::vector<float> tab = weights::dequant_all(table);
  const int64_t width = x.row_size(), m = table.rows();
  check(shape_numel(table.shape) == m * width, "add_position_rows: table width differs from the rows'");
  check(static_cast<int64_t>(pos.size()) == x.dim(0), "add_position_rows: one position per row");
  for (int64_t r = 0; r < x.dim(0); ++r) {
    const float* a = tab.data() + (pos[static_cast<size_t>(r)] % m) * width;
    float* o = x.row(r);
    for (int64_t i = 0; i < width; ++i) o[i] += a[i];
  }
}

}  // namespace dsv4::backend
