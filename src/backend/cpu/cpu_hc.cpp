// mHC ops of the CPU reference (spec §4): hc_pre with the Sinkhorn-normalised comb matrix, hc_post and
// hc_head. All mixing coefficients stay f32; outputs are rounded once (Bf16 mode).
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/parallel.h"
#include "weights/quant/dequant.h"

namespace dsv4::backend {
namespace {

float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

// mu = (fn · v) * rsqrt(mean(v²) + eps) for one token; v f32 [hc*D], fn [n_out, hc*D].
void hc_mix(const float* v, int64_t width, const std::vector<float>& fn, int64_t n_out, float eps,
            float* mu) {
  double ss = 0;
  for (int64_t i = 0; i < width; ++i) ss += static_cast<double>(v[i]) * v[i];
  float rho = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(width)) + eps);
  for (int64_t o = 0; o < n_out; ++o) mu[o] = dot_f32(fn.data() + o * width, v, width) * rho;
}

// Sinkhorn of spec §4.1 step 4 on C [hc, hc] (row = source stream, column = destination).
void sinkhorn(float* C, int64_t hc, int64_t iters, float eps) {
  for (int64_t j = 0; j < hc; ++j) {
    float* row = C + j * hc;
    float mx = row[0];
    for (int64_t k = 1; k < hc; ++k) mx = std::max(mx, row[k]);
    float sum = 0;
    for (int64_t k = 0; k < hc; ++k) sum += (row[k] = std::exp(row[k] - mx));
    for (int64_t k = 0; k < hc; ++k) row[k] = row[k] / sum + eps;
  }
  auto col_norm = [&] {
    for (int64_t k = 0; k < hc; ++k) {
      float s = 0;
      for (int64_t j = 0; j < hc; ++j) s += C[j * hc + k];
      for (int64_t j = 0; j < hc; ++j) C[j * hc + k] /= (s + eps);
    }
  };
  col_norm();
  for (int64_t it = 1; it < iters; ++it) {
    for (int64_t j = 0; j < hc; ++j) {
      float s = 0;
      for (int64_t k = 0; k < hc; ++k) s += C[j * hc + k];
      for (int64_t k = 0; k < hc; ++k) C[j * hc + k] /= (s + eps);
    }
    col_norm();
  }
}

// out[c] = Σ_j pre_j · X[j][c] in f32, rounded once (spec §4.1 step 5, §4.4).
void collapse_streams(const float* X, const float* pre, int64_t hc, int64_t D, bool round, float* out) {
  for (int64_t c = 0; c < D; ++c) {
    float s = 0;
    for (int64_t j = 0; j < hc; ++j) s += pre[j] * X[j * D + c];
    out[c] = round ? round_bf16(s) : s;
  }
}

}  // namespace

void CpuOps::hc_pre(const HostTensor& X, const HcWeights& w, const HcParams& p, HostTensor& x,
                    HostTensor& post, HostTensor& comb) {
  int64_t hc = p.hc, width = X.row_size(), D = width / hc, T = X.dim(0);
  int64_t n_mix = (2 + hc) * hc;
  check(w.fn.rows() == n_mix && w.fn.cols() == width, [&] { return "hc_pre: fn shape mismatch for " + w.fn.name; });
  std::vector<float> fn = weights::dequant_all(w.fn), base = weights::dequant_all(w.base),
                     scale = weights::dequant_all(w.scale);
  x.resize({T, D});
  post.resize({T, hc});
  comb.resize({T, hc, hc});
  bool round = bf16_acts();
  parallel_for(T, [&](int64_t b, int64_t e) {
    std::vector<float> mu(static_cast<size_t>(n_mix)), pre(static_cast<size_t>(hc));
    for (int64_t t = b; t < e; ++t) {
      const float* v = X.row(t);
      hc_mix(v, width, fn, n_mix, p.norm_eps, mu.data());
      for (int64_t j = 0; j < hc; ++j) {
        pre[j] = sigmoid(mu[j] * scale[0] + base[j]) + p.hc_eps;
        post.data()[t * hc + j] = 2.0f * sigmoid(mu[hc + j] * scale[1] + base[hc + j]);
      }
      float* C = comb.data() + t * hc * hc;
      for (int64_t i = 0; i < hc * hc; ++i) C[i] = mu[2 * hc + i] * scale[2] + base[2 * hc + i];
      sinkhorn(C, hc, p.sinkhorn_iters, p.hc_eps);
      collapse_streams(v, pre.data(), hc, D, round, x.row(t));
    }
  }, 4);
}

void CpuOps::hc_post(const HostTensor& a, const HostTensor& R, const HostTensor& post,
                     const HostTensor& comb, HostTensor& out) {
  int64_t T = a.dim(0), D = a.row_size(), hc = post.row_size();
  check(R.numel() == T * hc * D, "hc_post: residual shape mismatch");
  out.resize({T, hc, D});
  bool round = bf16_acts();
  parallel_for(T, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float* C = comb.data() + t * hc * hc;
      const float* r = R.row(t);
      for (int64_t k = 0; k < hc; ++k) {
        float pk = post.data()[t * hc + k];
        float* o = out.data() + (t * hc + k) * D;
        for (int64_t c = 0; c < D; ++c) {
          float s = pk * a.data()[t * D + c];
          for (int64_t j = 0; j < hc; ++j) s += C[j * hc + k] * r[j * D + c];
          o[c] = round ? round_bf16(s) : s;
        }
      }
    }
  }, 4);
}

void CpuOps::hc_head(const HostTensor& X, const HcWeights& w, const HcParams& p, HostTensor& y) {
  int64_t hc = p.hc, width = X.row_size(), D = width / hc, T = X.dim(0);
  check(w.fn.rows() == hc && w.fn.cols() == width, [&] { return "hc_head: fn shape mismatch for " + w.fn.name; });
  std::vector<float> fn = weights::dequant_all(w.fn), base = weights::dequant_all(w.base),
                     scale = weights::dequant_all(w.scale);
  y.resize({T, D});
  bool round = bf16_acts();
  parallel_for(T, [&](int64_t b, int64_t e) {
    std::vector<float> mu(static_cast<size_t>(hc)), pre(static_cast<size_t>(hc));
    for (int64_t t = b; t < e; ++t) {
      const float* v = X.row(t);
      hc_mix(v, width, fn, hc, p.norm_eps, mu.data());
      for (int64_t j = 0; j < hc; ++j) pre[j] = sigmoid(mu[j] * scale[0] + base[j]) + p.hc_eps;
      collapse_streams(v, pre.data(), hc, D, round, y.row(t));
    }
  }, 4);
}

}  // namespace dsv4::backend
