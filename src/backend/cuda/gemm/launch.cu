// Launchers of the FP8 GEMM family: argument validation, compile-time dispatch of the mma kernel's token-tile
// count (C++20 template lambda), and the cuBLASLt call of a CublasLt plan.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "backend/cuda/common/clusters.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/act_quant.cuh"
#include "backend/cuda/gemm/fp8_decode.cuh"
#include "backend/cuda/gemm/fp8_gemv.cuh"
#include "backend/cuda/gemm/fp8_gemm_mma.cuh"
#include "backend/cuda/gemm/launch.h"
#include "core/check.h"

namespace dsv4::cuda {
namespace {

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

void check_args(const Fp8GemmPlan& plan, const Fp8GemmArgs& a) {
  check(plan.ok(), [&] { return "launch_fp8_gemm: unusable plan: " + plan.unsupported(); });
  check(a.xq && a.x_scale && a.w && a.w_scale && a.y, "launch_fp8_gemm: null operand");
  check(aligned(a.xq, 16) && aligned(a.w, 16) && aligned(a.y, 16) && aligned(a.x_scale, 16) &&
            aligned(a.w_scale, 16),
        "launch_fp8_gemm: operands must be 16-byte aligned");
}

void run_mma(const Fp8GemmPlan& plan, const Fp8GemmArgs& a, cudaStream_t stream) {
  const MmaSchedule& s = plan.mma();
  Fp8GemmMmaParams p;
  p.xq = a.xq;
  p.x_scale = a.x_scale;
  p.w = a.w;
  p.w_scale = a.w_scale;
  p.y = a.y;
  p.M = static_cast<int32_t>(plan.shape().M);
  p.N = static_cast<int32_t>(plan.shape().N);
  p.K = static_cast<int32_t>(plan.shape().K);
  p.w_scale_ld = static_cast<int32_t>(fp8_weight_scale_ld(plan.shape().K));
  const dim3 grid(static_cast<unsigned>(s.n_ctas), static_cast<unsigned>(s.m_ctas));
  const unsigned threads = static_cast<unsigned>(32 * s.k_splits);
  auto launch = [&]<int kTokTiles>() {
    launch_kernel(fp8_gemm_mma_kernel<kTokTiles>, grid, threads, s.smem_bytes, stream, p);
  };
  switch (s.tok_tiles) {
    case 1: launch.template operator()<1>(); break;
    case 2: launch.template operator()<2>(); break;
    case 4: launch.template operator()<4>(); break;
    default: launch.template operator()<8>(); break;
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

void run_cublaslt(const Fp8GemmPlan& plan, const Fp8GemmArgs& a, void* workspace, size_t workspace_bytes,
                  cudaStream_t stream) {
  check(workspace_bytes >= plan.workspace_bytes() && (plan.workspace_bytes() == 0 || workspace != nullptr),
        [&] { return "launch_fp8_gemm: workspace of " + std::to_string(workspace_bytes) + " bytes, plan needs " +
            std::to_string(plan.workspace_bytes()); });
  const Fp8GemmPlan::Lt& lt = plan.lt();
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a.w_scale,
                                                 sizeof(a.w_scale)));
  DSV4_CUDA_CHECK(cublasLtMatmulDescSetAttribute(lt.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &a.x_scale,
                                                 sizeof(a.x_scale)));
  const float alpha = 1.0f, beta = 0.0f;
  DSV4_CUDA_CHECK(cublasLtMatmul(lt.handle, lt.desc, &alpha, a.w, lt.a, a.xq, lt.b, &beta, a.y, lt.d, a.y, lt.d,
                                 &lt.algo, workspace, plan.workspace_bytes(), stream));
}

}  // namespace

void launch_act_quant(const ActQuantParams& p, cudaStream_t stream) {
  check(p.K > 0 && p.K % 128 == 0, [&] { return "act_quant: K " + std::to_string(p.K) + " is not a positive multiple of 128"; });
  check(p.M >= 0, "act_quant: negative M");
  check(p.x && p.q && p.scale, "act_quant: null operand");
  check(aligned(p.x, 16) && aligned(p.q, 8), "act_quant: x must be 16-byte and q 8-byte aligned");
  const int64_t blocks = p.M * (p.K / 128);
  if (blocks == 0) return;
  const int64_t ctas = (blocks + kActQuantBlocksPerCta - 1) / kActQuantBlocksPerCta;
  check(ctas <= INT32_MAX, [&] { return "act_quant: M " + std::to_string(p.M) + " too large for one launch"; });
  launch_kernel(act_quant_kernel, static_cast<unsigned>(ctas), kActQuantWarps * 32, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_e8m0_to_f32(const E8m0ToF32Params& p, cudaStream_t stream) {
  check(p.rows >= 0 && p.cols >= 0 && p.ld >= p.cols, "e8m0_to_f32: bad shape (ld must be >= cols)");
  const int64_t n = static_cast<int64_t>(p.rows) * p.ld;
  if (n == 0) return;
  launch_kernel(e8m0_to_f32_kernel, static_cast<unsigned>((n + 255) / 256), 256, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

namespace {

template <int kTokTiles>
void* fp8_decode_entry() {
  auto* kernel = fp8_decode_kernel<kTokTiles>;
  static const bool attr = [&] {  // once per instance: allow the budget's dynamic shared memory
    DSV4_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(kFp8DecodeMaxSmem)));
    return true;
  }();
  (void)attr;
  return reinterpret_cast<void*>(kernel);
}

void* fp8_decode_entry(int tok_tiles) {
  switch (tok_tiles) {
    case 1: return fp8_decode_entry<1>();
    case 2: return fp8_decode_entry<2>();
    case 4: return fp8_decode_entry<4>();
    default: return fp8_decode_entry<8>();
  }
}

}  // namespace

void launch_fp8_decode(const Fp8DecodeSchedule& s, const Fp8DecodeParams& p, cudaStream_t stream) {
  check(s.ok, "launch_fp8_decode: unusable schedule");
  check(p.M >= 1 && p.M <= kFp8DecodeMaxM && p.N > 0 && p.N % 16 == 0 && p.K > 0 && p.K % 128 == 0,
        [&] { return "launch_fp8_decode: bad shape M=" + std::to_string(p.M) + " N=" + std::to_string(p.N) +
            " K=" + std::to_string(p.K); });
  check(p.x && p.w && p.w_scale && p.y, "launch_fp8_decode: null operand");
  check(aligned(p.x, 16) && p.x_ld % 4 == 0 && p.x_ld >= p.K && p.y_ld >= (p.y_hi ? p.n_split : p.N) &&
            aligned(p.w, 16),
        "launch_fp8_decode: x must be 16-byte aligned with x_ld % 4 == 0, w 16-byte aligned");
  check(p.row_warps == s.row_warps && p.cluster == s.cluster && p.kb_per_cta == s.kb_per_cta,
        "launch_fp8_decode: params disagree with the schedule");
  check(s.smem_bytes <= kFp8DecodeMaxSmem, "launch_fp8_decode: shared memory beyond the budget");
  check(p.w_hi == nullptr || (p.w_scale_hi != nullptr && p.n_split > 0 && p.n_split < p.N && p.n_split % 16 == 0 &&
                              aligned(p.w_hi, 16)),
        "launch_fp8_decode: stacked weight needs a scale, 0 < n_split < N, n_split % 16 == 0, 16-byte alignment");
  check(p.x_up == nullptr || aligned(p.x_up, 16), "launch_fp8_decode: x_up must be 16-byte aligned");
  check(p.y_hi == nullptr || (p.w_hi != nullptr && p.y_hi_ld >= p.N - p.n_split),
        "launch_fp8_decode: a second output needs the stacked weight and y_hi_ld >= N - n_split");
  auto launch = [&]<int kTokTiles>() {
    auto* kernel = reinterpret_cast<decltype(&fp8_decode_kernel<kTokTiles>)>(fp8_decode_entry<kTokTiles>());
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(static_cast<unsigned>(s.row_ctas) * static_cast<unsigned>(s.cluster), 1, 1);
    cfg.blockDim = dim3(kFp8DecodeWarps * 32, 1, 1);
    cfg.dynamicSmemBytes = s.smem_bytes;
    cfg.stream = stream;
    cudaLaunchAttribute at[2];
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = static_cast<unsigned>(s.cluster);
    at[0].val.clusterDim.y = 1;
    at[0].val.clusterDim.z = 1;
    at[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;  // common/pdl.cuh
    at[1].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = use_pdl(stream) ? 2 : 1;
    DSV4_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, p));
  };
  switch (s.tok_tiles) {
    case 1: launch.template operator()<1>(); break;
    case 2: launch.template operator()<2>(); break;
    case 4: launch.template operator()<4>(); break;
    default: launch.template operator()<8>(); break;
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

int fp8_decode_max_clusters(int tok_tiles, int cluster, size_t smem_bytes) {
  static std::mutex mu;
  static std::map<std::tuple<int, int, int, size_t>, int> cache;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  const auto key = std::make_tuple(device, tok_tiles, cluster, smem_bytes);
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const int n = max_active_clusters(fp8_decode_entry(tok_tiles), kFp8DecodeWarps * 32, smem_bytes, cluster);
  cache.emplace(key, n);
  return n;
}

Fp8DecodeSchedule fp8_decode_schedule_for_device(const Fp8GemmShape& shape, int sm_count) {
  static std::mutex mu;
  static std::map<std::tuple<int, int64_t, int64_t, int64_t, int>, Fp8DecodeSchedule> cache;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) device = -1;
  const auto key = std::make_tuple(device, shape.M, shape.N, shape.K, sm_count);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  const Fp8DecodeSchedule s = choose_fp8_decode_schedule(shape, sm_count, fp8_decode_max_clusters);
  std::lock_guard<std::mutex> lock(mu);
  cache.emplace(key, s);
  return s;
}

bool fp8_gemv_supported(const Fp8GemvParams& p) {
  return p.M >= 1 && p.N > 0 && p.N % kFp8GemvRows == 0 && p.rows_per_group > 0 &&
         p.rows_per_group % kFp8GemvRows == 0 && p.N % p.rows_per_group == 0 && p.K > 0 && p.K % 16 == 0 &&
         p.K <= 16 * kFp8GemvThreads && p.x_ld % 4 == 0 && p.x_group_stride % 4 == 0 && p.x_ld >= p.K &&
         p.y_ld >= p.N && aligned(p.x, 16) && aligned(p.w, 16) && p.w_scale != nullptr && p.y != nullptr &&
         (p.M + 3) / 4 <= 65535;
}

void launch_fp8_gemv(const Fp8GemvParams& p, cudaStream_t stream) {
  check(fp8_gemv_supported(p), [&] { return "launch_fp8_gemv: unsupported shape M=" + std::to_string(p.M) + " N=" +
                                   std::to_string(p.N) + " K=" + std::to_string(p.K) + " rows_per_group=" +
                                   std::to_string(p.rows_per_group) + " (or misaligned operands)"; });
  const int tok = p.M == 1 ? 1 : p.M == 2 ? 2 : 4;
  const dim3 grid(static_cast<unsigned>(p.N / kFp8GemvRows), static_cast<unsigned>((p.M + tok - 1) / tok));
  switch (tok) {
    case 1: launch_kernel(fp8_gemv_kernel<1>, grid, kFp8GemvThreads, 0, stream, p); break;
    case 2: launch_kernel(fp8_gemv_kernel<2>, grid, kFp8GemvThreads, 0, stream, p); break;
    default: launch_kernel(fp8_gemv_kernel<4>, grid, kFp8GemvThreads, 0, stream, p); break;
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_fp8_gemm(const Fp8GemmPlan& plan, const Fp8GemmArgs& args, void* workspace, size_t workspace_bytes,
                     cudaStream_t stream) {
  check_args(plan, args);
  if (plan.path() == Fp8GemmPath::Mma)
    run_mma(plan, args, stream);
  else
    run_cublaslt(plan, args, workspace, workspace_bytes, stream);
}

}  // namespace dsv4::cuda
