// FP8 linears (spec §2.3 act_quant, §2.6 block-scaled GEMM) against the CPU reference:
//  * act_quant: bit-exact codes and e8m0 scales vs core fp8_act_quant, NaN/Inf blocks included;
//  * e8m0 -> f32 weight-scale conversion: bit-exact;
//  * cuBLASLt scale layouts: the layout this backend assumes (x_scale M-major, w_scale K-major padded to 4) must
//    match; the alternatives are reported as notes, so a mismatch says which layout cuBLASLt really reads;
//  * GEMM on Flash shapes (wq_a, wq_b, wo_b, shared w1) for decode M = 1, 5, 16, 64 and prefill M = 4096, on both
//    paths (cuBLASLt block-scaled, mma.sync kernel), vs CpuOps::linear (act_quant fake-quant + f32 dot + bf16).
// Decode timings rotate over weight copies totalling several L2 sizes, so they measure HBM, not L2.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/launch.h"
#include "backend/cuda/gemm/linear_launch.h"
#include "core/dtype.h"
#include "core/numerics.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

using cuda::DeviceBuffer;
constexpr size_t kWorkspaceBytes = 32ull << 20;

struct HostFp8Weight {
  int64_t N = 0, K = 0;
  std::vector<uint8_t> q;      // e4m3 [N, K]
  std::vector<uint8_t> scale;  // e8m0 [N/128, K/128]
  weights::Weight view() const {
    weights::Weight w;
    w.name = "fp8_weight";
    w.quant = weights::Quant::Fp8Block128;
    w.dtype = DType::F8_E4M3;
    w.shape = {N, K};
    w.data = q.data();
    w.scale = scale.data();
    w.scale_dtype = DType::F8_E8M0;
    w.scale_shape = {(N + 127) / 128, K / 128};
    return w;
  }
};

HostFp8Weight make_weight(std::mt19937_64& rng, int64_t N, int64_t K) {
  HostFp8Weight w;
  w.N = N;
  w.K = K;
  w.q.resize(static_cast<size_t>(N * K));
  std::normal_distribution<float> nd(0.0f, 64.0f);
  for (auto& b : w.q) b = f32_to_e4m3(nd(rng));
  w.scale.resize(static_cast<size_t>(((N + 127) / 128) * (K / 128)));
  std::uniform_int_distribution<int> ex(127 - 14, 127 - 10);  // 2^-14 .. 2^-10, checkpoint-like
  for (auto& s : w.scale) s = static_cast<uint8_t>(ex(rng));
  return w;
}

// Device-side quantized activation of x f32 [M, K] (bf16 values): codes, f32 scales in (stride_m, stride_kb).
struct DeviceAct {
  DeviceBuffer x, q, scale, scale_e8m0;
};

DeviceAct quantize_on_device(Env& env, const std::vector<float>& x, int64_t M, int64_t K, int64_t stride_m,
                             int64_t stride_kb) {
  DeviceAct a;
  const std::vector<uint16_t> xb = to_bf16_bits(x);
  a.x = DeviceBuffer(xb.size() * 2);
  a.q = DeviceBuffer(static_cast<size_t>(M * K));
  a.scale = DeviceBuffer(static_cast<size_t>(M * (K / 128)) * 4);
  a.scale_e8m0 = DeviceBuffer(static_cast<size_t>(M * (K / 128)));
  cudaStream_t s = env.stream.get();
  a.x.upload(xb.data(), a.x.bytes(), s);
  a.q.fill_bytes(0x7F, s);
  a.scale.fill_bytes(0xFF, s);
  a.scale_e8m0.fill_bytes(0xFE, s);
  cuda::ActQuantParams p;
  p.x = a.x.as<__nv_bfloat16>();
  p.q = a.q.as<uint8_t>();
  p.scale = a.scale.as<float>();
  p.scale_e8m0 = a.scale_e8m0.as<uint8_t>();
  p.M = M;
  p.K = static_cast<int32_t>(K);
  p.scale_stride_m = stride_m;
  p.scale_stride_kb = stride_kb;
  cuda::launch_act_quant(p, s);
  return a;
}

void check_act_quant(Env& env) {
  const int64_t M = 257, K = 4096, kb = K / 128;
  std::vector<float> x = random_activations(env.rng, M, K);
  x[static_cast<size_t>(3 * K + 2 * 128 + 5)] = NAN;
  x[static_cast<size_t>(7 * K)] = INFINITY;
  x[static_cast<size_t>(9 * K + 128 + 7)] = -INFINITY;
  for (int64_t i = 0; i < 128; ++i) x[static_cast<size_t>(11 * K + 3 * 128 + i)] = 0.0f;  // amax floor 1e-4
  DeviceAct a = quantize_on_device(env, x, M, K, 1, M);
  std::vector<uint8_t> q(static_cast<size_t>(M * K)), se(static_cast<size_t>(M * kb));
  std::vector<float> sf(static_cast<size_t>(M * kb));
  a.q.download(q.data(), q.size(), env.stream.get());
  a.scale_e8m0.download(se.data(), se.size(), env.stream.get());
  a.scale.download(sf.data(), sf.size() * 4, env.stream.get());
  env.stream.synchronize();
  std::vector<uint8_t> rq(q.size()), rs(se.size());
  for (int64_t m = 0; m < M; ++m)
    fp8_act_quant(x.data() + m * K, static_cast<size_t>(K), 128, rq.data() + m * K, rs.data() + m * kb);
  size_t bad_q = 0, bad_s = 0, bad_f = 0;
  for (size_t i = 0; i < q.size(); ++i) bad_q += q[i] != rq[i];
  for (int64_t m = 0; m < M; ++m)
    for (int64_t b = 0; b < kb; ++b) {
      const uint8_t want = rs[static_cast<size_t>(m * kb + b)];
      bad_s += se[static_cast<size_t>(m * kb + b)] != want;
      const float f = sf[static_cast<size_t>(b * M + m)];  // [K/128, M] layout
      const float fw = e8m0_to_f32(want);
      bad_f += !(std::isnan(fw) ? std::isnan(f) : std::memcmp(&f, &fw, 4) == 0);
    }
  const std::string d = fmt("M=%lld K=%lld (NaN/Inf/zero blocks)", static_cast<long long>(M),
                            static_cast<long long>(K));
  env.report.exact("act_quant codes", d, q.size(), bad_q);
  env.report.exact("act_quant e8m0", d, se.size(), bad_s);
  env.report.exact("act_quant f32 scale", d, sf.size(), bad_f, "layout [K/128, M]");

  // act_quant_f32 (the FP8 MoE / linear input quantization of f32 rows) and act_quant on bf16 rows (the FP8 MoE's
  // h), 3 blocks per row: act_quant's warps (two blocks each) span rows, and 257 x 3 blocks leave a half warp.
  {
    const int64_t Mf = 257, Kf = 384, kbf = Kf / 128;
    std::vector<float> xf = random_activations(env.rng, Mf, Kf);
    xf[static_cast<size_t>(5 * Kf + 130)] = NAN;
    xf[static_cast<size_t>(256 * Kf + 300)] = -INFINITY;
    for (int64_t i = 0; i < 128; ++i) xf[static_cast<size_t>(7 * Kf + i)] = 0.0f;
    const std::vector<uint16_t> xb = to_bf16_bits(xf);
    for (const bool bf16 : {false, true}) {
      std::vector<float> xr = xf;  // the values the kernel reads
      if (bf16)
        for (size_t i = 0; i < xr.size(); ++i) {
          const uint32_t u = static_cast<uint32_t>(xb[i]) << 16;
          std::memcpy(&xr[i], &u, 4);
        }
      DeviceBuffer dx(xr.size() * 4), dq(static_cast<size_t>(Mf * Kf)), ds(static_cast<size_t>(Mf * kbf) * 4);
      cudaStream_t s = env.stream.get();
      if (bf16) dx.upload(xb.data(), xb.size() * 2, s);
      else dx.upload(xr.data(), xr.size() * 4, s);
      dq.fill_bytes(0x55, s);
      ds.fill_bytes(0x55, s);
      if (bf16) {
        cuda::ActQuantParams p;
        p.x = dx.as<__nv_bfloat16>();
        p.q = dq.as<uint8_t>();
        p.scale = ds.as<float>();
        p.M = Mf;
        p.K = static_cast<int32_t>(Kf);
        p.scale_stride_m = 1;
        p.scale_stride_kb = Mf;
        cuda::launch_act_quant(p, s);
      } else {
        cuda::ActQuantF32Params p;
        p.x = dx.as<float>();
        p.q = dq.as<uint8_t>();
        p.scale = ds.as<float>();
        p.M = Mf;
        p.K = static_cast<int32_t>(Kf);
        cuda::launch_act_quant_f32(p, s);
      }
      std::vector<uint8_t> gq(static_cast<size_t>(Mf * Kf)), rq2(gq.size()), rs2(static_cast<size_t>(Mf * kbf));
      std::vector<float> gs(static_cast<size_t>(Mf * kbf));
      dq.download(gq.data(), gq.size(), s);
      ds.download(gs.data(), gs.size() * 4, s);
      env.stream.synchronize();
      for (int64_t m = 0; m < Mf; ++m)
        fp8_act_quant(xr.data() + m * Kf, static_cast<size_t>(Kf), 128, rq2.data() + m * Kf, rs2.data() + m * kbf);
      size_t bq = 0, bs = 0;
      for (size_t i = 0; i < gq.size(); ++i) bq += gq[i] != rq2[i];
      for (int64_t m = 0; m < Mf; ++m)
        for (int64_t b = 0; b < kbf; ++b) {
          const float f = gs[static_cast<size_t>(b * Mf + m)], fw = e8m0_to_f32(rs2[static_cast<size_t>(m * kbf + b)]);
          bs += !(std::isnan(fw) ? std::isnan(f) : std::memcmp(&f, &fw, 4) == 0);
        }
      const std::string df = fmt("M=%lld K=%lld %s x (NaN/Inf/zero blocks)", static_cast<long long>(Mf),
                                 static_cast<long long>(Kf), bf16 ? "bf16" : "f32");
      env.report.exact(bf16 ? "act_quant codes" : "act_quant_f32 codes", df, gq.size(), bq);
      env.report.exact(bf16 ? "act_quant scale" : "act_quant_f32 scale", df, gs.size(), bs, "layout [K/128, M]");
    }
  }

  for (int64_t Mt : {int64_t{1}, int64_t{64}, int64_t{4096}}) {
    const int64_t Kt = 4096;
    DeviceBuffer xb(static_cast<size_t>(Mt * Kt) * 2), qb(static_cast<size_t>(Mt * Kt)),
        sb(static_cast<size_t>(Mt * Kt / 128) * 4);
    fill_random_bf16(xb.data(), static_cast<size_t>(Mt * Kt), env.seed + 5, env.stream.get());
    cuda::ActQuantParams p;
    p.x = xb.as<__nv_bfloat16>();
    p.q = qb.as<uint8_t>();
    p.scale = sb.as<float>();
    p.M = Mt;
    p.K = static_cast<int32_t>(Kt);
    p.scale_stride_m = 1;
    p.scale_stride_kb = Mt;
    const cuda::Timing t = cuda::time_on_stream(env.stream.get(), [&](int) { cuda::launch_act_quant(p, env.stream.get()); });
    env.report.perf("act_quant", fmt("M=%lld K=%lld", static_cast<long long>(Mt), static_cast<long long>(Kt)), t,
                    Mt * Kt * 3.0 + Mt * Kt / 128 * 4.0, 0, env.ceil);
  }
}

// Uploads copy 0 of the weight from the host, fills copies 1.. on the device, converts the scales with the
// backend's e8m0 -> f32 kernel (checked bit for bit).
struct DeviceFp8Weight {
  DeviceBuffer q, scale_e8m0, scale;
  int copies = 1;
  size_t bytes_per_copy = 0;
};

DeviceFp8Weight upload_weight(Env& env, const HostFp8Weight& w, int copies, const std::string& name) {
  DeviceFp8Weight d;
  d.copies = copies;
  d.bytes_per_copy = w.q.size();
  cudaStream_t s = env.stream.get();
  d.q = DeviceBuffer(d.bytes_per_copy * static_cast<size_t>(copies));
  d.q.upload(w.q.data(), w.q.size(), s);
  for (int c = 1; c < copies; ++c)
    fill_random_e4m3(d.q.as<uint8_t>() + d.bytes_per_copy * c, d.bytes_per_copy, env.seed + 100 + c, s);
  const int64_t nb = (w.N + 127) / 128, kb = w.K / 128, ld = cuda::fp8_weight_scale_ld(w.K);
  d.scale_e8m0 = DeviceBuffer(w.scale.size());
  d.scale_e8m0.upload(w.scale.data(), w.scale.size(), s);
  d.scale = DeviceBuffer(static_cast<size_t>(nb * ld) * 4);
  d.scale.fill_bytes(0xFF, s);
  cuda::E8m0ToF32Params p;
  p.in = d.scale_e8m0.as<uint8_t>();
  p.out = d.scale.as<float>();
  p.rows = static_cast<int32_t>(nb);
  p.cols = static_cast<int32_t>(kb);
  p.ld = static_cast<int32_t>(ld);
  cuda::launch_e8m0_to_f32(p, s);
  std::vector<float> f(static_cast<size_t>(nb * ld));
  d.scale.download(f.data(), f.size() * 4, s);
  env.stream.synchronize();
  size_t bad = 0;
  for (int64_t r = 0; r < nb; ++r)
    for (int64_t c = 0; c < ld; ++c) {
      const float want = c < kb ? e8m0_to_f32(w.scale[static_cast<size_t>(r * kb + c)]) : 0.0f;
      const float got = f[static_cast<size_t>(r * ld + c)];
      bad += std::memcmp(&got, &want, 4) != 0;
    }
  env.report.exact("e8m0_to_f32", name, f.size(), bad);
  return d;
}

// CPU reference rows: y_ref [rows.size(), N] = CpuOps::linear(x[rows]).
std::vector<float> cpu_reference(const HostFp8Weight& w, const std::vector<float>& x, const std::vector<int64_t>& rows) {
  backend::CpuOps cpu(backend::Numerics{});
  HostTensor xs({static_cast<int64_t>(rows.size()), w.K});
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(xs.row(static_cast<int64_t>(i)), x.data() + rows[i] * w.K, static_cast<size_t>(w.K) * 4);
  HostTensor y;
  const weights::Weight view = w.view();
  cpu.linear(xs, view, y, backend::LinearKind::Quantized);
  return y.vec();
}

std::vector<int64_t> check_rows(std::mt19937_64& rng, int64_t M) {
  std::vector<int64_t> rows;
  if (M <= 64) {
    for (int64_t m = 0; m < M; ++m) rows.push_back(m);
    return rows;
  }
  rows = {0, M - 1};
  std::uniform_int_distribution<int64_t> pick(1, M - 2);
  while (rows.size() < 16) rows.push_back(pick(rng));
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

// Downloads y [M, N], counts non-finite values over the whole output (poison left = unwritten), and compares
// the reference rows.
Compare check_output(Env& env, const DeviceBuffer& y, int64_t M, int64_t N, const std::vector<int64_t>& rows,
                     const std::vector<float>& ref) {
  std::vector<uint16_t> yb(static_cast<size_t>(M * N));
  y.download(yb.data(), yb.size() * 2, env.stream.get());
  env.stream.synchronize();
  size_t nonfinite = 0;
  for (uint16_t b : yb) nonfinite += (b & 0x7F80u) == 0x7F80u;
  std::vector<float> got(rows.size() * static_cast<size_t>(N));
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t n = 0; n < N; ++n)
      got[i * static_cast<size_t>(N) + static_cast<size_t>(n)] = bf16_to_f32(yb[static_cast<size_t>(rows[i] * N + n)]);
  Compare c = compare(got.data(), ref.data(), got.size());
  c.nonfinite = nonfinite;
  return c;
}

// cuBLASLt scale layouts: the assumed one must match; alternatives are reported so a mismatch is diagnosable.
void test_scale_layouts(Env& env, const DeviceBuffer& workspace) {
  const int64_t M = 64, N = 256, K = 640, kb = K / 128, nb = N / 128;
  cuda::Fp8GemmPlan plan = cuda::Fp8GemmPlan::create({M, N, K}, cuda::Fp8GemmPath::CublasLt, &env.lt, kWorkspaceBytes);
  if (!plan.ok()) {
    env.report.skip("cublaslt layouts", "M=64 N=256 K=640", plan.unsupported());
    return;
  }
  const HostFp8Weight w = make_weight(env.rng, N, K);
  const std::vector<float> x = random_activations(env.rng, M, K);
  const std::vector<int64_t> rows = check_rows(env.rng, M);
  const std::vector<float> ref = cpu_reference(w, x, rows);
  cudaStream_t s = env.stream.get();
  DeviceBuffer dw(w.q.size()), dy(static_cast<size_t>(M * N) * 2);
  dw.upload(w.q.data(), w.q.size(), s);
  struct WLayout {
    const char* name;
    int64_t ld;
    bool n_major;
  };
  const int64_t ld4 = cuda::fp8_weight_scale_ld(K);
  const WLayout wl[] = {{"w K-major ld=round4(K/128)", ld4, false}, {"w K-major ld=K/128", kb, false},
                        {"w N-major [K/128, N/128]", nb, true}};
  const std::pair<const char*, bool> xl[] = {{"x M-major [K/128, M]", true}, {"x K-major [M, K/128]", false}};
  for (const auto& [xname, m_major] : xl) {
    DeviceAct a = quantize_on_device(env, x, M, K, m_major ? 1 : kb, m_major ? M : 1);
    for (const WLayout& L : wl) {
      std::vector<float> sf(static_cast<size_t>(L.n_major ? kb * nb : nb * L.ld), 0.0f);
      for (int64_t r = 0; r < nb; ++r)
        for (int64_t c = 0; c < kb; ++c)
          sf[static_cast<size_t>(L.n_major ? c * nb + r : r * L.ld + c)] = e8m0_to_f32(w.scale[static_cast<size_t>(r * kb + c)]);
      DeviceBuffer ds(sf.size() * 4);
      ds.upload(sf.data(), ds.bytes(), s);
      dy.fill_bytes(0xFF, s);
      cuda::Fp8GemmArgs args{a.q.as<uint8_t>(), a.scale.as<float>(), dw.as<uint8_t>(), ds.as<float>(),
                             dy.as<__nv_bfloat16>()};
      cuda::launch_fp8_gemm(plan, args, workspace.data(), workspace.bytes(), s);
      const Compare c = check_output(env, dy, M, N, rows, ref);
      const bool primary = m_major && &L == &wl[0];
      const std::string combo = std::string(xname) + ", " + L.name;
      if (primary)
        env.report.check("cublaslt scale layout", "M=64 N=256 K=640", c, kTolFp8Gemm, true, combo);
      else
        env.report.note(fmt("cublaslt layout probe (%s): rel_err=%.3g nonfinite=%zu", combo.c_str(), c.rel_err,
                            c.nonfinite));
    }
  }
}

void test_gemm_shape(Env& env, const DeviceBuffer& workspace, cuda::Fp8GemmPath path, const char* name, int64_t N,
                     int64_t K) {
  const HostFp8Weight w = make_weight(env.rng, N, K);
  const int copies = static_cast<int>(std::clamp<int64_t>(
      static_cast<int64_t>((4 * env.l2_bytes + w.q.size() - 1) / w.q.size()), 2, 64));
  DeviceFp8Weight dw = upload_weight(env, w, copies, fmt("%s [%lld, %lld]", name, static_cast<long long>(N),
                                                         static_cast<long long>(K)));
  cudaStream_t s = env.stream.get();
  const std::vector<int64_t> Ms = env.quick ? std::vector<int64_t>{1, 64, 4096}
                                            : std::vector<int64_t>{1, 5, 16, 64, 4096};
  for (int64_t M : Ms) {
    const std::vector<float> x = random_activations(env.rng, M, K);
    DeviceAct a = quantize_on_device(env, x, M, K, 1, M);
    const std::vector<int64_t> rows = check_rows(env.rng, M);
    const std::vector<float> ref = cpu_reference(w, x, rows);
    DeviceBuffer dy(static_cast<size_t>(M * N) * 2);
    const std::string detail = fmt("%s M=%lld N=%lld K=%lld", name, static_cast<long long>(M),
                                   static_cast<long long>(N), static_cast<long long>(K));
    const std::string op = std::string("fp8_gemm ") + cuda::to_string(path);
    // One case failing (e.g. a cuBLAS status) is recorded and the next shape runs.
    try {
      cuda::Fp8GemmPlan plan = cuda::Fp8GemmPlan::create({M, N, K}, path, &env.lt, kWorkspaceBytes);
      if (!plan.ok()) {
        env.report.skip(op, detail, plan.unsupported());
        continue;
      }
      cuda::Fp8GemmArgs args{a.q.as<uint8_t>(), a.scale.as<float>(), dw.q.as<uint8_t>(), dw.scale.as<float>(),
                             dy.as<__nv_bfloat16>()};
      dy.fill_bytes(0xFF, s);
      cuda::launch_fp8_gemm(plan, args, workspace.data(), workspace.bytes(), s);
      const Compare c = check_output(env, dy, M, N, rows, ref);
      std::string note = M > 64 ? fmt("%zu sampled rows vs CPU, all rows NaN-scanned", rows.size()) : "";
      if (path == cuda::Fp8GemmPath::Mma)
        note += fmt("%sk_splits=%d tok_tiles=%d", note.empty() ? "" : "; ", plan.mma().k_splits, plan.mma().tok_tiles);
      env.report.check(op, detail, c, kTolFp8Gemm, true, note);
      const cuda::Timing t = cuda::time_on_stream(s, [&](int i) {
        cuda::Fp8GemmArgs r = args;
        r.w = dw.q.as<uint8_t>() + dw.bytes_per_copy * static_cast<size_t>(i % dw.copies);
        cuda::launch_fp8_gemm(plan, r, workspace.data(), workspace.bytes(), s);
      });
      const double bytes = static_cast<double>(N) * K + static_cast<double>(dw.scale.bytes()) +
                           static_cast<double>(M) * K + M * (K / 128) * 4.0 + 2.0 * M * N;
      env.report.perf(op, detail, t, bytes, 2.0 * M * N * K, env.ceil);
    } catch (const std::exception& e) {
      env.report.exact(op, detail, 1, 1, e.what());
    }
  }
}

}  // namespace

void test_act_quant(Env& env) {
  check_act_quant(env);
  DeviceBuffer workspace(kWorkspaceBytes);
  test_scale_layouts(env, workspace);
}

void test_fp8_gemm(Env& env, cuda::Fp8GemmPath path) {
  DeviceBuffer workspace(kWorkspaceBytes);
  test_gemm_shape(env, workspace, path, "wq_a", 1024, 4096);
  test_gemm_shape(env, workspace, path, "wq_b", 32768, 1024);
  test_gemm_shape(env, workspace, path, "wo_b", 4096, 8192);
  test_gemm_shape(env, workspace, path, "shared_w1", 2048, 4096);
}

}  // namespace dsv4::gpu_test
