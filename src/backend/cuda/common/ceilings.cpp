// Ceilings; see ceilings.h.
#include "backend/cuda/common/ceilings.h"

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"

namespace dsv4::cuda {

Timing time_device_copy(cudaStream_t stream, void* dst, const void* src, size_t bytes, int samples) {
  return time_on_stream(stream, [&](int) {
    DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  }, {.warmup = 3, .samples = samples, .min_sample_ms = 0.0});
}

DenseGemmTiming time_dense_gemm(cublasLtHandle_t lt, cudaStream_t stream, bool fp8, const void* a, const void* b,
                                int64_t n) {
  DenseGemmTiming out;
  DeviceBuffer d(static_cast<size_t>(n * n * 2)), scale(sizeof(float) * 8);
  // Per-tensor scales, each at a 16-byte boundary (cuBLASLt rejected a 4-byte offset with NOT_SUPPORTED).
  const float scales[8] = {1.0f / 64, 0, 0, 0, 1.0f / 64, 0, 0, 0};
  scale.upload(scales, sizeof(scales), stream);
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  const cudaDataType_t in_t = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  DSV4_CUDA_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
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
  DSV4_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 8, results, &returned));
  out.candidates = returned;
  // The first algorithm that actually runs (a heuristic result can still be refused at launch).
  const float alpha = 1.0f, beta = 0.0f;
  int chosen = -1;
  auto try_algos = [&] {
    for (int i = 0; i < returned && chosen < 0; ++i) {
      const cublasStatus_t st = cublasLtMatmul(lt, desc, &alpha, a, la, b, lb, &beta, d.data(), ld, d.data(), ld,
                                               &results[i].algo, ws.data(), ws_bytes, stream);
      if (st == CUBLAS_STATUS_SUCCESS)
        chosen = i;
      else
        out.refused += std::string(" ") + cublasLtGetStatusName(st);
    }
  };
  try_algos();
  if (chosen < 0 && fp8) {  // second attempt without scale pointers (unit scales)
    const void* none = nullptr;
    DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &none, sizeof(none)));
    DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &none, sizeof(none)));
    out.refused += " | without scales:";
    try_algos();
  }
  if (chosen >= 0) {
    const cublasLtMatmulHeuristicResult_t& res = results[chosen];
    out.timing = time_on_stream(stream, [&](int) {
      DSV4_CUDA_CHECK(cublasLtMatmul(lt, desc, &alpha, a, la, b, lb, &beta, d.data(), ld, d.data(), ld, &res.algo,
                                     ws.data(), ws_bytes, stream));
    }, {.warmup = 3, .samples = 10, .min_sample_ms = 0.0});
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(ld);
  cublasLtMatmulDescDestroy(desc);
  DSV4_CUDA_CHECK(cudaStreamSynchronize(stream));
  return out;
}

}  // namespace dsv4::cuda
