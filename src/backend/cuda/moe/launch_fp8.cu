// Launcher of the FP8 prefill expert GEMM (moe_gemm_fp8.cuh), in its own translation unit: its eight N variants
// per kernel are the slowest device code of the MoE family to compile.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

void launch_moe_gemm_fp8(const MoeGemmParams& p, int64_t max_tiles, cudaStream_t stream) {
  const std::string why = moe_fp8_unsupported(p);
  check(why.empty(), why);
  check(p.tiles && p.n_tiles && (p.out || p.out_bf16), "moe fp8: null operand");
  check(!p.out_bf16 || p.round_bf16, "moe fp8: bf16 outputs need bf16-rounded values (round_bf16)");
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
    unsigned long long z[kMoeF8ProfSlots] = {};
    z[18] = ~0ull;  // the smallest CTA time: atomicMin
    DSV4_CUDA_CHECK(cudaMemcpyToSymbolAsync(g_moe_f8_prof, z, sizeof(z), 0, cudaMemcpyHostToDevice, stream));
  }
  if (p.gate_up) run.template operator()<true>();
  else run.template operator()<false>();
  DSV4_CUDA_CHECK_LAUNCH();
  if (prof) {
    unsigned long long v[kMoeF8ProfSlots];
    DSV4_CUDA_CHECK(cudaMemcpyFromSymbolAsync(v, g_moe_f8_prof, sizeof(v), 0, cudaMemcpyDeviceToHost, stream));
    DSV4_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::fprintf(stderr,
                 "[moe_fp8 prof] %s N=%d K=%d steps=%llu items=%llu | producer per step: wait-empty %.0f issue %.0f "
                 "wait-copies %.0f convert %.0f | consumer per step: wait-full %.0f wgmma %.0f promote %.0f, "
                 "epilogue per item %.0f cycles\n",
                 p.gate_up ? "gate_up" : "down", p.N, p.K, v[8], v[9], double(v[0]) / v[8], double(v[1]) / v[8],
                 double(v[2]) / v[8], double(v[3]) / v[8], double(v[4]) / v[8], double(v[5]) / v[8],
                 double(v[6]) / v[8], double(v[7]) / v[9]);
    const double items = double(v[9]), ctas = std::min<double>(items, sms);
    std::fprintf(stderr,
                 "[moe_fp8 prof] %s | first 6 steps of an item, per item: producer wait-empty %.0f of %.0f, "
                 "consumer wait-full %.0f of %.0f | consumer warpgroup 1 per step: wait-full %.0f wgmma %.0f "
                 "promote %.0f, epilogue per item %.0f | CTA cycles mean %.0f max %llu min %llu (%.0f CTAs)\n",
                 p.gate_up ? "gate_up" : "down", double(v[10]) / items, double(v[0]) / items, double(v[11]) / items,
                 double(v[4]) / items, double(v[12]) / v[8], double(v[13]) / v[8], double(v[14]) / v[8],
                 double(v[15]) / items, double(v[16]) / ctas, v[17], v[18], ctas);
  }
}

}  // namespace dsv4::cuda
