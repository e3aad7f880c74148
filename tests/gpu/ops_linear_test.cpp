// CudaOps linear family vs CpuOps (src/backend/cpu/cpu_linear.cpp is the spec), both numerics (official: Bf16
// acts with FP8 act_quant; exact_f32) on fresh random inputs with NaN-poisoned outputs:
//  * linear on every weight format (FP8 e8m0 and f32 scales, BF16, F32, MXFP4) and kind (Quantized, Bf16, F32),
//    tiny shapes that hit partial FP8 blocks (K = 64, 200; N = 96, 130, 200), K % 4 != 0, N % 16 != 0, and each
//    path: fp8-decode (fused act_quant + mma, M <= 64: cluster split-K, partial row groups), fp8 (act_quant +
//    cuBLASLt above), gemv (M <= 16: gemv16 for BF16/FP8 with K % 16 == 0, the scalar kernel otherwise), dense
//    cuBLASLt (bf16 hi/lo, f32);
//  * Flash shapes: wq_a, wq_b, wo_b (FP8), compressor wkv/gate/weights_proj/head (BF16), M = 1, 64, prefill;
//  * grouped_linear (wo_a): tiny (partial FP8 block, BF16) and Flash G=8, R=1024, Kg=4096 FP8; the fp8-gemv path
//    (FP8 weights, M <= 4: e8m0 and f32 scales, 3 K-blocks, R % 8 != 0 fallback) and its timing rows at M = 1, 2,
//    4 (8, 16 forced through linear_fp8_gemv_max_m) next to "legacy" rows (linear_fp8_gemv=0, the gemv16 path)
//    and the dense GEMM on the bf16 copy from M = 5;
//  * embed: BF16, F32, FP8 tables.
// Timing rows for the Flash decode shapes (M = 1, 64; FP8 also 4, 8, 16, 32; BF16 also 32, and 4, 8, 16 both as
// GEMV and forced dense ("-dense", linear_gemv_max_m=0); head also 256) and one
// prefill shape per family. Decode timings rotate
// over weight copies totalling at least three L2 sizes, so they measure HBM, not L2.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/gemm/launch.h"
#include "backend/cuda/ops/context.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/dtype.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

using backend::CpuOps;
using backend::CudaOps;
using backend::LinearKind;
using backend::Numerics;

constexpr double kTolF32 = 1e-4;  // f32 math, no rounding: only the summation order (and bf16 hi/lo split) differs

enum class Fmt { Fp8, Fp8ScaleF32, Bf16, F32, Mxfp4 };

const char* fmt_name(Fmt f) {
  switch (f) {
    case Fmt::Fp8: return "fp8";
    case Fmt::Fp8ScaleF32: return "fp8/f32-scale";
    case Fmt::Bf16: return "bf16";
    case Fmt::F32: return "f32";
    default: return "mxfp4";
  }
}

const char* kind_name(LinearKind k) {
  return k == LinearKind::Quantized ? "quantized" : k == LinearKind::Bf16 ? "bf16-out" : "f32-out";
}


// A checkpoint-format weight on the host; view() points into the vectors (keep the object alive).
struct HostWeight {
  Fmt fmt = Fmt::F32;
  int64_t N = 0, K = 0;
  std::vector<uint8_t> data, scale;
  weights::Weight view() const {
    weights::Weight w;
    w.name = std::string(fmt_name(fmt)) + "_weight";
    w.shape = {N, K};
    w.data = data.data();
    switch (fmt) {
      case Fmt::Fp8:
      case Fmt::Fp8ScaleF32:
        w.quant = weights::Quant::Fp8Block128;
        w.dtype = DType::F8_E4M3;
        w.scale = scale.data();
        w.scale_dtype = fmt == Fmt::Fp8 ? DType::F8_E8M0 : DType::F32;
        w.scale_shape = {(N + 127) / 128, (K + 127) / 128};
        break;
      case Fmt::Bf16: w.dtype = DType::BF16; break;
      case Fmt::F32: w.dtype = DType::F32; break;
      case Fmt::Mxfp4:
        w.quant = weights::Quant::Mxfp4;
        w.dtype = DType::I8;
        w.scale = scale.data();
        w.scale_dtype = DType::F8_E8M0;
        w.scale_shape = {N, K / 32};
        break;
    }
    return w;
  }
  size_t bytes() const { return data.size() + scale.size(); }
};

HostWeight make_weight(Env& env, Fmt fmt, int64_t N, int64_t K) {
  HostWeight h;
  h.fmt = fmt;
  h.N = N;
  h.K = K;
  FastRng r{env.rng()};
  const size_t n = static_cast<size_t>(N * K);
  auto e8m0 = [&](int lo, int hi) { return static_cast<uint8_t>(lo + static_cast<int>(r.next() % (hi - lo + 1))); };
  switch (fmt) {
    case Fmt::Fp8:
    case Fmt::Fp8ScaleF32: {
      h.data.resize(n);
      for (auto& b : h.data) {
        b = static_cast<uint8_t>(r.next());
        if ((b & 0x7F) == 0x7F) b ^= 0x01;  // no NaN codes
      }
      const size_t ns = static_cast<size_t>(((N + 127) / 128) * ((K + 127) / 128));
      if (fmt == Fmt::Fp8) {
        h.scale.resize(ns);
        for (auto& s : h.scale) s = e8m0(127 - 14, 127 - 10);
      } else {
        std::vector<float> s(ns);
        for (auto& v : s) v = static_cast<float>(1.0 + (r.next() % 1000) / 1000.0) * 0x1p-12f;  // HF scale_inv
        h.scale.resize(ns * 4);
        std::memcpy(h.scale.data(), s.data(), ns * 4);
      }
      break;
    }
    case Fmt::Bf16: {
      h.data.resize(n * 2);
      uint16_t* p = reinterpret_cast<uint16_t*>(h.data.data());
      for (size_t i = 0; i < n; ++i) {
        const uint64_t v = r.next();
        const uint16_t exp = static_cast<uint16_t>(127 - 9 + (v >> 8) % 5);  // |w| in [2^-9, 2^-4)
        p[i] = static_cast<uint16_t>(((v >> 20) & 1) << 15 | exp << 7 | (v & 0x7F));
      }
      break;
    }
    case Fmt::F32: {
      h.data.resize(n * 4);
      std::normal_distribution<float> nd(0.0f, 0.05f);
      float* p = reinterpret_cast<float*>(h.data.data());
      for (size_t i = 0; i < n; ++i) p[i] = nd(env.rng);
      break;
    }
    case Fmt::Mxfp4:
      h.data.resize(n / 2);
      for (auto& b : h.data) b = static_cast<uint8_t>(r.next());
      h.scale.resize(static_cast<size_t>(N * (K / 32)));
      for (auto& s : h.scale) s = e8m0(127 - 8, 127 - 4);
      break;
  }
  return h;
}

// Activations: bf16 values with per-row magnitudes (official numerics), or plain f32 values (exact_f32).
Tensor make_x(Env& env, int64_t M, int64_t K, bool f32_values) {
  Tensor x({M, K});
  if (f32_values) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& v : x.vec()) v = nd(env.rng);
  } else {
    x.vec() = random_activations(env.rng, M, K);
  }
  return x;
}

bool official(const Numerics& n) { return n.act == backend::ActDtype::Bf16; }
const char* num_name(const Numerics& n) { return official(n) ? "bf16" : "f32"; }


cudaStream_t ops_stream() { return cuda::CudaContext::get().stream(); }

// Copies of h for timing: distinct host buffers (so distinct device uploads) totalling >= 3 L2 sizes.
std::vector<std::unique_ptr<HostWeight>> rotation(Env& env, const HostWeight& h) {
  const size_t want = std::max<size_t>(1, std::min<size_t>(8, (3 * env.l2_bytes + h.bytes() - 1) / h.bytes()));
  std::vector<std::unique_ptr<HostWeight>> v;
  for (size_t i = 0; i < want; ++i) v.push_back(std::make_unique<HostWeight>(h));
  return v;
}

// One linear check (and optional timing) of weight h at M rows.
// ref_rows > 0: the CPU reference covers only the first ref_rows rows (rows are independent; the 1 GB head at
// M = 256 is too slow on the CPU), and only those rows are compared.
void linear_case(Env& env, const Numerics& num, const HostWeight& h, LinearKind kind, int64_t M, bool timed,
                 const std::string& label = "", int64_t ref_rows = 0) {
  const int64_t N = h.N, K = h.K;
  const std::string detail = fmt("%s%s %s M=%lld N=%lld K=%lld %s", label.c_str(), label.empty() ? "" : ":",
                                 fmt_name(h.fmt), static_cast<long long>(M), static_cast<long long>(N),
                                 static_cast<long long>(K), kind_name(kind));
  const weights::Weight w = h.view();
  const Tensor x = make_x(env, M, K, !official(num));
  CpuOps cpu(num);
  Tensor ref;
  const int64_t R = ref_rows > 0 ? std::min(ref_rows, M) : M;
  if (R == M) {
    cpu.linear(x, w, ref, kind);
  } else {
    Tensor xr({R, K});
    std::memcpy(xr.data(), x.data(), static_cast<size_t>(R * K) * sizeof(float));
    cpu.linear(xr, w, ref, kind);
  }
  CudaOps gpu(num);
  const Tensor xd = x.to(Device::Cuda);
  Tensor y = poisoned({M, N});
  gpu.linear(xd, w, y, kind);
  Tensor got = y.to(Device::Host);
  const bool shape_ok = got.shape() == Shape{M, N};
  if (R != M && shape_ok) {
    Tensor gr({R, N});
    std::memcpy(gr.data(), got.data(), static_cast<size_t>(R * N) * sizeof(float));
    got = std::move(gr);
  }
  const bool rounded = official(num) && kind != LinearKind::F32;
  const bool fp8_path = official(num) && kind == LinearKind::Quantized && h.fmt != Fmt::Bf16 && h.fmt != Fmt::F32 &&
                        K % 128 == 0;
  const double tol = !rounded ? kTolF32 : fp8_path ? kTolFp8Gemm : kTolBf16Rowwise;
  env.report.check(std::string("linear/") + num_name(num), detail,
                   compare(got.data(), ref.data(), static_cast<size_t>(std::min(got.numel(), ref.numel()))), tol,
                   shape_ok, shape_ok ? "" : "output shape " + shape_str(got.shape()));
  if (!timed) return;
  const auto copies = rotation(env, h);
  std::vector<weights::Weight> views;
  for (const auto& c : copies) views.push_back(c->view());
  for (const auto& v : views) gpu.linear(xd, v, y, kind);  // uploads and plans outside the timing
  const cuda::Timing t = cuda::time_on_stream(
      ops_stream(), [&](int i) { gpu.linear(xd, views[static_cast<size_t>(i) % views.size()], y, kind); });
  const double bytes = static_cast<double>(h.bytes()) + 8.0 * M * K + 4.0 * M * N;
  env.report.perf(std::string("linear/") + num_name(num), detail, t, bytes, 2.0 * M * N * K, env.ceil);
}

void grouped_case(Env& env, const Numerics& num, const HostWeight& h, int64_t groups, int64_t M, bool timed,
                  const std::string& label = "") {
  const int64_t Kg = h.K, N = h.N;
  const std::string detail = fmt("%s%s %s M=%lld G=%lld R=%lld Kg=%lld", label.c_str(), label.empty() ? "" : ":",
                                 fmt_name(h.fmt), static_cast<long long>(M), static_cast<long long>(groups),
                                 static_cast<long long>(N / groups), static_cast<long long>(Kg));
  const weights::Weight w = h.view();
  const Tensor x = make_x(env, M, groups * Kg, !official(num));
  CpuOps cpu(num);
  Tensor ref;
  cpu.grouped_linear(x, w, groups, ref);
  CudaOps gpu(num);
  const Tensor xd = x.to(Device::Cuda);
  Tensor y = poisoned({M, N});
  gpu.grouped_linear(xd, w, groups, y);
  const Tensor got = y.to(Device::Host);
  const bool shape_ok = got.shape() == Shape{M, N};
  env.report.check(std::string("grouped_linear/") + num_name(num), detail,
                   compare(got.data(), ref.data(), static_cast<size_t>(std::min(got.numel(), ref.numel()))),
                   official(num) ? kTolBf16Rowwise : kTolF32, shape_ok);
  if (!timed) return;
  const auto copies = rotation(env, h);
  std::vector<weights::Weight> views;
  for (const auto& c : copies) views.push_back(c->view());
  for (const auto& v : views) gpu.grouped_linear(xd, v, groups, y);
  const cuda::Timing t = cuda::time_on_stream(
      ops_stream(), [&](int i) { gpu.grouped_linear(xd, views[static_cast<size_t>(i) % views.size()], groups, y); });
  const double bytes = static_cast<double>(h.bytes()) + 4.0 * M * groups * Kg + 4.0 * M * N;
  env.report.perf(std::string("grouped_linear/") + num_name(num), detail, t, bytes, 2.0 * M * N * Kg, env.ceil);
}

void embed_case(Env& env, const Numerics& num, const HostWeight& table, int64_t T, bool timed) {
  const std::string detail = fmt("%s V=%lld D=%lld T=%lld", fmt_name(table.fmt), static_cast<long long>(table.N),
                                 static_cast<long long>(table.K), static_cast<long long>(T));
  const weights::Weight w = table.view();
  std::vector<int32_t> ids(static_cast<size_t>(T));
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(table.N - 1));
  for (auto& id : ids) id = pick(env.rng);
  if (T > 1) ids[1] = ids[0];  // repeated token
  CpuOps cpu(num);
  Tensor ref;
  cpu.embed(w, ids, ref);
  CudaOps gpu(num);
  Tensor y = poisoned({T, table.K});
  gpu.embed(w, ids, y);
  const Tensor got = y.to(Device::Host);
  size_t mismatches = got.shape() == ref.shape() ? 0 : 1;
  for (int64_t i = 0; mismatches == 0 && i < got.numel(); ++i)
    mismatches += !(got.data()[i] == ref.data()[i]);
  env.report.exact(std::string("embed/") + num_name(num), detail, static_cast<size_t>(ref.numel()), mismatches);
  if (!timed) return;
  const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) { gpu.embed(w, ids, y); });
  const double elem = table.fmt == Fmt::Bf16 ? 2.0 : table.fmt == Fmt::F32 ? 4.0 : 1.0;
  env.report.perf(std::string("embed/") + num_name(num), detail, t, T * table.K * (elem + 4.0), 0, env.ceil);
}

void tiny_cases(Env& env, const Numerics& num) {
  struct Case {
    Fmt fmt;
    int64_t N, K;
    LinearKind kind;
    std::vector<int64_t> Ms;
  };
  const std::vector<Case> cases = {
      // fp8 path: fused fp8-decode kernel (M <= 64; here row_warps 1, cluster 2), then act_quant + cuBLASLt
      {Fmt::Fp8, 256, 256, LinearKind::Quantized, {1, 5, 16, 17, 40, 64, 80}},
      {Fmt::Fp8, 48, 1152, LinearKind::Quantized, {1, 9, 33}},         // fp8-decode: partial row group, 9 K-blocks
      {Fmt::Fp8, 2048, 512, LinearKind::Quantized, {2, 64}},            // fp8-decode: row_warps 8, cluster > 1
      // N·K > 4M, K <= 4096: fp8-decode to M = 8, act_quant + cuBLASLt above (mma only to M = 4)
      {Fmt::Fp8, 4096, 2048, LinearKind::Quantized, {3, 8, 9, 12}},
      {Fmt::Fp8ScaleF32, 256, 384, LinearKind::F32, {3}},               // gemv16 on f32 weight scales
      {Fmt::Fp8, 200, 256, LinearKind::Quantized, {3, 40}},             // N % 16 != 0: fake-quant + generic
      {Fmt::Fp8, 96, 64, LinearKind::Quantized, {3, 40}},               // K = 64: partial block, no act_quant
      {Fmt::Fp8, 130, 200, LinearKind::Bf16, {2, 33}},                  // partial blocks in N and K
      {Fmt::Fp8ScaleF32, 256, 384, LinearKind::Quantized, {4, 24}},     // HF f32 weight_scale_inv
      {Fmt::Fp8, 128, 256, LinearKind::F32, {3, 20}},
      {Fmt::Bf16, 256, 256, LinearKind::Quantized, {3, 40}},
      {Fmt::Bf16, 256, 256, LinearKind::F32, {3, 40}},
      {Fmt::Bf16, 256, 256, LinearKind::Bf16, {40}},
      {Fmt::Bf16, 64, 99, LinearKind::F32, {5, 21}},                    // K % 4 != 0: scalar gemv, unaligned ld
      {Fmt::F32, 128, 256, LinearKind::F32, {3, 40}},
      {Fmt::F32, 48, 64, LinearKind::Bf16, {7, 19}},
      {Fmt::Mxfp4, 64, 256, LinearKind::Quantized, {2, 20}},
  };
  for (const Case& c : cases) {
    const HostWeight h = make_weight(env, c.fmt, c.N, c.K);
    for (int64_t M : c.Ms) linear_case(env, num, h, c.kind, M, false);
  }
  {
    const HostWeight h = make_weight(env, Fmt::Fp8, 2 * 64, 64);  // head_dim 64 wo_a: partial FP8 K block
    for (int64_t M : {3, 40}) grouped_case(env, num, h, 2, M, false, "tiny");
  }
  {
    const HostWeight h = make_weight(env, Fmt::Bf16, 4 * 32, 256);
    for (int64_t M : {1, 20}) grouped_case(env, num, h, 4, M, false, "tiny");
  }
  {  // fp8-gemv: 3 K-blocks, groups of 24 rows (tiles of 8 inside 128-row scale blocks), token tiles 1, 2, 4
    const HostWeight h = make_weight(env, Fmt::Fp8, 4 * 24, 384);
    for (int64_t M : {1, 2, 3, 4, 5}) grouped_case(env, num, h, 4, M, false, "tiny-fp8gemv");
    const HostWeight hf = make_weight(env, Fmt::Fp8ScaleF32, 2 * 136, 256);  // f32 scales, rows across blocks
    for (int64_t M : {1, 4}) grouped_case(env, num, hf, 2, M, false, "tiny-fp8gemv");
    const HostWeight hr = make_weight(env, Fmt::Fp8, 2 * 20, 128);  // R % 8 != 0: the gemv fallback
    grouped_case(env, num, hr, 2, 1, false, "tiny-fp8gemv-fallback");
    const PathSwitch<int64_t> m16(cuda::kernel_paths().linear_fp8_gemv_max_m, int64_t{16});
    for (int64_t M : {7, 16}) grouped_case(env, num, h, 4, M, false, "tiny-fp8gemv-m16");
  }
  embed_case(env, num, make_weight(env, Fmt::Bf16, 1000, 256), 7, false);
  embed_case(env, num, make_weight(env, Fmt::F32, 50, 100), 5, false);
  embed_case(env, num, make_weight(env, Fmt::Fp8, 300, 200), 6, false);
}

void flash_cases(Env& env, const Numerics& num) {
  struct Case {
    const char* label;
    Fmt fmt;
    int64_t N, K;
    LinearKind kind;
    int64_t prefill_M;  // 0: none
  };
  const std::vector<Case> cases = {
      {"wq_a", Fmt::Fp8, 1024, 4096, LinearKind::Quantized, 4096},
      {"wq_b", Fmt::Fp8, 32768, 1024, LinearKind::Quantized, 0},
      {"wo_b", Fmt::Fp8, 4096, 8192, LinearKind::Quantized, 0},
      {"compressor", Fmt::Bf16, 1024, 4096, LinearKind::F32, 4096},
      {"gate", Fmt::Bf16, 256, 4096, LinearKind::F32, 0},
      {"weights_proj", Fmt::Bf16, 64, 4096, LinearKind::Bf16, 0},
  };
  for (const Case& c : cases) {
    if (!official(num) && c.fmt == Fmt::Bf16 && c.prefill_M == 0) continue;
    const HostWeight h = make_weight(env, c.fmt, c.N, c.K);
    for (int64_t M : {1, 64}) linear_case(env, num, h, c.kind, M, true, c.label);
    if (official(num) && c.fmt == Fmt::Fp8)  // the fp8-decode / cuBLASLt crossover (fp8_decode_max_m)
      for (int64_t M : {4, 8, 16, 32}) linear_case(env, num, h, c.kind, M, true, c.label);
    if (official(num) && c.fmt == Fmt::Bf16) linear_case(env, num, h, c.kind, 32, true, c.label);  // dense stacked
    if (official(num) && c.fmt == Fmt::Bf16) {  // the GEMV / dense crossover (linear_gemv_max_m)
      for (int64_t M : {4, 8, 16}) linear_case(env, num, h, c.kind, M, true, c.label);
      const PathSwitch<int64_t> dense(cuda::kernel_paths().linear_gemv_max_m, int64_t{0});
      for (int64_t M : {4, 8, 16}) linear_case(env, num, h, c.kind, M, true, std::string(c.label) + "-dense");
    }
    if (!env.quick && official(num) && c.prefill_M > 0) linear_case(env, num, h, c.kind, c.prefill_M, true, c.label);
  }
  {
    const HostWeight h = make_weight(env, Fmt::Fp8, 8 * 1024, 4096);  // wo_a (FP8 as the checkpoint stores it)
    for (int64_t M : {1, 32, 64}) grouped_case(env, num, h, 8, M, true, "wo_a");  // 32, 64: cached bf16, stacked
    for (int64_t M : {2, 4}) grouped_case(env, num, h, 8, M, true, "wo_a");        // fp8-gemv token tiles 2, 4
    for (int64_t M : {5, 8, 16}) grouped_case(env, num, h, 8, M, true, "wo_a");     // dense on the bf16 copy
    {
      const PathSwitch<int64_t> m16(cuda::kernel_paths().linear_fp8_gemv_max_m, int64_t{16});
      for (int64_t M : {8, 16}) grouped_case(env, num, h, 8, M, true, "wo_a-fp8gemv");  // 2, 4 tiles of 4 tokens
    }
    {
      const PathSwitch<bool> legacy(cuda::kernel_paths().linear_fp8_gemv, false);  // before: gemv16
      for (int64_t M : {1, 4, 8}) grouped_case(env, num, h, 8, M, true, "wo_a-legacy");
    }
    if (!env.quick && official(num)) grouped_case(env, num, h, 8, 1024, true, "wo_a");
  }
  if (!env.quick && official(num)) {
    const HostWeight head = make_weight(env, Fmt::Bf16, 129280, 4096);
    for (int64_t M : {1, 16, 64}) linear_case(env, num, head, LinearKind::F32, M, M != 16, "head");
    linear_case(env, num, head, LinearKind::F32, 256, true, "head", 8);  // batch-256 decode; reference: 8 rows
    embed_case(env, num, head, 64, true);
  }
}

// fp8_decode schedules of the Flash decode shapes run in one wave: a grid of more clusters than the GPU holds
// at once ran in two (run 70: wo_b as 32 clusters of 8 against 30 resident, SMs active 47 % of the time). Also
// the expert FFN's stacked w1|w3 and its w2 (shared expert, expert_ffn at n <= 16). M up to 16: the engine
// takes the kernel for no more rows (fp8_decode_max_m, expert_ffn); at M = 64 wq_b and wo_b have no one-wave
// configuration (their smem per CTA allows 15 resident clusters of 8).
void decode_schedule_cases(Env& env) {
  const std::vector<std::pair<int64_t, int64_t>> nk = {
      {1024, 4096}, {32768, 1024}, {4096, 8192}, {512, 4096}, {8192, 1024}, {4096, 4096}, {4096, 2048}};
  for (const auto& [N, K] : nk)
    for (int64_t M : {1, 4, 8, 16}) {
      const cuda::Fp8DecodeSchedule s = cuda::fp8_decode_schedule_for_device({M, N, K}, env.device_sms);
      const int cap = s.ok ? cuda::fp8_decode_max_clusters(s.tok_tiles, s.cluster, s.smem_bytes) : 0;
      const bool one_wave = s.ok && cap > 0 && s.row_ctas <= cap;
      env.report.exact("fp8_decode schedule", fmt("M=%lld N=%lld K=%lld", static_cast<long long>(M),
                                                  static_cast<long long>(N), static_cast<long long>(K)),
                       1, one_wave ? 0 : 1,
                       fmt("row_warps=%d cluster=%d ctas=%d resident clusters=%d", s.row_warps, s.cluster,
                           s.row_ctas * s.cluster, cap));
    }
}

// linear_pair: the attention's wq_a and wkv from one input, one fp8_decode launch while the stacked shape takes
// that kernel (M <= 8), else the two linear calls (M = 16); each output against the CPU's linear, timed against
// the two calls.
void pair_cases(Env& env) {
  const Numerics num{};
  const HostWeight a = make_weight(env, Fmt::Fp8, 1024, 4096), b = make_weight(env, Fmt::Fp8, 512, 4096);
  const weights::Weight wa = a.view(), wb = b.view();
  CpuOps cpu(num);
  CudaOps gpu(num);
  for (int64_t M : {1, 4, 8, 16}) {
    const std::string detail = fmt("wq_a+wkv M=%lld", static_cast<long long>(M));
    const Tensor x = make_x(env, M, 4096, false);
    Tensor ra, rb;
    cpu.linear(x, wa, ra, LinearKind::Quantized);
    cpu.linear(x, wb, rb, LinearKind::Quantized);
    const Tensor xd = x.to(Device::Cuda);
    Tensor ya = poisoned({M, 1024}), yb = poisoned({M, 512});
    gpu.linear_pair(xd, wa, wb, ya, yb, LinearKind::Quantized);
    const Tensor ga = ya.to(Device::Host), gb = yb.to(Device::Host);
    env.report.check("linear_pair/official", detail + " wq_a", compare(ga.data(), ra.data(), ra.vec().size()),
                     kTolFp8Gemm, ga.shape() == ra.shape());
    env.report.check("linear_pair/official", detail + " wkv", compare(gb.data(), rb.data(), rb.vec().size()),
                     kTolFp8Gemm, gb.shape() == rb.shape());
    if (M != 1 && M != 8) continue;
    const double bytes = static_cast<double>(a.bytes() + b.bytes()) + 4.0 * M * 4096 + 4.0 * M * 1536;
    const cuda::Timing tp = cuda::time_on_stream(
        ops_stream(), [&](int) { gpu.linear_pair(xd, wa, wb, ya, yb, LinearKind::Quantized); });
    env.report.perf("linear_pair/official", detail + " pair", tp, bytes, 2.0 * M * 1536 * 4096, env.ceil);
    const cuda::Timing t2 = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.linear(xd, wa, ya, LinearKind::Quantized);
      gpu.linear(xd, wb, yb, LinearKind::Quantized);
    });
    env.report.perf("linear_pair/official", detail + " two calls", t2, bytes, 2.0 * M * 1536 * 4096, env.ceil);
  }
}

// linear_pair of the Bf16 / F32 kinds (the compressor's wkv and wgate): one linear_gemv16 launch over both weights
// at decode rows, against the CPU's two linears; FP8 rows of odd counts check the second weight's scale rows.
void gemv_pair_cases(Env& env, const Numerics& num) {
  struct Case {
    const char* label;
    Fmt fmt;
    int64_t N1, N2;
    LinearKind kind;
  };
  const std::vector<Case> cases = {{"compressor wkv+wgate", Fmt::Bf16, 1024, 1024, LinearKind::F32},
                                   {"indexer compressor", Fmt::Bf16, 256, 256, LinearKind::F32},
                                   {"bf16 kind", Fmt::Bf16, 64, 200, LinearKind::Bf16},
                                   {"fp8 odd rows", Fmt::Fp8, 200, 136, LinearKind::F32}};
  CpuOps cpu(num);
  for (const Case& c : cases) {
    const HostWeight a = make_weight(env, c.fmt, c.N1, 4096), b = make_weight(env, c.fmt, c.N2, 4096);
    const weights::Weight wa = a.view(), wb = b.view();
    CudaOps gpu(num);  // per case: its device-weight cache is keyed by host addresses, which the next case reuses
    for (int64_t M : {1, 4, 16}) {
      const std::string detail = fmt("%s M=%lld", c.label, static_cast<long long>(M));
      const Tensor x = make_x(env, M, 4096, !official(num));
      Tensor ra, rb;
      cpu.linear(x, wa, ra, c.kind);
      cpu.linear(x, wb, rb, c.kind);
      const Tensor xd = x.to(Device::Cuda);
      Tensor ya = poisoned({M, c.N1}), yb = poisoned({M, c.N2});
      gpu.linear_pair(xd, wa, wb, ya, yb, c.kind);
      const Tensor ga = ya.to(Device::Host), gb = yb.to(Device::Host);
      const double tol = official(num) && c.kind != LinearKind::F32 ? kTolBf16Rowwise : kTolF32;
      const std::string name = std::string("linear_pair/") + num_name(num);
      env.report.check(name, detail + " first", compare(ga.data(), ra.data(), ra.vec().size()), tol,
                       ga.shape() == ra.shape());
      env.report.check(name, detail + " second", compare(gb.data(), rb.data(), rb.vec().size()), tol,
                       gb.shape() == rb.shape());
      if (M != 1 || c.N1 != 1024 || !official(num)) continue;
      const double bytes = static_cast<double>(a.bytes() + b.bytes()) + 4.0 * M * 4096;
      const cuda::Timing tp =
          cuda::time_on_stream(ops_stream(), [&](int) { gpu.linear_pair(xd, wa, wb, ya, yb, c.kind); });
      env.report.perf(name, detail + " pair", tp, bytes, 2.0 * M * (c.N1 + c.N2) * 4096, env.ceil);
      const cuda::Timing t2 = cuda::time_on_stream(ops_stream(), [&](int) {
        gpu.linear(xd, wa, ya, c.kind);
        gpu.linear(xd, wb, yb, c.kind);
      });
      env.report.perf(name, detail + " two calls", t2, bytes, 2.0 * M * (c.N1 + c.N2) * 4096, env.ceil);
    }
  }
}

}  // namespace

void test_ops_linear(Env& env) {
  decode_schedule_cases(env);
  pair_cases(env);
  for (const Numerics& num : {Numerics{}, Numerics::exact_f32()}) gemv_pair_cases(env, num);
  for (const Numerics& num : {Numerics{}, Numerics::exact_f32()}) {
    tiny_cases(env, num);
    flash_cases(env, num);
  }
}

}  // namespace dsv4::gpu_test
