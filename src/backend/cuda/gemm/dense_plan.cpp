// Dense cuBLASLt GEMM plans (f32 output); see dense_plan.h.
#include "backend/cuda/gemm/dense_plan.h"
#include "backend/cuda/common/kernel_paths.h"

#include <algorithm>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "backend/cuda/common/cuda_check.h"
#include "core/check.h"

namespace dsv4::cuda {
namespace {

std::string shape_str(const DenseGemmShape& s) {
  return "M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
         " groups=" + std::to_string(s.groups) + (s.type == DenseGemmType::F32 ? " f32" : " bf16");
}

void set_batch(cublasLtMatrixLayout_t l, int64_t groups, int64_t stride) {
  if (groups == 1) return;
  const int32_t count = static_cast<int32_t>(groups);
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
  DSV4_CUDA_CHECK(
      cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
}

}  // namespace

DenseGemmPlan DenseGemmPlan::create(const DenseGemmShape& s, cublasLtHandle_t handle, size_t max_workspace_bytes) {
  DenseGemmPlan p;
  p.shape_ = s;
  p.handle_ = handle;
  if (s.M <= 0 || s.N <= 0 || s.K <= 0 || s.groups <= 0 || s.x_ld < s.groups * s.K || s.y_ld < s.groups * s.N) {
    p.unsupported_ = "dense gemm: bad shape " + shape_str(s);
    return p;
  }
  if (s.M > INT32_MAX || s.N * s.groups > INT32_MAX || s.K * s.groups > INT32_MAX) {
    p.unsupported_ = "dense gemm: dimension beyond int32 in " + shape_str(s);
    return p;
  }
  const cudaDataType_t in_type = s.type == DenseGemmType::F32 ? CUDA_R_32F : CUDA_R_16BF;
  DSV4_CUDA_CHECK(cublasLtMatmulDescCreate(&p.desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Column-major view (as gemm/plan.cpp): D[N, M] = op(A)[N, K] · B[K, M]; A = row-major W [N, K] read as [K, N]
  // and transposed, B = row-major x [M, K] read as [K, M] with ld x_ld, D = row-major y [M, N] with ld y_ld.
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const uint64_t M = static_cast<uint64_t>(s.M), N = static_cast<uint64_t>(s.N), K = static_cast<uint64_t>(s.K);
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.a_, in_type, K, N, s.K));
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.b_, in_type, K, M, s.x_ld));
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.d_, CUDA_R_32F, N, M, s.y_ld));
  set_batch(p.a_, s.groups, s.N * s.K);
  set_batch(p.b_, s.groups, s.K);
  set_batch(p.d_, s.groups, s.N);

  cublasLtMatmulPreference_t pref = nullptr;
  DSV4_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  DSV4_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &max_workspace_bytes, sizeof(max_workspace_bytes)));
  const uint32_t align = static_cast<uint32_t>(s.align);
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    DSV4_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align)));
  constexpr int kDenseCandidates = 8;
  cublasLtMatmulHeuristicResult_t results[kDenseCandidates] = {};
  int returned = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(handle, p.desc_, p.a_, p.b_, p.d_, p.d_, pref, kDenseCandidates, results,
                                     &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  int chosen = -1;
  for (int i = 0; st == CUBLAS_STATUS_SUCCESS && i < returned; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS) {
      chosen = i;
      break;
    }
  if (chosen < 0) {
    p.unsupported_ = "dense gemm: no cuBLASLt algorithm for " + shape_str(s) + " (heuristic: " +
                     cublasLtGetStatusName(st) + ", " + std::to_string(returned) + " results)";
    return p;
  }
  p.algo_ = results[chosen].algo;
  p.tuned_algo_ = p.algo_;
  p.workspace_bytes_ = 0;
  for (int i = chosen; i < returned; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS && results[i].workspaceSize <= max_workspace_bytes) {
      p.candidates_.push_back(results[i].algo);
      p.workspace_bytes_ = std::max(p.workspace_bytes_, results[i].workspaceSize);
    }
  p.unsupported_.clear();
  return p;
}

void DenseGemmPlan::launch(const void* w, const void* x, float* y, float beta, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream) const {
  check(ok(), [&] { return "dense gemm: unusable plan: " + unsupported_; });
  check(w && x && y, "dense gemm: null operand");
  check(workspace_bytes >= workspace_bytes_ && (workspace_bytes_ == 0 || workspace != nullptr),
        [&] { return "dense gemm: workspace of " + std::to_string(workspace_bytes) + " bytes, plan needs " +
            std::to_string(workspace_bytes_); });
  if (!tuned_ && beta == 0.0f) tune(w, x, y, workspace, stream);
  const float alpha = 1.0f;
  DSV4_CUDA_CHECK(cublasLtMatmul(handle_, desc_, &alpha, w, a_, x, b_, &beta, y, d_, y, d_, &tuned_algo_, workspace,
                                 workspace_bytes_, stream));
}

// Times every candidate on the real operands (y is overwritten: beta = 0) and keeps the fastest.
void DenseGemmPlan::tune(const void* w, const void* x, float* y, void* workspace, cudaStream_t stream) const {
  const bool enabled = kernel_paths().dense_autotune;
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  DSV4_CUDA_CHECK(cudaStreamIsCapturing(stream, &cap));
  if (cap != cudaStreamCaptureStatusNone) return;  // try again on a later, uncaptured launch
  tuned_ = true;
  if (!enabled || candidates_.size() < 2) return;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  DSV4_CUDA_CHECK(cudaEventCreate(&e0));
  DSV4_CUDA_CHECK(cudaEventCreate(&e1));
  const float alpha = 1.0f, beta = 0.0f;
  float best = -1.0f;
  for (const cublasLtMatmulAlgo_t& a : candidates_) {
    // warm-up launch; an algorithm that fails to launch is skipped
    if (cublasLtMatmul(handle_, desc_, &alpha, w, a_, x, b_, &beta, y, d_, y, d_, &a, workspace, workspace_bytes_,
                       stream) != CUBLAS_STATUS_SUCCESS)
      continue;
    DSV4_CUDA_CHECK(cudaEventRecord(e0, stream));
    bool ok = true;
    for (int r = 0; r < 3 && ok; ++r)
      ok = cublasLtMatmul(handle_, desc_, &alpha, w, a_, x, b_, &beta, y, d_, y, d_, &a, workspace,
                          workspace_bytes_, stream) == CUBLAS_STATUS_SUCCESS;
    DSV4_CUDA_CHECK(cudaEventRecord(e1, stream));
    DSV4_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0.0f;
    DSV4_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (ok && (best < 0.0f || ms < best)) {
      best = ms;
      tuned_algo_ = a;
    }
  }
  DSV4_CUDA_CHECK(cudaEventDestroy(e0));
  DSV4_CUDA_CHECK(cudaEventDestroy(e1));
}

void DenseGemmPlan::release() {
  if (a_) cublasLtMatrixLayoutDestroy(a_);
  if (b_) cublasLtMatrixLayoutDestroy(b_);
  if (d_) cublasLtMatrixLayoutDestroy(d_);
  if (desc_) cublasLtMatmulDescDestroy(desc_);
  a_ = b_ = d_ = nullptr;
  desc_ = nullptr;
}

DenseGemmPlan::~DenseGemmPlan() { release(); }

DenseGemmPlan::DenseGemmPlan(DenseGemmPlan&& o) noexcept { *this = std::move(o); }

DenseGemmPlan& DenseGemmPlan::operator=(DenseGemmPlan&& o) noexcept {
  if (this != &o) {
    release();
    shape_ = o.shape_;
    unsupported_ = std::move(o.unsupported_);
    workspace_bytes_ = o.workspace_bytes_;
    handle_ = o.handle_;
    desc_ = o.desc_;
    a_ = o.a_;
    b_ = o.b_;
    d_ = o.d_;
    algo_ = o.algo_;
    candidates_ = std::move(o.candidates_);
    tuned_ = o.tuned_;
    tuned_algo_ = o.tuned_algo_;
    o.desc_ = nullptr;
    o.a_ = o.b_ = o.d_ = nullptr;
    o.unsupported_ = "moved-from plan";
  }
  return *this;
}

}  // namespace dsv4::cuda
