// DSV4_CUDA_CHECK failure reporting: turns a CUDA runtime or cuBLAS status into a panic naming the expression.
#include "backend/cuda/common/cuda_check.h"

#include <string>

#include "core/check.h"

namespace dsv4::cuda {

void check_status(cudaError_t status, const char* expr, std::source_location loc) {
  if (status == cudaSuccess) [[likely]] return;
  panic(std::string("CUDA error ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ") in " +
            expr,
        loc);
}

void check_status(cublasStatus_t status, const char* expr, std::source_location loc) {
  if (status == CUBLAS_STATUS_SUCCESS) [[likely]] return;
  panic(std::string("cuBLAS error ") + cublasLtGetStatusName(status) + " (" + cublasLtGetStatusString(status) +
            ") in " + expr,
        loc);
}

void check_launch(std::source_location loc) {
  check_status(cudaGetLastError(), "kernel launch", loc);
#ifdef DSV4_CUDA_SYNC_CHECK
  check_status(cudaDeviceSynchronize(), "kernel execution (DSV4_CUDA_SYNC_CHECK)", loc);
#endif
}

}  // namespace dsv4::cuda
