// MXFP4 routed-expert GEMV for decode (spec §2.7, §7.2) vs CpuOps::linear on the same MXFP4 Weight views
// (act_quant fake-quant of x, dequantized e2m1 · 2^(s-127), f32 dot, bf16). Flash expert shapes: w1/w3
// [2048, 4096] and w2 [4096, 2048], 64 experts resident, slots = (token, expert) pairs of top-6 routing.
// Timing rotates over 8 disjoint expert sets so the weights stream from HBM, and reports GB/s vs the copy.
#include <cstdint>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/gemm/launch.h"
#include "backend/cuda/moe/launch.h"
#include "core/dtype.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

using cuda::DeviceBuffer;
constexpr int kExperts = 64;
constexpr int kTopK = 6;
constexpr int kSets = 8;

void run_case(Env& env, const char* name, int64_t N, int64_t K, int tokens) {
  const int slots = tokens * kTopK;
  const size_t w_bytes = static_cast<size_t>(N * K / 2), s_bytes = static_cast<size_t>(N * K / 32);
  // Host weights for all experts: random nibbles, e8m0 scales 2^-8 .. 2^-3.
  std::vector<uint8_t> w(w_bytes * kExperts), sc(s_bytes * kExperts);
  for (size_t i = 0; i < w.size(); i += 8) {
    const uint64_t r = env.rng();
    std::memcpy(w.data() + i, &r, std::min<size_t>(8, w.size() - i));
  }
  std::uniform_int_distribution<int> ex(127 - 8, 127 - 3);
  for (auto& b : sc) b = static_cast<uint8_t>(ex(env.rng));
  const std::vector<float> x = random_activations(env.rng, tokens, K);
  // slot s of set k: token s / 6, expert (5 s + 8 k) mod 64 (distinct within a set).
  std::vector<int32_t> experts(static_cast<size_t>(slots * kSets)), tok(static_cast<size_t>(slots));
  for (int k = 0; k < kSets; ++k)
    for (int s = 0; s < slots; ++s) experts[static_cast<size_t>(k * slots + s)] = (5 * s + 8 * k) % kExperts;
  for (int s = 0; s < slots; ++s) tok[static_cast<size_t>(s)] = s / kTopK;

  cudaStream_t st = env.stream.get();
  DeviceBuffer dw(w.size()), ds(sc.size()), dx(x.size() * 2), dq(static_cast<size_t>(tokens * K)),
      dxs(static_cast<size_t>(tokens * K / 128) * 4), de(experts.size() * 4), dt(tok.size() * 4),
      dy(static_cast<size_t>(slots * N) * 2);
  dw.upload(w.data(), w.size(), st);
  ds.upload(sc.data(), sc.size(), st);
  const std::vector<uint16_t> xb = to_bf16_bits(x);
  dx.upload(xb.data(), dx.bytes(), st);
  de.upload(experts.data(), de.bytes(), st);
  dt.upload(tok.data(), dt.bytes(), st);
  cuda::ActQuantParams aq;
  aq.x = dx.as<__nv_bfloat16>();
  aq.q = dq.as<uint8_t>();
  aq.scale = dxs.as<float>();
  aq.M = tokens;
  aq.K = static_cast<int32_t>(K);
  aq.scale_stride_m = 1;
  aq.scale_stride_kb = tokens;
  cuda::launch_act_quant(aq, st);

  cuda::Mxfp4GemvParams p;
  p.w = dw.as<uint8_t>();
  p.w_scale = ds.as<uint8_t>();
  p.xq = dq.as<uint8_t>();
  p.x_scale = dxs.as<float>();
  p.slot_expert = de.as<int32_t>();
  p.slot_token = dt.as<int32_t>();
  p.y = dy.as<__nv_bfloat16>();
  p.n_slots = slots;
  p.N = static_cast<int32_t>(N);
  p.K = static_cast<int32_t>(K);
  p.T = tokens;
  p.n_experts = kExperts;
  dy.fill_bytes(0xFF, st);
  cuda::launch_mxfp4_gemv(p, st);
  std::vector<uint16_t> yb(static_cast<size_t>(slots * N));
  dy.download(yb.data(), dy.bytes(), st);
  env.stream.synchronize();

  backend::CpuOps cpu(backend::Numerics{});
  std::vector<float> ref(yb.size());
  for (int s = 0; s < slots; ++s) {
    const int e = experts[static_cast<size_t>(s)];
    weights::Weight view;
    view.name = "expert";
    view.quant = weights::Quant::Mxfp4;
    view.dtype = DType::I8;
    view.shape = {N, K};
    view.data = w.data() + w_bytes * e;
    view.scale = sc.data() + s_bytes * e;
    view.scale_dtype = DType::F8_E8M0;
    view.scale_shape = {N, K / 32};
    HostTensor xs({1, K}), y;
    std::memcpy(xs.data(), x.data() + static_cast<int64_t>(tok[static_cast<size_t>(s)]) * K, static_cast<size_t>(K) * 4);
    cpu.linear(xs, view, y, backend::LinearKind::Quantized);
    std::memcpy(ref.data() + static_cast<size_t>(s) * N, y.data(), static_cast<size_t>(N) * 4);
  }
  const std::vector<float> got = bf16_bits_to_f32(yb);
  const std::string detail = fmt("%s N=%lld K=%lld slots=%d", name, static_cast<long long>(N),
                                 static_cast<long long>(K), slots);
  env.report.check("mxfp4_gemv", detail, compare(got.data(), ref.data(), got.size()), kTolMxfp4);

  const cuda::Timing t = cuda::time_on_stream(st, [&](int i) {
    cuda::Mxfp4GemvParams r = p;
    r.slot_expert = de.as<int32_t>() + (i % kSets) * slots;
    cuda::launch_mxfp4_gemv(r, st);
  });
  const double bytes = slots * static_cast<double>(w_bytes + s_bytes) + tokens * (K + K / 128 * 4.0) + 2.0 * slots * N;
  env.report.perf("mxfp4_gemv", detail, t, bytes, 2.0 * slots * N * K, env.ceil);
}

}  // namespace

void test_mxfp4_gemv(Env& env) {
  for (int tokens : {1, 8}) {
    run_case(env, "expert w1", 2048, 4096, tokens);
    run_case(env, "expert w2", 4096, 2048, tokens);
  }
}

}  // namespace dsv4::gpu_test
