// Host-side plans of the FP8 GEMM family (STYLE.md "Kernels": schedules apart from kernels, capabilities
// declared). A plan is built once per (path, M, N, K) before any step runs (plan creation allocates nothing on
// the device and may be slow: cuBLASLt algorithm selection); launching a plan is cheap and CUDA-graph safe.
//
// Paths:
//   CublasLt  cuBLASLt block-scaled FP8 (CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F for the weight,
//             VEC128_32F for the activation). These modes exist on sm_90 only (cuBLAS >= 12.9); the plan is
//             unusable when the heuristic returns no algorithm, and says so.
//   Mma       fp8_gemm_mma_kernel (mma.sync e4m3): any M, N % 16 == 0, K % 128 == 0.
// Both read the operand layouts of gemm/params.h, so one weight upload serves both.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace dsv4::cuda {

enum class Fp8GemmPath : uint8_t { CublasLt, Mma };
const char* to_string(Fp8GemmPath path);

struct Fp8GemmShape {
  int64_t M = 0;  // tokens
  int64_t N = 0;  // output features (weight rows)
  int64_t K = 0;  // input features, multiple of 128
};

struct Fp8GemmArgs {
  const uint8_t* xq = nullptr;       // e4m3 [M, K]
  const float* x_scale = nullptr;    // f32 [K/128, M]
  const uint8_t* w = nullptr;        // e4m3 [N, K]
  const float* w_scale = nullptr;    // f32 [ceil(N/128), fp8_weight_scale_ld(K)]
  __nv_bfloat16* y = nullptr;        // bf16 [M, N]
};

// Leading dimension of the f32 weight-scale layout: K-blocks padded to a multiple of 4 (16 bytes).
inline int64_t fp8_weight_scale_ld(int64_t K) { return (((K + 127) / 128 + 3) / 4) * 4; }

// Owns one cuBLASLt handle (one per device and thread that launches).
class CublasLt {
 public:
  CublasLt();
  ~CublasLt();
  CublasLt(const CublasLt&) = delete;
  CublasLt& operator=(const CublasLt&) = delete;
  cublasLtHandle_t get() const { return handle_; }

 private:
  cublasLtHandle_t handle_ = nullptr;
};

// Schedule of fp8_gemm_mma_kernel (chosen by choose_mma_schedule, the tile heuristic).
struct MmaSchedule {
  int tok_tiles = 1;    // 8-token MMA tiles per CTA: 1, 2, 4 or 8
  int k_splits = 1;     // warps per CTA, each owning an even share of the K-blocks
  int n_ctas = 0;       // grid.x = N / 16
  int m_ctas = 0;       // grid.y = ceil(M / (8 * tok_tiles))
  size_t smem_bytes = 0;
};
MmaSchedule choose_mma_schedule(const Fp8GemmShape& shape);

// Schedule of fp8_decode_kernel (fused act_quant + FP8 linear for M <= kFp8DecodeMaxM), chosen so that at
// least ~2 CTAs per SM stream the weight in one wave: ok false (use the act_quant + Fp8GemmPlan path) when M, N,
// K or the shared-memory budget do not fit.
struct Fp8DecodeSchedule {
  bool ok = false;
  int tok_tiles = 1;    // 8-token MMA tiles: 1, 2, 4 or 8
  int row_warps = 8;    // 16-row groups per CTA; the other 8/row_warps factor of the warps splits K
  int cluster = 1;      // CTAs per cluster along K (DSMEM reduction)
  int kb_per_cta = 0;   // K-blocks per cluster rank
  int row_ctas = 0;     // clusters along N: ceil(N / (16 * row_warps))
  size_t smem_bytes = 0;
};
// max_clusters(tok_tiles, cluster, smem_bytes): clusters of that size the GPU runs at once (launch.h
// fp8_decode_max_clusters; <= 0: unknown). A grid of more clusters runs in two waves (H200 run 70: 32 clusters of
// 8 against 30 resident, wo_b 18.3 µs with the SMs active 47 % of the time), so such configurations are taken only
// when none fits. Without max_clusters every configuration counts as fitting.
using Fp8DecodeMaxClusters = std::function<int(int tok_tiles, int cluster, size_t smem_bytes)>;
Fp8DecodeSchedule choose_fp8_decode_schedule(const Fp8GemmShape& shape, int sm_count,
                                             const Fp8DecodeMaxClusters& max_clusters = {});

class Fp8GemmPlan {
 public:
  // Never fails by exception for an unsupported shape or path: check ok() / unsupported().
  static Fp8GemmPlan create(const Fp8GemmShape& shape, Fp8GemmPath path, const CublasLt* lt,
                            size_t max_workspace_bytes);
  Fp8GemmPlan() = default;
  ~Fp8GemmPlan();
  Fp8GemmPlan(Fp8GemmPlan&& o) noexcept;
  Fp8GemmPlan& operator=(Fp8GemmPlan&& o) noexcept;
  Fp8GemmPlan(const Fp8GemmPlan&) = delete;
  Fp8GemmPlan& operator=(const Fp8GemmPlan&) = delete;

  bool ok() const { return unsupported_.empty(); }
  const std::string& unsupported() const { return unsupported_; }
  Fp8GemmPath path() const { return path_; }
  const Fp8GemmShape& shape() const { return shape_; }
  size_t workspace_bytes() const { return workspace_bytes_; }  // caller-owned workspace the launch needs
  const MmaSchedule& mma() const { return mma_; }

  // cuBLASLt state (path == CublasLt). The descriptor's scale pointers are set at each launch.
  struct Lt {
    cublasLtHandle_t handle = nullptr;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  const Lt& lt() const { return lt_; }

 private:
  void release();
  void init_cublaslt(const CublasLt& lt, size_t max_workspace_bytes);
  Fp8GemmShape shape_;
  Fp8GemmPath path_ = Fp8GemmPath::Mma;
  std::string unsupported_ = "empty plan";
  size_t workspace_bytes_ = 0;
  MmaSchedule mma_;
  Lt lt_;
};

}  // namespace dsv4::cuda
