// Launcher of the FP8 prefill expert GEMM (moe_gemm_fp8.cuh), in its own translation unit: its eight N variants
// per kernel are the slowest device code of the MoE family to compile.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/common/clusters.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/launch.h"
#include "backend/cuda/moe/launch_fp8.h"
#include "backend/cuda/moe/moe_gemm_fp8.cuh"
#include "core/check.h"

namespace dsv4::cuda {

std::string moe_fp8_shape_unsupported(MoeWeightFormat format, MoeScaleDtype scale_dtype, int64_t N, int64_t K,
                                      bool gate_up) {
  return moe_fp8_weights_unsupported(format, scale_dtype, N, K, gate_up);
}

namespace {

// moe_gather_fp8_kernel: MoeGatherFp8Params (sorted row blockIdx.x).
__global__ void __launch_bounds__(256) moe_gather_fp8_kernel(const __grid_constant__ MoeGatherFp8Params p) {
  grid_dependency_sync();
  const int64_t i = blockIdx.x;
  const int64_t src = p.perm[i] / p.top_k;
  const uint4* s = reinterpret_cast<const uint4*>(p.a_q + src * p.K);
  uint4* d = reinterpret_cast<uint4*>(p.out_q + i * p.K);
  for (int c = threadIdx.x; c < p.K / 16; c += blockDim.x) d[c] = s[c];
  for (int b = threadIdx.x; b < p.K / 128; b += blockDim.x)
    p.out_scale[static_cast<int64_t>(b) * p.n_rows + i] = p.a_scale[static_cast<int64_t>(b) * p.a_rows + src];
}

// cuTensorMapEncodeTiled through the runtime's driver entry point (no link against libcuda); nullptr when the
// driver does not provide it (the launcher then takes the cp.async path).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// The tensor map of p.a_q ([a_rows, K] e4m3) for the kernel's TMA path into q.a_tmap; false when it cannot be
// built (no encoder, an unaligned a_q, or the driver refuses the shape).
bool act_tensor_map(const MoeGemmParams& p, MoeGemmParams& q) {
  static_assert(sizeof(CUtensorMap) == sizeof(q.a_tmap), "a_tmap holds one CUtensorMap");
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (!encode || reinterpret_cast<uintptr_t>(p.a_q) % 16 != 0 || p.a_rows <= 0) return false;
  CUtensorMap m;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(p.K), static_cast<cuuint64_t>(p.a_rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(p.K)};
  const cuuint32_t box[2] = {kMoeF8BK, kMoeF8TmaRows}, elem[2] = {1, 1};
  const CUresult r = encode(&m, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<uint8_t*>(p.a_q), dims, strides, box,
                            elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) return false;
  std::memcpy(q.a_tmap, &m, sizeof(m));
  q.a_tma = 1;
  return true;
}

}  // namespace

void launch_moe_gather_fp8(const MoeGatherFp8Params& p, cudaStream_t stream) {
  check(p.a_q && p.a_scale && p.perm && p.out_q && p.out_scale, "moe gather fp8: null operand");
  check(p.K > 0 && p.K % 128 == 0 && p.top_k > 0 && p.a_rows > 0, "moe gather fp8: bad shape");
  check(reinterpret_cast<uintptr_t>(p.a_q) % 16 == 0 && reinterpret_cast<uintptr_t>(p.out_q) % 16 == 0,
        "moe gather fp8: rows not 16-byte aligned");
  if (p.n_rows <= 0) return;
  launch_kernel(moe_gather_fp8_kernel, dim3(static_cast<unsigned>(p.n_rows)), 256, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_moe_gemm_fp8(const MoeGemmParams& p_in, int64_t max_tiles, cudaStream_t stream) {
  const std::string why = moe_fp8_unsupported(p_in);
  check(why.empty(), why);
  MoeGemmParams p = p_in;
  p.a_tma = 0;
  if (kernel_paths().moe_fp8_tma && !p.gather) act_tensor_map(p_in, p);
  check(p.tiles && p.n_tiles && p.out, "moe fp8: null operand");
  if (max_tiles == 0) return;
  const int64_t smem = MoeF8Smem::bytes();
  const int sms = current_sm_count();
  check(sms > 0, "moe fp8: no SM count for the current device");
  // DSV4_MOE_FP8_PROF=1: the clock64-instrumented kernel; each launch is synchronized and its phase cycles
  // printed to stderr (measurement only).
  static const bool prof = [] {
    const char* e = std::getenv("DSV4_MOE_FP8_PROF");
    return e && e[0] == '1';
  }();
  auto run = [&]<bool kGateUp>() {
    auto kernel = prof ? moe_gemm_fp8_kernel<kGateUp, true> : moe_gemm_fp8_kernel<kGateUp, false>;
    static int64_t smem_set = 0;  // raised once per instance, to the largest size asked so far
    if (smem > smem_set) {
      DSV4_CUDA_CHECK(
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
      smem_set = smem;
    }
    // Persistent: one CTA per SM at most (the kernel's items: n_tiles · N / bn, read on the device).
    const int64_t items = max_tiles * (p.N / moe_fp8_bn(kGateUp));
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(items, sms)));
    launch_kernel(kernel, grid, kMoeF8Threads, static_cast<size_t>(smem), stream, p);
  };
  if (prof) {
    unsigned long long z[12] = {};
    DSV4_CUDA_CHECK(cudaMemcpyToSymbolAsync(g_moe_f8_prof, z, sizeof(z), 0, cudaMemcpyHostToDevice, stream));
  }
  if (p.gate_up) run.template operator()<true>();
  else run.template operator()<false>();
  DSV4_CUDA_CHECK_LAUNCH();
  if (prof) {
    unsigned long long v[12];
    DSV4_CUDA_CHECK(cudaMemcpyFromSymbolAsync(v, g_moe_f8_prof, sizeof(v), 0, cudaMemcpyDeviceToHost, stream));
    DSV4_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::fprintf(stderr,
                 "[moe_fp8 prof] %s N=%d K=%d steps=%llu items=%llu | producer per step: wait-empty %.0f issue %.0f "
                 "wait-copies %.0f convert %.0f | consumer per step: wait-full %.0f wgmma %.0f promote %.0f, "
                 "epilogue per item %.0f cycles\n",
                 p.gate_up ? "gate_up" : "down", p.N, p.K, v[8], v[9], double(v[0]) / v[8], double(v[1]) / v[8],
                 double(v[2]) / v[8], double(v[3]) / v[8], double(v[4]) / v[8], double(v[5]) / v[8],
                 double(v[6]) / v[8], double(v[7]) / v[9]);
  }
}

}  // namespace dsv4::cuda
