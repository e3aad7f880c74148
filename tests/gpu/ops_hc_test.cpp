// CudaOps mHC and row-wise ops vs CpuOps (src/backend/cpu/cpu_hc.cpp and cpu_elementwise.cpp are the spec),
// both numerics (official Bf16 acts; exact_f32), fresh random inputs, NaN-poisoned device outputs:
//  * hc_pre / hc_head: tiny (T = 3, D = 256), hc = 3 with D = 65 (scalar paths, n_mix = 15), and the Flash
//    shapes (hc = 4, D = 4096) at T = 1, 64 (decode configurations of the mixing GEMV) and 1024 (prefill);
//  * hc_post: the same shapes (bit-exact with the reference up to the final rounding);
//  * rms_norm (f32, in place): weighted 4096 / 7168 / 1024, unweighted per-head 512 and 64, dims that take the
//    generic kernel (130, 10000);
//  * round_act, scale, add (same size and repeated), hc_expand, gather_rows, add_position_rows: exact.
// Timing rows: hc_pre, hc_post, hc_head and rms_norm at Flash decode (T = 1, 64) and prefill (T = 4096).
// Decode paths vs the ones they replaced (kernel_paths): hc_pre / hc_head in one kernel (hc_fused) vs the two
// kernels, bitwise, at T = 1, 2, 3, 8, 33, 64 and hc = 3 / D = 65, timed at T = 1, 8, 64 ("legacy" rows);
// rope with inline positions (rope_inline) and copy_rows with inline pointer lists (copy_rows_inline) vs the
// uploaded forms, bitwise (and rope vs the CPU), timed at the decode shapes (q: 64 heads x 512, rope 64).
// A fresh CudaOps per case: DeviceWeights caches by host pointer, and test vectors are freed between cases.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/ops/context.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/dtype.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

using backend::CpuOps;
using backend::CudaOps;
using backend::HcParams;
using backend::Numerics;

constexpr double kTolF32 = 1e-5;     // f32 math, no rounding: summation order and expf ulps only
constexpr double kTolExact = 1e-12;  // ops that must reproduce the reference (copies, single roundings)

const char* num_name(const Numerics& n) { return n.act == backend::ActDtype::Bf16 ? "bf16" : "f32"; }
bool bf16(const Numerics& n) { return n.act == backend::ActDtype::Bf16; }
double tol_for(const Numerics& n) { return bf16(n) ? kTolBf16Rowwise : kTolF32; }

std::vector<float> random_f32(std::mt19937_64& rng, size_t n, float sigma, float mean = 0.0f) {
  std::normal_distribution<float> nd(mean, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Residual-stream-like rows (per-row magnitudes 2^-4..2^4); bf16 values in Bf16 mode, full f32 otherwise.
std::vector<float> random_stream(std::mt19937_64& rng, int64_t rows, int64_t cols, bool round) {
  std::vector<float> v = random_activations(rng, rows, cols);
  if (!round) {
    std::uniform_real_distribution<float> jitter(-0.004f, 0.004f);
    for (auto& x : v) x *= 1.0f + jitter(rng);
  }
  return v;
}




size_t bit_mismatches(const Tensor& got_dev, const Tensor& ref) {
  const Tensor got = got_dev.to(Device::Host);
  if (got.numel() != ref.numel()) return static_cast<size_t>(std::max<int64_t>(ref.numel(), 1));
  size_t bad = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) bad += std::memcmp(got.data() + i, ref.data() + i, 4) != 0;
  return bad;
}

weights::Weight f32_weight(const std::string& name, Shape shape, const std::vector<float>& v) {
  weights::Weight w;
  w.name = name;
  w.dtype = DType::F32;
  w.shape = std::move(shape);
  w.data = v.data();
  return w;
}

// mHC parameters of one sublayer (pre = true) or of the head, with magnitudes like the checkpoint's:
// mu ~ N(0, 4), scale ~ 1, base ~ N(0, 0.25).
struct HcCase {
  std::vector<float> fn, base, scale;
  backend::HcWeights w;
  HcCase(std::mt19937_64& rng, int64_t hc, int64_t D, bool pre) {
    const int64_t n_mix = pre ? (2 + hc) * hc : hc, width = hc * D;
    fn = random_f32(rng, static_cast<size_t>(n_mix * width), 2.0f / std::sqrt(static_cast<float>(width)));
    base = random_f32(rng, static_cast<size_t>(n_mix), 0.5f);
    scale = pre ? std::vector<float>{0.8f, 0.6f, 1.5f} : std::vector<float>{0.9f};
    w.fn = f32_weight("hc_fn", {n_mix, width}, fn);
    w.base = f32_weight("hc_base", {n_mix}, base);
    w.scale = f32_weight("hc_scale", {static_cast<int64_t>(scale.size())}, scale);
  }
};

std::string hc_detail(const Numerics& n, int64_t T, int64_t hc, int64_t D) {
  const int64_t tiny = cuda::kernel_paths().hc_tiny_max_t;  // named when a row overrides the plans' default
  return fmt("%s T=%lld hc=%lld D=%lld%s", num_name(n), static_cast<long long>(T), static_cast<long long>(hc),
             static_cast<long long>(D), tiny == cuda::KernelPaths{}.hc_tiny_max_t ? "" :
             fmt(" hc_tiny_max_t=%lld", static_cast<long long>(tiny)).c_str());
}

cudaStream_t ops_stream() { return cuda::CudaContext::get().stream(); }

void test_hc_pre(Env& env, const Numerics& num, int64_t T, int64_t hc, int64_t D, bool timed) {
  const std::string detail = hc_detail(num, T, hc, D);
  HcCase wc(env.rng, hc, D, true);
  HcParams p;
  p.hc = hc;
  const Tensor X = host_tensor({T, hc, D}, random_stream(env.rng, T, hc * D, bf16(num)));
  CpuOps cpu(num);
  Tensor x, post, comb;
  cpu.hc_pre(X, wc.w, p, x, post, comb);
  CudaOps gpu(num);
  const Tensor Xd = X.to(Device::Cuda);
  Tensor xd = poisoned({T, D}), postd = poisoned({T, hc}), combd = poisoned({T, hc, hc});
  gpu.hc_pre(Xd, wc.w, p, xd, postd, combd);
  env.report.check("hc_pre x", detail, compare_tensors(xd, x), tol_for(num));
  env.report.check("hc_pre post", detail, compare_tensors(postd, post), kTolF32);
  env.report.check("hc_pre comb", detail, compare_tensors(combd, comb), kTolF32);
  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_pre(Xd, wc.w, p, xd, postd, combd); });
    const int64_t n_mix = (2 + hc) * hc, width = hc * D;
    const double bytes = 4.0 * (T * width + n_mix * width + T * D + T * (hc + hc * hc));
    env.report.perf("hc_pre", detail, t, bytes, 2.0 * T * n_mix * width, env.ceil);
  }
}

// hc_pre_norm: the fused norm epilogue against CUDA hc_pre + rms_norm (bitwise: same arithmetic) and the CPU
// reference's op sequence (tolerance of the precision recipe); post and comb as hc_pre's.
void test_hc_pre_norm(Env& env, const Numerics& num, int64_t T, int64_t hc, int64_t D, bool timed,
                      const char* tag = "") {
  const std::string detail = hc_detail(num, T, hc, D) + tag;
  HcCase wc(env.rng, hc, D, true);
  HcParams p;
  p.hc = hc;
  const std::vector<float> nv = random_f32(env.rng, static_cast<size_t>(D), 1.0f);
  const weights::Weight norm = f32_weight("norm", {D}, nv);
  const Tensor X = host_tensor({T, hc, D}, random_stream(env.rng, T, hc * D, bf16(num)));
  CpuOps cpu(num);
  Tensor x, post, comb;
  cpu.hc_pre_norm(X, wc.w, p, norm, 1e-6f, x, post, comb);
  CudaOps gpu(num);
  const Tensor Xd = X.to(Device::Cuda);
  Tensor xd = poisoned({T, D}), postd = poisoned({T, hc}), combd = poisoned({T, hc, hc});
  gpu.hc_pre_norm(Xd, wc.w, p, norm, 1e-6f, xd, postd, combd);
  Tensor xs = poisoned({T, D}), posts = poisoned({T, hc}), combs = poisoned({T, hc, hc});
  {
    const PathSwitch two(cuda::kernel_paths().hc_pre_norm, false);
    gpu.hc_pre_norm(Xd, wc.w, p, norm, 1e-6f, xs, posts, combs);
  }
  const Tensor xs_host = xs.to(Device::Host);
  env.report.exact("hc_pre_norm vs hc_pre + rms_norm", detail, static_cast<size_t>(xs_host.numel()),
                   bit_mismatches(xd, xs_host) + bit_mismatches(postd, posts.to(Device::Host)) +
                       bit_mismatches(combd, combs.to(Device::Host)));
  env.report.check("hc_pre_norm x", detail, compare_tensors(xd, x), tol_for(num));
  env.report.check("hc_pre_norm post", detail, compare_tensors(postd, post), kTolF32);
  if (timed) {
    const cuda::Timing t =
        cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_pre_norm(Xd, wc.w, p, norm, 1e-6f, xd, postd, combd); });
    const int64_t n_mix = (2 + hc) * hc, width = hc * D;
    const double bytes = 4.0 * (T * width + n_mix * width + T * D + T * (hc + hc * hc));
    env.report.perf("hc_pre_norm", detail, t, bytes, 2.0 * T * n_mix * width, env.ceil);
  }
}

void test_hc_head(Env& env, const Numerics& num, int64_t T, int64_t hc, int64_t D, bool timed) {
  const std::string detail = hc_detail(num, T, hc, D);
  HcCase wc(env.rng, hc, D, false);
  HcParams p;
  p.hc = hc;
  const Tensor X = host_tensor({T, hc, D}, random_stream(env.rng, T, hc * D, bf16(num)));
  CpuOps cpu(num);
  Tensor y;
  cpu.hc_head(X, wc.w, p, y);
  CudaOps gpu(num);
  const Tensor Xd = X.to(Device::Cuda);
  Tensor yd = poisoned({T, D});
  gpu.hc_head(Xd, wc.w, p, yd);
  env.report.check("hc_head", detail, compare_tensors(yd, y), tol_for(num));
  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_head(Xd, wc.w, p, yd); });
    const int64_t width = hc * D;
    env.report.perf("hc_head", detail, t, 4.0 * (T * width + hc * width + T * D), 2.0 * T * hc * width, env.ceil);
  }
}

void test_hc_post(Env& env, const Numerics& num, int64_t T, int64_t hc, int64_t D, bool timed) {
  const std::string detail = hc_detail(num, T, hc, D);
  const bool round = bf16(num);
  const Tensor a = host_tensor({T, D}, random_stream(env.rng, T, D, round));
  const Tensor R = host_tensor({T, hc, D}, random_stream(env.rng, T, hc * D, round));
  std::vector<float> pv(static_cast<size_t>(T * hc)), cv(static_cast<size_t>(T * hc * hc));
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (auto& v : pv) v = 2.0f * u(env.rng);
  for (auto& v : cv) v = u(env.rng) / static_cast<float>(hc);
  const Tensor post = host_tensor({T, hc}, pv), comb = host_tensor({T, hc, hc}, cv);
  CpuOps cpu(num);
  Tensor out;
  cpu.hc_post(a, R, post, comb, out);
  CudaOps gpu(num);
  const Tensor ad = a.to(Device::Cuda), Rd = R.to(Device::Cuda), pd = post.to(Device::Cuda), cd = comb.to(Device::Cuda);
  Tensor od = poisoned({T, hc, D});
  gpu.hc_post(ad, Rd, pd, cd, od);
  const size_t bad = bit_mismatches(od, out);
  env.report.check("hc_post", detail, compare_tensors(od, out), round ? kTolBf16Rowwise : kTolF32, true,
                   fmt("%zu values differ bitwise", bad));
  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_post(ad, Rd, pd, cd, od); });
    env.report.perf("hc_post", detail, t, 4.0 * T * D * (1 + 2 * hc), 0, env.ceil);
  }
}

void test_rms_norm_f32(Env& env, const Numerics& num, int64_t rows, int64_t dim, bool weighted, bool timed) {
  const std::string detail = fmt("%s rows=%lld dim=%lld%s", num_name(num), static_cast<long long>(rows),
                                 static_cast<long long>(dim), weighted ? "" : " unweighted");
  std::vector<float> wv = random_f32(env.rng, static_cast<size_t>(dim), 0.2f, 1.0f);
  for (auto& v : wv) v = round_bf16(v);
  const weights::Weight w = f32_weight("norm", {dim}, wv);
  const Tensor x = host_tensor({rows, dim}, random_stream(env.rng, rows, dim, bf16(num)));
  CpuOps cpu(num);
  Tensor ref = x;
  cpu.rms_norm(ref, dim, weighted ? &w : nullptr, 1e-6f);
  CudaOps gpu(num);
  Tensor xd = x.to(Device::Cuda);
  gpu.rms_norm(xd, dim, weighted ? &w : nullptr, 1e-6f);
  const size_t bad = bit_mismatches(xd, ref);
  env.report.check("rms_norm f32", detail, compare_tensors(xd, ref), tol_for(num), true, fmt("%zu values differ bitwise", bad));
  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.rms_norm(xd, dim, weighted ? &w : nullptr, 1e-6f);
    });
    env.report.perf("rms_norm f32", detail, t, 8.0 * rows * dim, 0, env.ceil);
  }
}

// The small ops: every result must equal the reference bit for bit.
void test_small_ops(Env& env, const Numerics& num, int64_t T, int64_t D) {
  const std::string detail = fmt("%s T=%lld D=%lld", num_name(num), static_cast<long long>(T), static_cast<long long>(D));
  CpuOps cpu(num);
  CudaOps gpu(num);
  auto exact = [&](const char* name, const Tensor& got, const Tensor& ref) {
    env.report.exact(name, detail, static_cast<size_t>(ref.numel()), bit_mismatches(got, ref));
  };
  const Tensor x = host_tensor({T, D}, random_f32(env.rng, static_cast<size_t>(T * D), 3.0f));
  {
    Tensor ref = x, got = x.to(Device::Cuda);
    cpu.round_act(ref);
    gpu.round_act(got);
    exact("round_act", got, ref);
  }
  {
    Tensor ref = x, got = x.to(Device::Cuda);
    cpu.scale(ref, 0.37f);
    gpu.scale(got, 0.37f);
    exact("scale", got, ref);
  }
  {
    const Tensor b = host_tensor({T, D}, random_f32(env.rng, static_cast<size_t>(T * D), 1.0f));
    Tensor ref = x, got = x.to(Device::Cuda);
    cpu.add(ref, b);
    gpu.add(got, b.to(Device::Cuda));
    exact("add", got, ref);
    const Tensor r = host_tensor({D}, random_f32(env.rng, static_cast<size_t>(D), 1.0f));  // repeated per row
    Tensor ref2 = x, got2 = x.to(Device::Cuda);
    cpu.add(ref2, r);
    gpu.add(got2, r.to(Device::Cuda));
    exact("add repeated", got2, ref2);
    Tensor ref3 = x, got3 = x.to(Device::Cuda);
    cpu.add_round(ref3, b);
    gpu.add_round(got3, b.to(Device::Cuda));
    exact("add_round", got3, ref3);
    Tensor ref4 = x, got4 = x.to(Device::Cuda);
    cpu.scale_round(ref4, 0.37f);
    gpu.scale_round(got4, 0.37f);
    exact("scale_round", got4, ref4);
  }
  {
    const int64_t hc = 4;
    Tensor ref, got = poisoned({T, hc, D});
    cpu.hc_expand(x, hc, ref);
    gpu.hc_expand(x.to(Device::Cuda), hc, got);
    exact("hc_expand", got, ref);
  }
  {
    std::uniform_int_distribution<int64_t> pick(0, T - 1);
    std::vector<int64_t> rows(static_cast<size_t>(T + 3));
    for (auto& r : rows) r = pick(env.rng);
    Tensor ref, got = poisoned({static_cast<int64_t>(rows.size()), D});
    cpu.gather_rows(x, rows, ref);
    gpu.gather_rows(x.to(Device::Cuda), rows, got);
    exact("gather_rows", got, ref);
  }
  {
    const int64_t m = 4;
    const std::vector<float> table = random_f32(env.rng, static_cast<size_t>(m * D), 0.5f);
    const weights::Weight tw = f32_weight("ape", {m, D}, table);
    std::uniform_int_distribution<int64_t> pos_d(0, 100000);
    std::vector<int64_t> pos(static_cast<size_t>(T));
    for (auto& q : pos) q = pos_d(env.rng);
    Tensor ref = x, got = x.to(Device::Cuda);
    cpu.add_position_rows(ref, tw, pos);
    gpu.add_position_rows(got, tw, pos);
    exact("add_position_rows", got, ref);
  }
}

size_t bit_mismatches_dev(const Tensor& a_dev, const Tensor& b_dev) {
  const Tensor a = a_dev.to(Device::Host), b = b_dev.to(Device::Host);
  if (a.numel() != b.numel()) return static_cast<size_t>(std::max<int64_t>(a.numel(), 1));
  size_t bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) bad += std::memcmp(a.data() + i, b.data() + i, 4) != 0;
  return bad;
}

// hc_pre and hc_head through the fused kernel (default) and the two kernels: bitwise equal; timed both ways.
// hc_pre / hc_head above the fused limit: the staged mix kernel (hc_mix_staged_kernel, the default at T > 128)
// against hc_mix_kernel, bitwise (same per-lane arithmetic), timed at the official numerics.
void test_hc_mix_paths(Env& env, const Numerics& num, int64_t T, int64_t hc, int64_t D, bool timed) {
  const std::string detail = hc_detail(num, T, hc, D);
  HcParams p;
  p.hc = hc;
  const Tensor Xd = host_tensor({T, hc, D}, random_stream(env.rng, T, hc * D, bf16(num))).to(Device::Cuda);
  CudaOps gpu(num);
  HcCase wc(env.rng, hc, D, true);
  Tensor x1 = poisoned({T, D}), p1 = poisoned({T, hc}), c1 = poisoned({T, hc, hc});
  Tensor x0 = poisoned({T, D}), p0 = poisoned({T, hc}), c0 = poisoned({T, hc, hc});
  gpu.hc_pre(Xd, wc.w, p, x1, p1, c1);
  {
    const PathSwitch legacy(cuda::kernel_paths().hc_mix_staged, false);
    gpu.hc_pre(Xd, wc.w, p, x0, p0, c0);
  }
  const size_t n = static_cast<size_t>(T * (D + hc + hc * hc));
  env.report.exact("hc_pre staged mix vs hc_mix_kernel", detail, n,
                   bit_mismatches_dev(x1, x0) + bit_mismatches_dev(p1, p0) + bit_mismatches_dev(c1, c0));
  HcCase wh(env.rng, hc, D, false);
  Tensor y1 = poisoned({T, D}), y0 = poisoned({T, D});
  gpu.hc_head(Xd, wh.w, p, y1);
  {
    const PathSwitch legacy(cuda::kernel_paths().hc_mix_staged, false);
    gpu.hc_head(Xd, wh.w, p, y0);
  }
  env.report.exact("hc_head staged mix vs hc_mix_kernel", detail, static_cast<size_t>(T * D),
                   bit_mismatches_dev(y1, y0));
  if (timed) {
    const int64_t n_mix = (2 + hc) * hc, width = hc * D;
    const double bytes = 4.0 * (T * width + n_mix * width + T * D + T * (hc + hc * hc));
    const cuda::Timing ts = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_pre(Xd, wc.w, p, x1, p1, c1); });
    env.report.perf("hc_pre staged", detail, ts, bytes, 2.0 * T * n_mix * width, env.ceil);
    const PathSwitch legacy(cuda::kernel_paths().hc_mix_staged, false);
    const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_pre(Xd, wc.w, p, x0, p0, c0); });
    env.report.perf("hc_pre hc_mix_kernel", detail, t, bytes, 2.0 * T * n_mix * width, env.ceil);
  }
}

void test_hc_fused_paths(Env& env, const Numerics& num, int64_t T, int64_t hc, int64_t D, bool timed) {
  const std::string detail = hc_detail(num, T, hc, D);
  HcParams p;
  p.hc = hc;
  const Tensor Xd = host_tensor({T, hc, D}, random_stream(env.rng, T, hc * D, bf16(num))).to(Device::Cuda);
  CudaOps gpu(num);
  {
    HcCase wc(env.rng, hc, D, true);
    Tensor x1 = poisoned({T, D}), p1 = poisoned({T, hc}), c1 = poisoned({T, hc, hc});
    Tensor x0 = poisoned({T, D}), p0 = poisoned({T, hc}), c0 = poisoned({T, hc, hc});
    gpu.hc_pre(Xd, wc.w, p, x1, p1, c1);
    gpu.hc_pre(Xd, wc.w, p, x1, p1, c1);  // twice: the tile counters must be back at zero
    {
      const PathSwitch legacy(cuda::kernel_paths().hc_fused, false);
      gpu.hc_pre(Xd, wc.w, p, x0, p0, c0);
    }
    const size_t n = static_cast<size_t>(T * (D + hc + hc * hc));
    env.report.exact("hc_pre fused vs 2 kernels", detail, n,
                     bit_mismatches_dev(x1, x0) + bit_mismatches_dev(p1, p0) + bit_mismatches_dev(c1, c0));
    if (timed) {
      const int64_t n_mix = (2 + hc) * hc, width = hc * D;
      const double bytes = 4.0 * (T * width + n_mix * width + T * D + T * (hc + hc * hc));
      const cuda::Timing tf = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_pre(Xd, wc.w, p, x1, p1, c1); });
      env.report.perf("hc_pre fused", detail + " 1 kernel", tf, bytes, 2.0 * T * n_mix * width, env.ceil);
      const PathSwitch legacy(cuda::kernel_paths().hc_fused, false);
      const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_pre(Xd, wc.w, p, x0, p0, c0); });
      env.report.perf("hc_pre legacy", detail + " 2 kernels", t, bytes, 2.0 * T * n_mix * width, env.ceil);
    }
  }
  {
    HcCase wc(env.rng, hc, D, false);
    Tensor y1 = poisoned({T, D}), y0 = poisoned({T, D});
    gpu.hc_head(Xd, wc.w, p, y1);
    {
      const PathSwitch legacy(cuda::kernel_paths().hc_fused, false);
      gpu.hc_head(Xd, wc.w, p, y0);
    }
    env.report.exact("hc_head fused vs 2 kernels", detail, static_cast<size_t>(T * D), bit_mismatches_dev(y1, y0));
    if (timed) {
      const int64_t width = hc * D;
      const cuda::Timing tf = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_head(Xd, wc.w, p, y1); });
      env.report.perf("hc_head fused", detail + " 1 kernel", tf, 4.0 * (T * width + hc * width + T * D),
                      2.0 * T * hc * width, env.ceil);
      const PathSwitch legacy(cuda::kernel_paths().hc_fused, false);
      const cuda::Timing t = cuda::time_on_stream(ops_stream(), [&](int) { gpu.hc_head(Xd, wc.w, p, y0); });
      env.report.perf("hc_head legacy", detail + " 2 kernels", t, 4.0 * (T * width + hc * width + T * D),
                      2.0 * T * hc * width, env.ceil);
    }
  }
}

// rope: inline positions (default) vs the uploaded arrays, bitwise, and vs the CPU; positions up to ~1M.
void test_rope_paths(Env& env, const Numerics& num, int64_t T, int64_t segs, int64_t dim, int64_t rope_dim,
                     bool inverse, bool timed) {
  const std::string detail = fmt("%s T=%lld segs=%lld dim=%lld rope=%lld%s", num_name(num), (long long)T,
                                 (long long)segs, (long long)dim, (long long)rope_dim, inverse ? " inverse" : "");
  backend::RopeTable table;
  for (int64_t i = 0; i < rope_dim / 2; ++i)
    table.freqs.push_back(static_cast<float>(std::pow(10000.0, -2.0 * double(i) / double(rope_dim))));
  std::vector<int64_t> pos(static_cast<size_t>(T));
  std::uniform_int_distribution<int64_t> pd(0, 1 << 20);
  for (auto& q : pos) q = pd(env.rng);
  const Tensor x = host_tensor({T, segs, dim}, random_stream(env.rng, T, segs * dim, bf16(num)));
  CpuOps cpu(num);
  CudaOps gpu(num);
  Tensor ref = x;
  cpu.rope(ref, dim, rope_dim, pos, table, inverse);
  Tensor d1 = x.to(Device::Cuda), d0 = x.to(Device::Cuda);
  gpu.rope(d1, dim, rope_dim, pos, table, inverse);
  {
    const PathSwitch legacy(cuda::kernel_paths().rope_inline, false);
    gpu.rope(d0, dim, rope_dim, pos, table, inverse);
  }
  env.report.check("rope", detail, compare_tensors(d1, ref), bf16(num) ? kTolBf16Rowwise : 1e-6);
  env.report.exact("rope inline vs uploaded", detail, static_cast<size_t>(x.numel()), bit_mismatches_dev(d1, d0));
  if (timed) {
    const double bytes = 8.0 * T * segs * rope_dim;
    const cuda::Timing t1 = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.rope(d1, dim, rope_dim, pos, table, inverse);
    });
    env.report.perf("rope", detail, t1, bytes, 0, env.ceil);
    const PathSwitch legacy(cuda::kernel_paths().rope_inline, false);
    const cuda::Timing t0 = cuda::time_on_stream(ops_stream(), [&](int) {
      gpu.rope(d0, dim, rope_dim, pos, table, inverse);
    });
    env.report.perf("rope legacy", detail + " uploaded", t0, bytes, 0, env.ceil);
  }
}

// copy_rows between rows of one pool: n copies from random rows to random rows (some repeated destinations and
// sources that an earlier copy wrote, so the call runs in several segments) or, `distinct`, row i to row n + i
// (one segment of n rows), at float offset `shift` (1: the scalar path). Inline lists (default) vs the uploaded
// lists vs the sequential host copies, bitwise.
void test_copy_rows_paths(Env& env, int64_t n, int64_t width, int64_t shift, bool distinct, bool timed) {
  const std::string detail = fmt("n=%lld width=%lld%s%s", (long long)n, (long long)width, shift ? " unaligned" : "",
                                 distinct ? " one segment" : "");
  const int64_t rows = 2 * n + 4, ld = width + 4;
  const Tensor pool = host_tensor({rows, ld}, random_f32(env.rng, static_cast<size_t>(rows * ld), 1.0f));
  std::uniform_int_distribution<int64_t> pick(0, rows - 1);
  std::vector<int64_t> from(static_cast<size_t>(n)), to(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    from[i] = distinct ? i : pick(env.rng);
    to[i] = distinct ? n + i : pick(env.rng);
  }
  if (!distinct && n > 2) to[n - 1] = to[0], from[n - 2] = to[0];  // a repeated destination; a source written before
  Tensor href = pool;
  Tensor d1 = pool.to(Device::Cuda), d0 = pool.to(Device::Cuda);
  auto lists = [&](float* base, std::vector<const float*>& s, std::vector<float*>& d) {
    s.clear();
    d.clear();
    for (int64_t i = 0; i < n; ++i) {
      s.push_back(base + from[i] * ld + shift);
      d.push_back(base + to[i] * ld + shift);
    }
  };
  std::vector<const float*> hs, s1, s0;
  std::vector<float*> hd, t1, t0;
  lists(href.data(), hs, hd);
  lists(d1.data(), s1, t1);
  lists(d0.data(), s0, t0);
  CpuOps cpu(Numerics{});
  CudaOps gpu(Numerics{});
  cpu.copy_rows(hs, hd, width);
  gpu.copy_rows(s1, t1, width);
  {
    const PathSwitch legacy(cuda::kernel_paths().copy_rows_inline, false);
    gpu.copy_rows(s0, t0, width);
  }
  env.report.exact("copy_rows inline", detail, static_cast<size_t>(pool.numel()), bit_mismatches(d1, href));
  env.report.exact("copy_rows uploaded", detail, static_cast<size_t>(pool.numel()), bit_mismatches(d0, href));
  if (timed) {
    const double bytes = 8.0 * n * width;
    const cuda::Timing a = cuda::time_on_stream(ops_stream(), [&](int) { gpu.copy_rows(s1, t1, width); });
    env.report.perf("copy_rows", detail, a, bytes, 0, env.ceil);
    const PathSwitch legacy(cuda::kernel_paths().copy_rows_inline, false);
    const cuda::Timing b = cuda::time_on_stream(ops_stream(), [&](int) { gpu.copy_rows(s0, t0, width); });
    env.report.perf("copy_rows legacy", detail + " uploaded", b, bytes, 0, env.ceil);
  }
}

// CudaContext::upload_bytes' contract: the host buffer may be reused as soon as the call returns. Many uploads
// from ONE host buffer overwritten right after each call, 16 B to 5 MiB; every device copy must equal the data
// of its own call.
void test_upload_reuse(Env& env) {
  cuda::CudaContext& ctx = cuda::CudaContext::get();
  std::uniform_int_distribution<size_t> small(1, 4096), large(size_t{1} << 20, size_t{3} << 20);
  std::vector<size_t> sizes;
  for (int i = 0; i < 90; ++i) sizes.push_back(i % 3 == 0 ? large(env.rng) / 4 * 4 : small(env.rng) * 4);  // words
  sizes.push_back(size_t{5} << 20);
  std::vector<std::vector<uint32_t>> expect;
  std::vector<cuda::Scratch> dev;
  std::vector<uint32_t> host;
  size_t total = 0;
  for (size_t bytes : sizes) {
    host.resize(bytes / 4);
    for (uint32_t& v : host) v = static_cast<uint32_t>(env.rng());
    dev.emplace_back(bytes);
    ctx.upload_bytes(dev.back().data(), host.data(), bytes);
    expect.push_back(host);
    std::fill(host.begin(), host.end(), 0xdeadbeefu);  // reuse the host buffer at once
    total += bytes;
  }
  size_t bad = 0, words = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<uint32_t> got(sizes[i] / 4);
    ctx.download_bytes(got.data(), dev[i].data(), sizes[i]);
    for (size_t k = 0; k < got.size(); ++k) bad += got[k] != expect[i][k];
    words += got.size();
  }
  const double mib = static_cast<double>(total) / (1 << 20);
  env.report.exact("upload host reuse", fmt("%zu uploads, %.1f MiB", sizes.size(), mib), words, bad);
}

}  // namespace

void test_ops_hc(Env& env) {
  test_upload_reuse(env);
  for (const Numerics num : {Numerics::exact_f32(), Numerics{}}) {
    const bool official = bf16(num);
    // hc_pre / hc_head: tiny, scalar paths (hc = 3, odd D), Flash decode and prefill configurations.
    for (auto [T, hc, D] : {std::tuple<int64_t, int64_t, int64_t>{3, 4, 256}, {5, 3, 65}, {1, 4, 4096},
                            {64, 4, 4096}, {1024, 4, 4096}}) {
      test_hc_pre(env, num, T, hc, D, false);
      test_hc_head(env, num, T, hc, D, false);
      test_hc_post(env, num, T, hc, D, false);
    }
    for (auto [rows, dim, weighted] : {std::tuple<int64_t, int64_t, bool>{64, 4096, true}, {3, 7168, true},
                                       {5, 1024, true}, {64 * 8, 512, false}, {33, 64, false}, {7, 130, true},
                                       {2, 10000, true}})
      test_rms_norm_f32(env, num, rows, dim, weighted, false);
    // hc_pre + norm in one kernel: decode tiles of 1 and 4 tokens, T = 64, the V4-Pro width (7168), and shapes
    // the epilogue does not take (D <= 512, T > 64: the two ops).
    for (auto [T, hc, D] : {std::tuple<int64_t, int64_t, int64_t>{1, 4, 4096}, {3, 4, 4096}, {64, 4, 4096},
                            {2, 4, 7168}, {3, 4, 256}, {100, 4, 4096}})
      test_hc_pre_norm(env, num, T, hc, D, false);
    test_small_ops(env, num, 7, 256);
    test_small_ops(env, num, 5, 66);
    // Decode paths vs the paths they replaced (bitwise), timed at the official numerics.
    for (auto [T, hc, D] : {std::tuple<int64_t, int64_t, int64_t>{1, 4, 4096}, {2, 4, 4096}, {3, 4, 256},
                            {8, 4, 4096}, {33, 4, 4096}, {64, 4, 4096}, {5, 3, 65}, {1, 2, 64}})
      test_hc_fused_paths(env, num, T, hc, D, official && hc == 4 && (T == 1 || T == 8 || T == 64));
    // Prefill mix (T > 128): Flash width, a partial token tile with hc = 3, a width that ends inside a K step.
    for (auto [T, hc, D] : {std::tuple<int64_t, int64_t, int64_t>{1024, 4, 4096}, {300, 3, 256}, {300, 4, 100},
                            {129, 1, 512}})
      test_hc_mix_paths(env, num, T, hc, D, official && T == 1024);
    test_rope_paths(env, num, 1, 64, 512, 64, false, official);   // q of one decode token
    test_rope_paths(env, num, 1, 64, 512, 64, true, official);    // o (inverse)
    test_rope_paths(env, num, 8, 64, 512, 64, false, official);   // q at batch 8
    test_rope_paths(env, num, 3, 1, 512, 64, false, official);    // compressor entries / kv rows
    test_rope_paths(env, num, 5, 3, 130, 6, true, false);         // odd dims
    test_rope_paths(env, num, 300, 2, 128, 64, false, false);     // above the inline limit: the uploaded path
    if (official) {
      test_copy_rows_paths(env, 1, 512, 0, false, true);     // window update, one decode token
      test_copy_rows_paths(env, 8, 1024, 0, true, true);     // compressor state rows, batch 8
      test_copy_rows_paths(env, 9, 512, 0, false, false);    // repeated rows: several segments
      test_copy_rows_paths(env, 5, 512, 1, false, false);    // unaligned: the scalar path
      test_copy_rows_paths(env, 300, 512, 0, true, false);   // chunks of kCopyInlineMaxRows
      test_copy_rows_paths(env, 90, 512, 0, false, false);   // random rows, the hash-set segmentation
      test_copy_rows_paths(env, 700, 130, 0, true, false);   // above the inline limit: the uploaded path
    }
    if (!official) continue;
    // Timing at the official numerics (the shapes the model runs).
    const int64_t prefill = env.quick ? 1024 : 4096;
    for (int64_t T : {int64_t{1}, int64_t{64}, prefill}) {
      test_hc_pre(env, num, T, 4, 4096, true);
      test_hc_head(env, num, T, 4, 4096, true);
      test_hc_post(env, num, T, 4, 4096, true);
      test_rms_norm_f32(env, num, T, 4096, true, true);
      test_hc_pre_norm(env, num, T, 4, 4096, true);
    }
    // The norm epilogue reading the collapsed rows back (hc_collapse_norm off): checked and timed against the
    // default (the rows above), where the collapsed values stay in registers.
    for (int64_t T : {int64_t{1}, int64_t{3}, int64_t{64}}) {
      const PathSwitch reread(cuda::kernel_paths().hc_collapse_norm, false);
      test_hc_pre_norm(env, num, T, 4, 4096, T != 3, " norm-reread");
    }
    for (int64_t T : {int64_t{8}, int64_t{64}}) {  // decode batches: 4 tokens per CTA (Small) or 1 (Tiny)
      for (int64_t tiny : {int64_t{2}, T}) {
        const PathSwitch<int64_t> plan(cuda::kernel_paths().hc_tiny_max_t, tiny);
        test_hc_head(env, num, T, 4, 4096, true);
        test_hc_pre_norm(env, num, T, 4, 4096, true);
      }
    }
  }
}

}  // namespace dsv4::gpu_test
