// Error checking for the CUDA backend (STYLE.md "Errors"). Every CUDA runtime and cuBLASLt call goes through
// the one macro DSV4_CUDA_CHECK(expr); a failure panics (core/check.h) with file:line, the expression and the
// library's error name and message. DSV4_CUDA_CHECK_LAUNCH() follows every kernel launch: it reads the launch
// error (cheap, no synchronization, legal during CUDA-graph capture); with DSV4_CUDA_SYNC_CHECK defined (debug
// builds) it also synchronizes the device so an asynchronous fault is reported at the launch that caused it.
// This header includes no CUDA kernel code, so host .cpp files and .cu files both use it.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <source_location>

namespace dsv4::cuda {

void check_status(cudaError_t status, const char* expr,
                  std::source_location loc = std::source_location::current());
void check_status(cublasStatus_t status, const char* expr,
                  std::source_location loc = std::source_location::current());
void check_launch(std::source_location loc = std::source_location::current());

}  // namespace dsv4::cuda

#define DSV4_CUDA_CHECK(expr) ::dsv4::cuda::check_status((expr), #expr)
#define DSV4_CUDA_CHECK_LAUNCH() ::dsv4::cuda::check_launch()
