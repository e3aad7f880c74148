// Dense cuBLASLt GEMM plans with an f32 output: y[M, N] (+)= x[M, K] · W[N, K]ᵀ, optionally batched over groups
// (grouped_linear / wo_a, spec §5.6: group g reads x columns [g·K, (g+1)·K) and W rows [g·N, (g+1)·N)).
//
// Operand types (DenseGemmType):
//   F32   x, W f32; CUBLAS_COMPUTE_32F (IEEE f32 FMA, TF32 off): the f32-exact numerics and the fallback.
//   Bf16  x, W bf16, f32 accumulate and output (tensor cores). Products of bf16 values are exact in f32, so with
//         x split into hi + lo bf16 halves (two launches, the second with beta = 1) the result matches f32 math
//         on bf16-representable weights to ~2^-17 relative.
// A plan is built once per shape (algorithm selection is slow and allocates nothing on the device); launching is
// cheap. The heuristic's candidates (up to kDenseCandidates) are kept and timed on the first beta = 0 launch with
// the real operands (3 launches each, CUDA events, synchronous once; skipped while the stream is capturing); the
// fastest is used from then on (the heuristic's first choice was measured far off the floor for small M). The
// result is identical whichever algorithm runs up to f32 summation order. DSV4_DENSE_AUTOTUNE=0 keeps the
// heuristic's first choice. The plan is unusable (ok() false, unsupported() says why) when the heuristic returns no algorithm.
#pragma once
#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dsv4::cuda {

enum class DenseGemmType : uint8_t { F32, Bf16 };

struct DenseGemmShape {
  int64_t M = 0;               // tokens
  int64_t N = 0;               // output features per group
  int64_t K = 0;               // input features per group
  int64_t groups = 1;
  int64_t x_ld = 0;            // elements between consecutive x rows (groups·K for grouped)
  int64_t y_ld = 0;            // elements between consecutive y rows (groups·N for grouped)
  DenseGemmType type = DenseGemmType::F32;
  int32_t align = 16;          // the smallest alignment (bytes) of the x, W, y base pointers, at most 16
  bool operator==(const DenseGemmShape&) const = default;
};

class DenseGemmPlan {
 public:
  static DenseGemmPlan create(const DenseGemmShape& shape, cublasLtHandle_t handle, size_t max_workspace_bytes);
  DenseGemmPlan() = default;
  ~DenseGemmPlan();
  DenseGemmPlan(DenseGemmPlan&& o) noexcept;
  DenseGemmPlan& operator=(DenseGemmPlan&& o) noexcept;
  DenseGemmPlan(const DenseGemmPlan&) = delete;
  DenseGemmPlan& operator=(const DenseGemmPlan&) = delete;

  bool ok() const { return unsupported_.empty(); }
  const std::string& unsupported() const { return unsupported_; }
  const DenseGemmShape& shape() const { return shape_; }
  size_t workspace_bytes() const { return workspace_bytes_; }

  // y = x · Wᵀ + beta · y. w: f32/bf16 [groups·N, K]; x: f32/bf16 [M, x_ld]; y: f32 [M, y_ld].
  void launch(const void* w, const void* x, float* y, float beta, void* workspace, size_t workspace_bytes,
              cudaStream_t stream) const;

 private:
  void release();
  DenseGemmShape shape_;
  std::string unsupported_ = "empty plan";
  size_t workspace_bytes_ = 0;
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  std::vector<cublasLtMatmulAlgo_t> candidates_;  // heuristic results, best first; algo_ is one of them
  mutable bool tuned_ = false;
  void tune(const void* w, const void* x, float* y, void* workspace, cudaStream_t stream) const;
  mutable cublasLtMatmulAlgo_t tuned_algo_{};
};

}  // namespace dsv4::cuda
