// Device info and ceilings; see cuda_bench_ceilings.h.
#include "cuda_bench_ceilings.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/common/timing.h"
#include "backend/cuda/ops/context.h"
#include "core/dtype.h"

namespace dsv4::bench {

using cuda::DeviceBuffer;

namespace {

// Random bytes for the GEMM operands: bf16 values in [-1, 1] or e4m3 codes without NaN.
std::vector<uint8_t> random_operand(size_t elems, bool fp8, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(elems * (fp8 ? 1 : 2));
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const size_t block = std::min<size_t>(v.size(), 8u << 20);
  for (size_t i = 0; i < block; i += fp8 ? 1 : 2) {
    if (fp8) {
      v[i] = f32_to_e4m3(uni(rng) * 4.0f);
    } else {
      const uint16_t b = f32_to_bf16(uni(rng));
      v[i] = static_cast<uint8_t>(b & 0xFF);
      v[i + 1] = static_cast<uint8_t>(b >> 8);
    }
  }
  for (size_t off = block; off < v.size(); off += block)
    std::copy(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(block, v.size() - off)),
              v.begin() + static_cast<std::ptrdiff_t>(off));
  return v;
}

double dense_gemm_tflops(bool fp8, uint64_t seed) {
  const int64_t n = 8192;
  cuda::CudaContext& ctx = cuda::CudaContext::get();
  cudaStream_t stream = ctx.stream();
  const size_t elem = fp8 ? 1 : 2;
  DeviceBuffer a(n * n * elem), b(n * n * elem), d(n * n * 2), scale(sizeof(float) * 8);
  const auto ha = random_operand(static_cast<size_t>(n * n), fp8, seed + 1);
  const auto hb = random_operand(static_cast<size_t>(n * n), fp8, seed + 2);
  a.upload(ha.data(), ha.size(), stream);
  b.upload(hb.data(), hb.size(), stream);
  const float scales[8] = {1.0f / 64, 0, 0, 0, 1.0f / 64, 0, 0, 0};
  scale.upload(scales, sizeof(scales), stream);
  ctx.sync();
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  const cudaDataType_t in_t = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  DSV4_CUDA_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;  // FP8 on Hopper needs "TN"
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
  DSV4_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.lt(), desc, la, lb, ld, ld, pref, 8, results, &returned));
  const float alpha = 1.0f, beta = 0.0f;
  int chosen = -1;
  for (int i = 0; i < returned && chosen < 0; ++i) {
    const cublasStatus_t st = cublasLtMatmul(ctx.lt(), desc, &alpha, a.data(), la, b.data(), lb, &beta, d.data(), ld,
                                             d.data(), ld, &results[i].algo, ws.data(), ws_bytes, stream);
    if (st == CUBLAS_STATUS_SUCCESS) chosen = i;
  }
  double tflops = 0;
  if (chosen >= 0) {
    const cublasLtMatmulHeuristicResult_t& res = results[chosen];
    const cuda::Timing t = cuda::time_on_stream(stream, [&](int) {
      DSV4_CUDA_CHECK(cublasLtMatmul(ctx.lt(), desc, &alpha, a.data(), la, b.data(), lb, &beta, d.data(), ld,
                                     d.data(), ld, &res.algo, ws.data(), ws_bytes, stream));
    }, {.warmup = 3, .samples = 10, .min_sample_ms = 0.0});
    tflops = 2.0 * n * n * n / (t.median_ms * 1e-3) * 1e-12;
  } else {
    std::fprintf(stderr, "cuda_bench: no cuBLASLt algorithm ran for the %s ceiling GEMM\n", fp8 ? "fp8" : "bf16");
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(ld);
  cublasLtMatmulDescDestroy(desc);
  ctx.sync();
  return tflops;
}

}  // namespace

DeviceInfo device_info() {
  DeviceInfo d;
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return d;
  cudaDeviceProp prop{};
  DSV4_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  d.name = prop.name;
  d.sm_count = prop.multiProcessorCount;
  d.mem_gib = static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  cudaDriverGetVersion(&d.driver);
  cudaRuntimeGetVersion(&d.runtime);
  return d;
}

Ceilings measure_ceilings(uint64_t seed) {
  Ceilings c;
  cuda::CudaContext& ctx = cuda::CudaContext::get();
  {
    const size_t bytes = 2ull << 30;
    DeviceBuffer src(bytes), dst(bytes);
    src.fill_bytes(0x5A, ctx.stream());
    const cuda::Timing t = cuda::time_on_stream(ctx.stream(), [&](int) {
      DSV4_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, ctx.stream()));
    }, {.warmup = 2, .samples = 10, .min_sample_ms = 0.0});
    c.copy_gbps = 2.0 * static_cast<double>(bytes) / (t.median_ms * 1e-3) * 1e-9;
    ctx.sync();
  }
  c.bf16_tflops = dense_gemm_tflops(false, seed);
  c.fp8_tflops = dense_gemm_tflops(true, seed + 10);
  return c;
}

}  // namespace dsv4::bench
