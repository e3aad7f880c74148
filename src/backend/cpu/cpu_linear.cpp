// Linear layers of the CPU reference: y = x · Wᵀ with W dequantized a block of rows at a time into a
// per-thread buffer (weights stay in their checkpoint format), parallel over output rows. In Bf16 mode the
// input of an FP8/FP4 linear is FP8-act-quantized (blocks of 128, ue8m0 scales), the input of the other kinds
// (and of grouped_linear) rounded to bf16, and the output rounded.
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/numerics.h"
#include "core/parallel.h"
#include "weights/quant/dequant.h"

namespace dsv4::backend {

float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

namespace {

constexpr int64_t kRowBlock = 16;

// y[t, n0..n1) for all t, W rows dequantized in blocks.
void linear_rows(const float* x, int64_t T, int64_t K, const Weight& w, int64_t n0, int64_t n1, float* y,
                 int64_t N) {
  thread_local std::vector<float> wbuf;
  wbuf.resize(static_cast<size_t>(kRowBlock * K));
  for (int64_t nb = n0; nb < n1; nb += kRowBlock) {
    int64_t ne = std::min(n1, nb + kRowBlock);
    weights::dequant_rows(w, nb, ne, wbuf.data());
    for (int64_t t = 0; t < T; ++t) {
      const float* xr = x + t * K;
      for (int64_t n = nb; n < ne; ++n) y[t * N + n] = dot_f32(xr, wbuf.data() + (n - nb) * K, K);
    }
  }
}

void linear_f32(const float* x, int64_t T, int64_t K, const Weight& w, float* y) {
  int64_t N = w.rows();
  parallel_for((N + kRowBlock - 1) / kRowBlock, [&](int64_t b, int64_t e) {
    linear_rows(x, T, K, w, b * kRowBlock, std::min(N, e * kRowBlock), y, N);
  });
}

}  // namespace

void CpuOps::linear(const HostTensor& x, const Weight& w, HostTensor& y, LinearKind kind) {
  int64_t K = w.cols(), N = w.rows();
  check(x.numel() % K == 0, [&] { return "linear " + w.name + ": input width does not match in_features " +
                                std::to_string(K); });
  int64_t T = x.numel() / K;
  y.resize({T, N});
  const float* xin = x.data();
  std::vector<float> xq;
  bool quantized = w.quant != weights::Quant::None;
  if (bf16_acts() && kind == LinearKind::Quantized && quantized && K % 128 == 0) {
    xq.assign(x.data(), x.data() + x.numel());
    for (int64_t t = 0; t < T; ++t) fp8_fake_quant(xq.data() + t * K, static_cast<size_t>(K), 128);
    xin = xq.data();
  } else if (bf16_acts() && kind != LinearKind::Quantized) {
    // The reference holds activations in bf16, so a Bf16 / F32 linear reads bf16 values (a no-op where the model
    // rounded them already, as it does at every such linear; the CUDA dense path then needs no low bf16 half).
    xq.resize(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < xq.size(); ++i) xq[i] = round_bf16(x.data()[i]);
    xin = xq.data();
  }
  linear_f32(xin, T, K, w, y.data());
  if (bf16_acts() && kind != LinearKind::F32) round_act(y);
}

void CpuOps::grouped_linear(const HostTensor& x, const Weight& w, int64_t groups, HostTensor& y) {
  int64_t Kg = w.cols(), R = w.rows() / groups;
  check(w.rows() % groups == 0, [&] { return "grouped linear " + w.name + ": rows not divisible by groups"; });
  check(x.numel() % (groups * Kg) == 0, [&] { return "grouped linear " + w.name + ": input width mismatch"; });
  int64_t T = x.numel() / (groups * Kg);
  y.resize({T, groups * R});
  int64_t N = groups * R;
  std::vector<float> xr;  // Bf16 numerics: bf16 input values, as CpuOps::linear's Bf16 / F32 kinds
  const float* xin = x.data();
  if (bf16_acts()) {
    xr.resize(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < xr.size(); ++i) xr[i] = round_bf16(x.data()[i]);
    xin = xr.data();
  }
  parallel_for((N + kRowBlock - 1) / kRowBlock, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> wbuf;
    wbuf.resize(static_cast<size_t>(kRowBlock * Kg));
    for (int64_t nb = b * kRowBlock; nb < std::min(N, e * kRowBlock); nb += kRowBlock) {
      int64_t ne = std::min(N, nb + kRowBlock);
      weights::dequant_rows(w, nb, ne, wbuf.data());
      for (int64_t t = 0; t < T; ++t)
        for (int64_t n = nb; n < ne; ++n) {
          int64_t g = n / R;
          y.data()[t * N + n] = dot_f32(xin + (t * groups + g) * Kg, wbuf.data() + (n - nb) * Kg, Kg);
        }
    }
  });
  if (bf16_acts()) round_act(y);
}

void CpuOps::embed(const Weight& table, std::span<const int32_t> ids, HostTensor& out) {
  int64_t D = table.cols();
  out.resize({static_cast<int64_t>(ids.size()), D});
  for (size_t i = 0; i < ids.size(); ++i) {
    check(ids[i] >= 0 && ids[i] < table.rows(), [&] { return "token id " + std::to_string(ids[i]) + " out of range"; });
    weights::dequant_rows(table, ids[i], ids[i] + 1, out.row(static_cast<int64_t>(i)));
  }
}

void CpuOps::round_act(HostTensor& x) {
  if (!bf16_acts()) return;
  for (float& v : x.vec()) v = round_bf16(v);
}

}  // namespace dsv4::backend
