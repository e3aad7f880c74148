// FP8 GEMM plans: the mma.sync tile heuristic and cuBLASLt descriptor/algorithm selection.
#include "backend/cuda/gemm/plan.h"

#include <algorithm>
#include <climits>
#include <string>
#include <utility>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/fp8_gemm_limits.h"

namespace dsv4::cuda {

const char* to_string(Fp8GemmPath path) { return path == Fp8GemmPath::CublasLt ? "cublaslt" : "mma"; }

CublasLt::CublasLt() { DSV4_CUDA_CHECK(cublasLtCreate(&handle_)); }
CublasLt::~CublasLt() {
  if (handle_) cublasLtDestroy(handle_);
}

namespace {

// Enough resident warps to cover HBM latency on 132 SMs: about 16 warps per SM.
constexpr int64_t kTargetWarps = 132 * 16;
constexpr size_t kMaxSmem = 48 * 1024;

std::string shape_str(const Fp8GemmShape& s) {
  return "M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K);
}

}  // namespace

MmaSchedule choose_mma_schedule(const Fp8GemmShape& s) {
  MmaSchedule m;
  m.tok_tiles = s.M <= 8 ? 1 : s.M <= 16 ? 2 : s.M <= 32 ? 4 : 8;
  const int64_t cols = 8 * m.tok_tiles;
  m.n_ctas = static_cast<int>(s.N / kMmaRowsPerCta);
  m.m_ctas = static_cast<int>((s.M + cols - 1) / cols);
  const int64_t ctas = std::max<int64_t>(1, static_cast<int64_t>(m.n_ctas) * m.m_ctas);
  const int64_t kb = s.K / 128;
  const size_t per_warp_smem = static_cast<size_t>(kMmaRowsPerCta) * (cols + 1) * sizeof(float);
  const int64_t smem_cap = static_cast<int64_t>(kMaxSmem / per_warp_smem);
  const int64_t want = (kTargetWarps + ctas - 1) / ctas;
  m.k_splits = static_cast<int>(std::clamp<int64_t>(want, 1, std::min<int64_t>({mma_max_warps(m.tok_tiles), kb, smem_cap})));
  m.smem_bytes = per_warp_smem * static_cast<size_t>(m.k_splits);
  return m;
}

Fp8DecodeSchedule choose_fp8_decode_schedule(const Fp8GemmShape& s, int sm_count,
                                             const Fp8DecodeMaxClusters& max_clusters) {
  Fp8DecodeSchedule best;
  if (s.M < 1 || s.M > kFp8DecodeMaxM || s.N <= 0 || s.N % 16 != 0 || s.K <= 0 || s.K % 128 != 0 ||
      s.N > INT32_MAX || s.K > INT32_MAX)
    return best;
  const int M = static_cast<int>(s.M);
  const int tok_tiles = M <= 8 ? 1 : M <= 16 ? 2 : M <= 32 ? 4 : 8;
  const int64_t kb_total = s.K / 128;
  const int64_t target = 2 * static_cast<int64_t>(std::max(sm_count, 1)) - 8;  // ~2 CTAs per SM (256 on H200)
  Fp8DecodeSchedule best_fit;  // the most CTAs among the configurations that run in one wave
  int64_t best_ctas = 0, fit_ctas = 0;
  // Largest row groups first (fewest redundant activation quantizations), then the smallest cluster that
  // reaches the target in one wave; if none does, the one-wave configuration with the most CTAs; if no
  // configuration runs in one wave, the one with the most CTAs.
  for (int row_warps : {8, 4, 2, 1}) {
    const int64_t row_ctas = (s.N + 16 * row_warps - 1) / (16 * row_warps);
    for (int cluster : {1, 2, 4, 8}) {
      if (cluster > kb_total || cluster > kFp8DecodeMaxCluster) break;
      const int64_t kpc = (kb_total + cluster - 1) / cluster;
      if ((kpc * (cluster - 1)) >= kb_total) continue;  // every rank owns at least one K-block
      const Fp8DecodeSmem sm(M, static_cast<int>(kpc), row_warps, tok_tiles);
      if (sm.total > kFp8DecodeMaxSmem) continue;
      const int64_t ctas = row_ctas * cluster;
      if (ctas > INT32_MAX / 2) continue;
      Fp8DecodeSchedule c;
      c.ok = true;
      c.tok_tiles = tok_tiles;
      c.row_warps = row_warps;
      c.cluster = cluster;
      c.kb_per_cta = static_cast<int>(kpc);
      c.row_ctas = static_cast<int>(row_ctas);
      c.smem_bytes = sm.total;
      const int cap = max_clusters ? max_clusters(tok_tiles, cluster, sm.total) : 0;
      const bool fits = cap <= 0 || row_ctas <= cap;
      if (ctas > best_ctas) {
        best_ctas = ctas;
        best = c;
      }
      if (!fits) continue;
      if (ctas > fit_ctas) {
        fit_ctas = ctas;
        best_fit = c;
      }
      if (ctas >= target) return c;
    }
  }
  return best_fit.ok ? best_fit : best;
}

Fp8GemmPlan Fp8GemmPlan::create(const Fp8GemmShape& shape, Fp8GemmPath path, const CublasLt* lt,
                                size_t max_workspace_bytes) {
  Fp8GemmPlan p;
  p.shape_ = shape;
  p.path_ = path;
  p.unsupported_.clear();
  if (shape.M <= 0 || shape.N <= 0 || shape.K <= 0 || shape.K % 128 != 0) {
    p.unsupported_ = "fp8 gemm: needs M, N > 0 and K a positive multiple of 128, got " + shape_str(shape);
    return p;
  }
  if (shape.M > INT32_MAX || shape.N > INT32_MAX || shape.K > INT32_MAX) {
    p.unsupported_ = "fp8 gemm: dimension beyond int32 in " + shape_str(shape);
    return p;
  }
  if (path == Fp8GemmPath::Mma) {
    if (shape.N % kMmaRowsPerCta != 0) {
      p.unsupported_ = "fp8 gemm (mma): N must be a multiple of 16, got " + shape_str(shape);
      return p;
    }
    p.mma_ = choose_mma_schedule(shape);
    return p;
  }
  if (lt == nullptr) {
    p.unsupported_ = "fp8 gemm (cublaslt): no cuBLASLt handle";
    return p;
  }
  if (shape.N % 16 != 0) {
    p.unsupported_ = "fp8 gemm (cublaslt): N must be a multiple of 16 (16-byte leading dimension), got " +
                     shape_str(shape);
    return p;
  }
  p.init_cublaslt(*lt, max_workspace_bytes);
  return p;
}

void Fp8GemmPlan::init_cublaslt(const CublasLt& handle, size_t max_workspace_bytes) {
  lt_.handle = handle.get();
  DSV4_CUDA_CHECK(cublasLtMatmulDescCreate(&lt_.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // cuBLASLt is column-major: D[N, M] = op(A)[N, K] · B[K, M] with A = the row-major weight [N, K] read as
  // [K, N] col-major and transposed, B = the row-major activation [M, K] read as [K, M], D = row-major y [M, N].
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(lt_.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(lt_.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const int32_t a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
  const int32_t b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(lt_.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &a_mode, sizeof(a_mode)));
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(lt_.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &b_mode, sizeof(b_mode)));
  // Block-scaled modes need scale pointers before algorithm selection; the real ones are set at launch. The
  // heuristic does not dereference them.
  const void* placeholder = reinterpret_cast<const void*>(uintptr_t{256});
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(lt_.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &placeholder,
                                                 sizeof(placeholder)));
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(lt_.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &placeholder,
                                                 sizeof(placeholder)));
  const uint64_t M = static_cast<uint64_t>(shape_.M), N = static_cast<uint64_t>(shape_.N),
                 K = static_cast<uint64_t>(shape_.K);
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lt_.a, CUDA_R_8F_E4M3, K, N, static_cast<int64_t>(K)));
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lt_.b, CUDA_R_8F_E4M3, K, M, static_cast<int64_t>(K)));
  DSV4_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lt_.d, CUDA_R_16BF, N, M, static_cast<int64_t>(N)));

  cublasLtMatmulPreference_t pref = nullptr;
  DSV4_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  DSV4_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &max_workspace_bytes, sizeof(max_workspace_bytes)));
  cublasLtMatmulHeuristicResult_t results[8] = {};
  int returned = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_.handle, lt_.desc, lt_.a, lt_.b, lt_.d, lt_.d, pref,
                                                           8, results, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  int chosen = -1;
  for (int i = 0; st == CUBLAS_STATUS_SUCCESS && i < returned; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS) {
      chosen = i;
      break;
    }
  if (chosen < 0) {
    unsupported_ = std::string("fp8 gemm (cublaslt): no block-scaled (BLK128x128 x VEC128) algorithm for ") +
                   shape_str(shape_) + " (heuristic: " + cublasLtGetStatusName(st) + ", " +
                   std::to_string(returned) + " results); these modes need sm_90 and cuBLAS >= 12.9";
    return;
  }
  lt_.algo = results[chosen].algo;
  workspace_bytes_ = results[chosen].workspaceSize;
}

void Fp8GemmPlan::release() {
  if (lt_.a) cublasLtMatrixLayoutDestroy(lt_.a);
  if (lt_.b) cublasLtMatrixLayoutDestroy(lt_.b);
  if (lt_.d) cublasLtMatrixLayoutDestroy(lt_.d);
  if (lt_.desc) cublasLtMatmulDescDestroy(lt_.desc);
  lt_ = Lt{};
}

Fp8GemmPlan::~Fp8GemmPlan() { release(); }

Fp8GemmPlan::Fp8GemmPlan(Fp8GemmPlan&& o) noexcept
    : shape_(o.shape_),
      path_(o.path_),
      unsupported_(std::move(o.unsupported_)),
      workspace_bytes_(o.workspace_bytes_),
      mma_(o.mma_),
      lt_(o.lt_) {
  o.lt_ = Lt{};
  o.unsupported_ = "moved-from plan";
}

Fp8GemmPlan& Fp8GemmPlan::operator=(Fp8GemmPlan&& o) noexcept {
  if (this != &o) {
    release();
    shape_ = o.shape_;
    path_ = o.path_;
    unsupported_ = std::move(o.unsupported_);
    workspace_bytes_ = o.workspace_bytes_;
    mma_ = o.mma_;
    lt_ = o.lt_;
    o.lt_ = Lt{};
    o.unsupported_ = "moved-from plan";
  }
  return *this;
}

}  // namespace dsv4::cuda
