// Ceilings measured in the same run as the kernels (METHOD.md "Two numbers first"): a large device-to-device
// copy (bytes read + written) for memory-bound ops, and cuBLASLt dense GEMMs 8192^3 on random data for
// matrix-bound ops: bf16 (the ~790 TFLOP/s reference of docs/perf.md) and FP8 e4m3 with per-tensor scales
// (the dense FP8 rate a block-scaled GEMM is compared with).
#include <cstdint>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "gpu_test.h"

namespace dsv4::gpu_test {
namespace {

using cuda::DeviceBuffer;

double dense_gemm_tflops(Env& env, bool fp8) {
  const int64_t n = 8192;
  const size_t elem = fp8 ? 1 : 2;
  DeviceBuffer a(n * n * elem), b(n * n * elem), d(n * n * 2), scale(sizeof(float) * 8);
  if (fp8) {
    fill_random_e4m3(a.data(), a.bytes(), env.seed + 11, env.stream.get());
    fill_random_e4m3(b.data(), b.bytes(), env.seed + 12, env.stream.get());
  } else {
    fill_random_bf16(a.data(), n * n, env.seed + 13, env.stream.get());
    fill_random_bf16(b.data(), n * n, env.seed + 14, env.stream.get());
  }
  // Per-tensor scales, each at a 16-byte boundary (cuBLASLt rejected a 4-byte offset with NOT_SUPPORTED).
  const float scales[8] = {1.0f / 64, 0, 0, 0, 1.0f / 64, 0, 0, 0};
  scale.upload(scales, sizeof(scales), env.stream.get());
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  const cudaDataType_t in_t = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  DSV4_CUDA_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;  // FP8 on Hopper needs the "TN" layout
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (fp8) {
    const float* sa = scale.as<float>();
    const float* sb = scale.as<float>() + 4;
    DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof(sa)));
    DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof(sb)));
  }
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&la, in_t, n, n, n));
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lb, in_t, n, n, n));
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, n, n, n));
  const size_t ws_bytes = 64ull << 20;
  DeviceBuffer ws(ws_bytes);
  cublasLtMatmulPreference_t pref = nullptr;
  DSV4_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  DSV4_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                       sizeof(ws_bytes)));
  cublasLtMatmulHeuristicResult_t results[8] = {};
  int returned = 0;
  DSV4_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(env.lt.get(), desc, la, lb, ld, ld, pref, 8, results, &returned));
  // The first algorithm that actually runs (a heuristic result can still be refused at launch).
  const float alpha = 1.0f, beta = 0.0f;
  int chosen = -1;
  std::string refused;
  auto try_algos = [&] {
    for (int i = 0; i < returned && chosen < 0; ++i) {
      const cublasStatus_t st = cublasLtMatmul(env.lt.get(), desc, &alpha, a.data(), la, b.data(), lb, &beta,
                                               d.data(), ld, d.data(), ld, &results[i].algo, ws.data(), ws_bytes,
                                               env.stream.get());
      if (st == CUBLAS_STATUS_SUCCESS)
        chosen = i;
      else
        refused += std::string(" ") + cublasLtGetStatusName(st);
    }
  };
  try_algos();
  if (chosen < 0 && fp8) {  // second attempt without scale pointers (unit scales)
    const void* none = nullptr;
    DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &none, sizeof(none)));
    DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &none, sizeof(none)));
    refused += " | without scales:";
    try_algos();
  }
  double tflops = 0;
  if (chosen >= 0) {
    const cublasLtMatmulHeuristicResult_t& res = results[chosen];
    const cuda::Timing t = cuda::time_on_stream(env.stream.get(), [&](int) {
      DSV4_CUDA_CHECK(cublasLtMatmul(env.lt.get(), desc, &alpha, a.data(), la, b.data(), lb, &beta, d.data(), ld,
                                     d.data(), ld, &res.algo, ws.data(), ws_bytes, env.stream.get()));
    }, {.warmup = 3, .samples = 10, .min_sample_ms = 0.0});
    const double flops = 2.0 * n * n * n;
    tflops = flops / (t.median_ms * 1e-3) * 1e-12;
    env.report.perf(fp8 ? "ceiling fp8 gemm" : "ceiling bf16 gemm", "cuBLASLt 8192^3 TN, random data", t, 0,
                    flops, Ceilings{});
  } else {
    env.report.note(std::string("no cuBLASLt algorithm ran for the dense ") + (fp8 ? "fp8" : "bf16") +
                    " ceiling GEMM (" + std::to_string(returned) + " candidates, refused:" + refused + ")");
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(ld);
  cublasLtMatmulDescDestroy(desc);
  return tflops;
}

}  // namespace

void measure_ceilings(Env& env) {
  const size_t bytes = 1ull << 30;
  {
    DeviceBuffer src(bytes), dst(bytes);
    fill_random_bytes(src.data(), bytes, env.seed, env.stream.get());
    const cuda::Timing t = cuda::time_on_stream(env.stream.get(), [&](int) {
      DSV4_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, env.stream.get()));
    }, {.warmup = 3, .samples = 15, .min_sample_ms = 0.0});
    env.ceil.copy_gbps = 2.0 * bytes / (t.median_ms * 1e-3) * 1e-9;
    env.report.perf("ceiling copy", "cudaMemcpy D2D 1 GiB (read+write)", t, 2.0 * bytes, 0, Ceilings{});
  }
  env.ceil.bf16_tflops = dense_gemm_tflops(env, false);
  env.ceil.fp8_tflops = dense_gemm_tflops(env, true);
  env.report.note(fmt("ceilings: copy %.0f GB/s, bf16 gemm %.1f TFLOP/s, fp8 gemm %.1f TFLOP/s", env.ceil.copy_gbps,
                      env.ceil.bf16_tflops, env.ceil.fp8_tflops));
}

}  // namespace dsv4::gpu_test
