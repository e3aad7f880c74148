// The hardware ceilings every GPU measurement of dsv4 is compared with (METHOD.md "Two numbers first"), timed the
// same way by the op test (tests/gpu) and the benchmark (bench/cuda_bench): a large device-to-device copy (bytes
// read + written) for memory-bound work, and cuBLASLt dense n^3 GEMMs (bf16, or FP8 e4m3 with per-tensor scales;
// the "TN" layout FP8 needs on Hopper) on operands the caller filled with random values.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "backend/cuda/common/timing.h"

namespace dsv4::cuda {

// cudaMemcpyAsync D2D of `bytes` from src to dst; per-call timing (GB/s = 2 * bytes / time).
Timing time_device_copy(cudaStream_t stream, void* dst, const void* src, size_t bytes, int samples);

struct DenseGemmTiming {
  std::optional<Timing> timing;  // empty when no cuBLASLt algorithm ran
  std::string refused;           // the statuses of the candidates that were refused at launch
  int candidates = 0;
};

// D = A^T·B for n x n operands a, b (bf16, or e4m3 when fp8) into a bf16 D; the first heuristic candidate that
// runs is timed (FLOPs = 2 n^3). FP8 retries without scale pointers when every candidate refuses them.
DenseGemmTiming time_dense_gemm(cublasLtHandle_t lt, cudaStream_t stream, bool fp8, const void* a, const void* b,
                                int64_t n);

}  // namespace dsv4::cuda
