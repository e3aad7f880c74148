// Ceilings measured in the same run as the kernels (METHOD.md "Two numbers first"): a large device-to-device
// copy (bytes read + written) for memory-bound ops, and cuBLASLt dense GEMMs 8192^3 on random data for
// matrix-bound ops: bf16 (the ~790 TFLOP/s reference of docs/perf.md) and FP8 e4m3 with per-tensor scales
// (the dense FP8 rate a block-scaled GEMM is compared with).
#include <cstdint>
#include <string>

#include "backend/cuda/common/ceilings.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

using cuda::DeviceBuffer;

double dense_gemm_tflops(Env& env, bool fp8) {
  const int64_t n = 8192;
  const size_t elem = fp8 ? 1 : 2;
  DeviceBuffer a(n * n * elem), b(n * n * elem);
  if (fp8) {
    fill_random_e4m3(a.data(), a.bytes(), env.seed + 11, env.stream.get());
    fill_random_e4m3(b.data(), b.bytes(), env.seed + 12, env.stream.get());
  } else {
    fill_random_bf16(a.data(), n * n, env.seed + 13, env.stream.get());
    fill_random_bf16(b.data(), n * n, env.seed + 14, env.stream.get());
  }
  const cuda::DenseGemmTiming g = cuda::time_dense_gemm(env.lt.get(), env.stream.get(), fp8, a.data(), b.data(), n);
  if (!g.timing) {
    env.report.note(std::string("no cuBLASLt algorithm ran for the dense ") + (fp8 ? "fp8" : "bf16") +
                    " ceiling GEMM (" + std::to_string(g.candidates) + " candidates, refused:" + g.refused + ")");
    return 0;
  }
  const double flops = 2.0 * n * n * n;
  env.report.perf(fp8 ? "ceiling fp8 gemm" : "ceiling bf16 gemm", "cuBLASLt 8192^3 TN, random data", *g.timing, 0,
                  flops, Ceilings{});
  return flops / (g.timing->median_ms * 1e-3) * 1e-12;
}

}  // namespace

void measure_ceilings(Env& env) {
  const size_t bytes = 1ull << 30;
  {
    DeviceBuffer src(bytes), dst(bytes);
    fill_random_bytes(src.data(), bytes, env.seed, env.stream.get());
    const cuda::Timing t = cuda::time_device_copy(env.stream.get(), dst.data(), src.data(), bytes, 15);
    env.ceil.copy_gbps = 2.0 * bytes / (t.median_ms * 1e-3) * 1e-9;
    env.report.perf("ceiling copy", "cudaMemcpy D2D 1 GiB (read+write)", t, 2.0 * bytes, 0, Ceilings{});
  }
  env.ceil.bf16_tflops = dense_gemm_tflops(env, false);
  env.ceil.fp8_tflops = dense_gemm_tflops(env, true);
  env.report.note(fmt("ceilings: copy %.0f GB/s, bf16 gemm %.1f TFLOP/s, fp8 gemm %.1f TFLOP/s", env.ceil.copy_gbps,
                      env.ceil.bf16_tflops, env.ceil.fp8_tflops));
}

}  // namespace dsv4::gpu_test
