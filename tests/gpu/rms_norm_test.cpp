// RMSNorm (spec §2.2): CUDA rms_norm_kernel vs CpuOps::rms_norm (bf16 activations), rows of 4096 (Flash) and
// 7168 (Pro) and the unweighted per-head q norm (512); timing for decode (1, 64 rows) and prefill (4096 rows).
#include <cstdint>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/elementwise/launch.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

using cuda::DeviceBuffer;

void run_case(Env& env, int64_t rows, int64_t dim, bool weighted, bool timed) {
  const std::string detail = fmt("rows=%lld dim=%lld%s", static_cast<long long>(rows), static_cast<long long>(dim),
                                 weighted ? "" : " unweighted");
  const std::vector<float> x = random_activations(env.rng, rows, dim);
  std::vector<float> w;
  if (weighted) {
    w = random_bf16_values(env.rng, static_cast<size_t>(dim), 0.2f);
    for (auto& v : w) v = round_bf16(v + 1.0f);  // bf16 checkpoint weights around 1, upcast to f32
  }
  const std::vector<uint16_t> xb = to_bf16_bits(x);
  DeviceBuffer dx(xb.size() * 2), dy(xb.size() * 2), dw(static_cast<size_t>(dim) * 4);
  cudaStream_t s = env.stream.get();
  dx.upload(xb.data(), dx.bytes(), s);
  if (weighted) dw.upload(w.data(), dw.bytes(), s);
  dy.fill_bytes(0xFF, s);  // poison: bf16 0xFFFF is NaN

  cuda::RmsNormParams p;
  p.x = dx.as<__nv_bfloat16>();
  p.weight = weighted ? dw.as<float>() : nullptr;
  p.y = dy.as<__nv_bfloat16>();
  p.n_rows = rows;
  p.dim = static_cast<int32_t>(dim);
  p.eps = 1e-6f;
  cuda::launch_rms_norm(p, s);
  std::vector<uint16_t> yb(xb.size());
  dy.download(yb.data(), dy.bytes(), s);
  env.stream.synchronize();

  backend::CpuOps cpu(backend::Numerics{});
  HostTensor ref({rows, dim});
  ref.vec() = x;
  weights::Weight wt;
  wt.name = "norm";
  wt.dtype = DType::F32;
  wt.shape = {dim};
  wt.data = w.data();
  cpu.rms_norm(ref, dim, weighted ? &wt : nullptr, 1e-6f);
  const std::vector<float> got = bf16_bits_to_f32(yb);
  env.report.check("rms_norm", detail, compare(got.data(), ref.data(), got.size()), kTolBf16Rowwise);

  if (timed) {
    const cuda::Timing t = cuda::time_on_stream(s, [&](int) { cuda::launch_rms_norm(p, s); });
    const double bytes = 2.0 * rows * dim * 2 + (weighted ? dim * 4.0 : 0.0);
    env.report.perf("rms_norm", detail, t, bytes, 0, env.ceil);
  }
}

}  // namespace

void test_rms_norm(Env& env) {
  for (int64_t dim : {4096, 7168})
    for (int64_t rows : {1, 64, 4096}) run_case(env, rows, dim, true, true);
  run_case(env, 64 * 8, 512, false, false);  // per-head q norm: 64 heads x 8 tokens
  run_case(env, 3, 1024, true, false);       // q_lora_rank norm, odd row count
}

}  // namespace dsv4::gpu_test
