// Launchers of the MoE kernel family: validate shapes (messages name the dimension), pick compile-time variants
// with template lambdas, allocate nothing. Asynchronous on `stream` and CUDA-graph safe.
#include <cstdint>
#include <string>

#include "backend/cuda/common/clusters.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/launch.h"
#include "backend/cuda/moe/launch_fp8.h"
#include "backend/cuda/moe/moe_gemm.cuh"
#include "backend/cuda/moe/moe_gemm_wgmma.cuh"
#include "backend/cuda/moe/moe_gemm_wgmma_rs.cuh"
#include "backend/cuda/moe/moe_gemv.cuh"
#include "backend/cuda/moe/route.cuh"
#include "core/check.h"

namespace dsv4::cuda {

void launch_route(const RouteParams& p, cudaStream_t stream) {
  check(p.E > 0 && p.E <= kRouteMaxExperts, [&] { return "route: E " + std::to_string(p.E) + " outside [1, " +
                                                std::to_string(kRouteMaxExperts) + "]"; });
  check(p.top_k > 0 && p.top_k <= kRouteMaxTopK && (p.tid2eid || p.top_k <= p.E),
        [&] { return "route: top_k " + std::to_string(p.top_k) + " outside [1, min(E, " + std::to_string(kRouteMaxTopK) + ")]"; });
  check(p.logits && p.sel && p.weight && (!p.tid2eid || p.tokens), "route: null operand");
  if (p.T == 0) return;
  if (p.rank && p.T <= kRouteRankMaxT) launch_kernel(route_rank_kernel, p.T, kRouteRankThreads, 0, stream, p);
  else if (p.E <= 256) launch_kernel(route_kernel<8>, (p.T + kRouteWarps - 1) / kRouteWarps, kRouteWarps * 32, 0,
                                     stream, p);
  else launch_kernel(route_kernel<kRouteMaxExperts / 32>, (p.T + kRouteWarps - 1) / kRouteWarps, kRouteWarps * 32,
                     0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_moe_align_tiles(const MoeAlignParams& p, cudaStream_t stream) {
  check(p.E > 0 && p.E <= kAlignMaxExperts, [&] { return "moe align: E " + std::to_string(p.E) + " outside [1, " +
                                                std::to_string(kAlignMaxExperts) + "]"; });
  check(p.bm > 0 && p.max_tiles >= moe_max_tiles(p.n_slots, p.E, p.bm), "moe align: tile capacity too small");
  launch_kernel(moe_align_count_kernel, 1, kAlignThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_moe_align(const MoeAlignParams& p, cudaStream_t stream) {
  launch_moe_align_tiles(p, stream);
  launch_kernel(moe_align_place_kernel, p.E, kAlignPlaceThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

std::string moe_route_align_unsupported(int64_t E, int64_t top_k, int64_t n_slots) {
  if (E <= 0 || E > kFusedRouteMaxExperts)
    return "moe route+align: E " + std::to_string(E) + " outside [1, " + std::to_string(kFusedRouteMaxExperts) + "]";
  if (top_k <= 0 || top_k > kRouteMaxTopK) return "moe route+align: top_k " + std::to_string(top_k) + " too large";
  if (n_slots > kAlignThreads)
    return "moe route+align: " + std::to_string(n_slots) + " slots exceed " + std::to_string(kAlignThreads);
  return {};
}

void launch_moe_route_align(const MoeRouteAlignParams& p, cudaStream_t stream) {
  const RouteParams& r = p.route;
  const MoeAlignParams& a = p.align;
  const std::string why = moe_route_align_unsupported(r.E, r.top_k, a.n_slots);
  check(why.empty(), why);
  check(a.E == r.E && a.n_slots == r.T * r.top_k, [&] { return "moe route+align: route and align shapes differ"; });
  check(r.tid2eid || r.top_k <= r.E, [&] { return "moe route+align: top_k exceeds E"; });
  check(r.logits && r.sel && r.weight && (!r.tid2eid || r.tokens) && a.sel == r.sel && a.counts && a.offsets &&
            a.perm && a.tiles && a.n_tiles,
        [&] { return "moe route+align: null operand"; });
  check(a.bm > 0 && a.max_tiles >= moe_max_tiles(a.n_slots, a.E, a.bm), [&] { return "moe route+align: tile capacity too small"; });
  if (r.T == 0) return;
  launch_kernel(moe_route_align_kernel, 1, kAlignThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_moe_fake_quant(const MoeFakeQuantParams& p, cudaStream_t stream) {
  check(p.K > 0 && p.K % 128 == 0, [&] { return "moe fake quant: K " + std::to_string(p.K) + " is not a multiple of 128"; });
  const int64_t blocks = p.rows * (p.K / 128);
  if (blocks == 0) return;
  launch_kernel(moe_fake_quant_kernel, static_cast<unsigned>((blocks + 7) / 8), 256, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

namespace {

template <int BM, int BN, int MT, int NT, bool kGateUp, MoeWeightFormat kFmt>
void launch_mma(const MoeGemmParams& p, int64_t max_tiles, cudaStream_t stream) {
  auto kernel = moe_gemm_mma_kernel<BM, BN, MT, NT, kGateUp, kFmt>;
  const int64_t smem = moe_mma_smem_bytes(BM, BN, kGateUp ? 2 : 1, p.K);
  check(smem <= 227 * 1024, [&] { return "moe mma: K " + std::to_string(p.K) + " needs " + std::to_string(smem) +
                                " bytes of shared memory (scales of the CTA's rows)"; });
  // Raised once per instance (to the largest size asked so far), not on every call.
  static int64_t smem_set = 0;
  if (smem > smem_set) {
    DSV4_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    smem_set = smem;
  }
  const dim3 grid(static_cast<unsigned>(p.N / BN), static_cast<unsigned>(max_tiles));
  launch_kernel(kernel, grid, moe_mma_threads(BM, BN, MT, NT), static_cast<size_t>(smem), stream, p);
}

template <bool kGateUp, MoeWeightFormat kFmt, int kVariant>
void launch_wgmma(const MoeGemmParams& p, int64_t max_tiles, cudaStream_t stream) {
  constexpr bool kFp4 = kFmt == MoeWeightFormat::Mxfp4, kRs = kVariant == 3;  // variant 3: moe_gemm_wgmma_rs.cuh
  auto kernel = [] {
    if constexpr (kRs) return moe_gemm_wgmma_rs_kernel<kGateUp, kFmt>;
    else return moe_gemm_wgmma_kernel<kGateUp, kFmt, kVariant>;
  }();
  // Depends on K (the e8m0 scales of the CTA's rows); moe_wgmma(_rs)_unsupported kept it <= 227 KiB.
  const int64_t smem = kRs ? moe_wgmma_rs_smem_bytes(kFp4, p.K) : moe_wgmma_smem_bytes(kFp4, p.K);
  check(smem <= kMoeWgMaxSmem, [&] { return "moe wgmma: " + std::to_string(smem) + " bytes of shared memory"; });
  // Raised once per instance (to the largest size asked so far), not on every call.
  static int64_t smem_set = 0;
  if (smem > smem_set) {
    DSV4_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    smem_set = smem;
  }
  const dim3 grid(static_cast<unsigned>(p.N / moe_wgmma_bn(kGateUp)), static_cast<unsigned>(max_tiles));
  launch_kernel(kernel, grid, kRs ? kMoeRsThreads : moe_wgmma_threads(kVariant), static_cast<size_t>(smem), stream, p);
}

template <int kNT, bool kGateUp, MoeWeightFormat kFmt>
void launch_gemv(const MoeGemmParams& p, int64_t max_tiles, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(p.N / (kGateUp ? 16 : 32)), static_cast<unsigned>(p.tiles ? max_tiles : 1));
  // bf16 A given: the pre-quantized operand; else f32 A fake-quantized in the kernel (fused input quant). The
  // 2-n-tile kernel with two warps on large grids (moe_gemv_warps: 1, 2, 4 or 8); the 64-row tile keeps eight (one
  // CTA per SM).
  auto go = [&]<int kW>() {
    if (p.a_bf16) launch_kernel(moe_gemv_mma_kernel<kNT, kGateUp, kFmt, false, kW>, grid, kW * 32, 0, stream, p);
    else launch_kernel(moe_gemv_mma_kernel<kNT, kGateUp, kFmt, true, kW>, grid, kW * 32, 0, stream, p);
  };
  if constexpr (kNT == 2) {
    switch (moe_gemv_warps(int64_t{grid.x} * grid.y, current_sm_count())) {
      case 1: go.template operator()<1>(); return;
      case 2: go.template operator()<2>(); return;
      case 4: go.template operator()<4>(); return;
      default: break;
    }
  }
  go.template operator()<kMoeGemvWarps>();
}

}  // namespace

void launch_moe_gemm(const MoeGemmParams& p, MoeGemmPath path, int64_t max_tiles, cudaStream_t stream) {
  const bool gemv = path == MoeGemmPath::MmaGemv || path == MoeGemmPath::MmaGemvWide;
  check(p.w1 && (p.out || p.out_bf16) && (gemv || (p.tiles && p.n_tiles)) && (!p.tiles || p.n_tiles) &&
            (!p.gate_up || p.w3) && (!p.gather || p.perm),
        "moe gemm: null operand");
  check(!p.out_bf16 || p.a_q != nullptr, "moe gemm: bf16 outputs only from the FP8 prefill kernel");
  check(max_tiles <= 65535, [&] { return "moe gemm: " + std::to_string(max_tiles) + " tiles exceed grid.y"; });
  if (p.N == 0) return;
  if (gemv) {
    const int nt = path == MoeGemmPath::MmaGemv ? 2 : 8;
    const std::string why = moe_gemv_unsupported(p.format, p.scale_dtype, p.N, p.K);
    check(why.empty(), why);
    check(p.a_bf16 != nullptr || p.a_f32 != nullptr, "moe gemv: null A");
    check(p.a_bf16 != nullptr || reinterpret_cast<uintptr_t>(p.a_f32) % 16 == 0,
          "moe gemv: f32 A (fused quant) must be 16-byte aligned");
    check(p.tiles || (p.single_rows >= 0 && p.single_rows <= 8 * nt),
          [&] { return "moe gemv: single tile of " + std::to_string(p.single_rows) + " rows exceeds " + std::to_string(8 * nt); });
    if (p.tiles ? max_tiles == 0 : p.single_rows == 0) return;
    auto by_format = [&]<int kNT, bool kGateUp>() {
      if (p.format == MoeWeightFormat::Mxfp4) launch_gemv<kNT, kGateUp, MoeWeightFormat::Mxfp4>(p, max_tiles, stream);
      else launch_gemv<kNT, kGateUp, MoeWeightFormat::Fp8>(p, max_tiles, stream);
    };
    auto by_kind = [&]<int kNT>() {
      if (p.gate_up) by_format.template operator()<kNT, true>();
      else by_format.template operator()<kNT, false>();
    };
    if (nt == 2) by_kind.template operator()<2>();
    else by_kind.template operator()<8>();
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  if (max_tiles == 0) return;
  if (path == MoeGemmPath::Simt) {
    check(p.a_f32 != nullptr, "moe gemm: the generic path reads f32 A");
    const dim3 grid(static_cast<unsigned>((p.N + kMoeSimtBN - 1) / kMoeSimtBN), static_cast<unsigned>(max_tiles));
    if (p.gate_up) launch_kernel(moe_gemm_simt_kernel<true>, grid, kMoeSimtThreads, 0, stream, p);
    else launch_kernel(moe_gemm_simt_kernel<false>, grid, kMoeSimtThreads, 0, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  if (p.a_q != nullptr) {  // FP8 prefill kernel (moe_gemm_fp8.cuh)
    check(path == MoeGemmPath::MmaPrefill && moe_gemm_bm(path) == 128, "moe gemm: e4m3 A needs the prefill tiles");
    launch_moe_gemm_fp8(p, max_tiles, stream);
    return;
  }
  const std::string why = moe_mma_unsupported(p.format, p.scale_dtype, p.N, p.K);
  check(why.empty(), why);
  check(p.a_bf16 != nullptr, "moe gemm: the mma path reads bf16 A");
  // Prefill on Hopper wgmma (moe_gemm_wgmma.cuh) where it supports the shape; its tile list is moe_gemm_bm's.
  const bool wgmma = path == MoeGemmPath::MmaPrefill && kernel_paths().moe_wgmma;
  const int64_t variant = kernel_paths().moe_wgmma_variant;
  if (wgmma)
    check(variant == 0 || variant == 2 || variant == 3,
          [&] { return "moe wgmma: variant " + std::to_string(variant) + " is not 0, 2 or 3 (1 was removed)"; });
  if (wgmma && (variant == 3 ? moe_wgmma_rs_unsupported(p) : moe_wgmma_unsupported(p)).empty()) {
    check(moe_gemm_bm(path) == kMoeWgBM, "moe wgmma: prefill tile rows differ from the kernel's");
    auto by_format = [&]<bool kGateUp, int kVariant>() {
      constexpr MoeWeightFormat kFp4 = MoeWeightFormat::Mxfp4, kFp8 = MoeWeightFormat::Fp8;
      if (p.format == kFp4) launch_wgmma<kGateUp, kFp4, kVariant>(p, max_tiles, stream);
      else launch_wgmma<kGateUp, kFp8, kVariant>(p, max_tiles, stream);
    };
    auto by_kind = [&]<int kVariant>() {
      if (p.gate_up) by_format.template operator()<true, kVariant>();
      else by_format.template operator()<false, kVariant>();
    };
    if (variant == 0) by_kind.template operator()<0>();
    else if (variant == 2) by_kind.template operator()<2>();
    else by_kind.template operator()<3>();
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  auto by_format = [&]<int BM, int BN, int MT, int NT, bool kGateUp>() {
    if (p.format == MoeWeightFormat::Mxfp4) launch_mma<BM, BN, MT, NT, kGateUp, MoeWeightFormat::Mxfp4>(p, max_tiles, stream);
    else launch_mma<BM, BN, MT, NT, kGateUp, MoeWeightFormat::Fp8>(p, max_tiles, stream);
  };
  auto by_kind = [&]<int BM, int BN, int MT, int NT>() {
    if (p.gate_up) by_format.template operator()<BM, BN, MT, NT, true>();
    else by_format.template operator()<BM, BN, MT, NT, false>();
  };
  if (path == MoeGemmPath::MmaDecode) by_kind.template operator()<16, kMoeMmaBN, 1, 2>();
  else by_kind.template operator()<128, kMoeMmaBN, 2, 4>();
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_moe_combine(const MoeCombineParams& p, cudaStream_t stream) {
  check(p.top_k > 0 && p.top_k <= kRouteMaxTopK, [&] { return "moe combine: top_k " + std::to_string(p.top_k) + " too large"; });
  check((p.y || p.y_bf16) && p.sel && p.out, "moe combine: null operand");
  if (p.T == 0 || p.D == 0) return;
  if (p.y_bf16) {
    const int cols = kernel_paths().moe_combine_cols == 8 ? 8 : 4;
    check(p.D % cols == 0 && reinterpret_cast<uintptr_t>(p.y_bf16) % (2 * cols) == 0 &&
              reinterpret_cast<uintptr_t>(p.out) % 16 == 0,
          "moe combine: bf16 y needs D % " + std::to_string(cols) + " == 0 and aligned y and out");
    const int per_cta = cols * kCombineThreads;
    const dim3 grid(static_cast<unsigned>(p.T), static_cast<unsigned>((p.D + per_cta - 1) / per_cta));
    if (cols == 8) launch_kernel(moe_combine_bf16_kernel<8>, grid, kCombineThreads, 0, stream, p);
    else launch_kernel(moe_combine_bf16_kernel<4>, grid, kCombineThreads, 0, stream, p);
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  const dim3 grid(static_cast<unsigned>(p.T), static_cast<unsigned>((p.D + 4 * kCombineThreads - 1) / (4 * kCombineThreads)));
  launch_kernel(moe_combine_kernel, grid, kCombineThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
