// MoE kernel capability checks.
#include "backend/cuda/moe/plan.h"
#include "backend/cuda/common/kernel_paths.h"

#include <algorithm>
#include <cstdlib>

namespace dsv4::cuda {

}  // namespace dsv4::cuda

namespace dsv4::cuda {

int moe_gemm_bm(MoeGemmPath path) {
  switch (path) {
    case MoeGemmPath::Simt: return kMoeSimtBM;
    case MoeGemmPath::MmaDecode: return 16;
    case MoeGemmPath::MmaPrefill: return 128;
    case MoeGemmPath::MmaGemv: return 16;
    case MoeGemmPath::MmaGemvWide: return 64;
  }
  return kMoeSimtBM;
}

int64_t moe_max_tiles(int64_t n_slots, int64_t n_experts, int bm) {
  return std::min(n_slots, n_experts) + (n_slots + bm - 1) / bm;
}

std::string moe_mma_unsupported(MoeWeightFormat format, MoeScaleDtype scale_dtype, int64_t N, int64_t K) {
  if (format != MoeWeightFormat::Fp8 && format != MoeWeightFormat::Mxfp4) return "moe mma: weights are not FP8 / MXFP4";
  if (scale_dtype != MoeScaleDtype::E8m0) return "moe mma: weight scales are not e8m0";
  if (N <= 0 || N % kMoeMmaBN != 0) return "moe mma: N " + std::to_string(N) + " is not a multiple of 64";
  if (K <= 0 || K % 128 != 0) return "moe mma: K " + std::to_string(K) + " is not a multiple of 128";
  return {};
}

std::string moe_gemv_unsupported(MoeWeightFormat format, MoeScaleDtype scale_dtype, int64_t N, int64_t K) {
  std::string why = moe_mma_unsupported(format, scale_dtype, N, K);
  if (!why.empty()) return why;
  if (N % 32 != 0) return "moe gemv: N " + std::to_string(N) + " is not a multiple of 32";
  if (K > (int64_t{1} << 30)) return "moe gemv: K " + std::to_string(K) + " too large";
  return {};
}

bool moe_fuse_enabled() { return kernel_paths().moe_fuse; }

bool moe_gemv_enabled() { return kernel_paths().moe_gemv; }

int moe_gemv_warps(int64_t ctas, int sms) {
  const int64_t forced = kernel_paths().moe_gemv_warps;
  if (forced == 1 || forced == 2 || forced == 4 || forced == 8) return static_cast<int>(forced);
  return sms > 0 && ctas >= 4 * int64_t{sms} ? kMoeGemvWarpsLargeGrid : kMoeGemvWarps;
}

MoeGemmPath moe_mma_tile(int64_t n_slots, int64_t n_experts) {
  // With the wgmma kernel the 128-slot tile wins at any slot count above the gemv range: the 16-slot mma.sync
  // tiles re-read each expert's weights per 16 slots and stall on them (Flash T=512, 12 slots per expert: 10.5
  // vs 4.6 ms, runs 45-53); launch_moe_gemm falls back to the mma.sync 128-slot kernel where wgmma does not apply.
  if (kernel_paths().moe_wgmma) return MoeGemmPath::MmaPrefill;
  const int64_t used = std::max<int64_t>(1, std::min(n_slots, n_experts));
  return n_slots / used >= 32 ? MoeGemmPath::MmaPrefill : MoeGemmPath::MmaDecode;
}

}  // namespace dsv4::cuda
