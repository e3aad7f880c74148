// Compile-time limits of fp8_gemm_mma_kernel shared by the kernel (.cuh) and the host-side plan (plan.cpp is
// compiled by the host compiler and cannot include the kernel header).
#pragma once
#include <cstddef>

namespace dsv4::cuda {

inline constexpr int kMmaRowsPerCta = 16;  // weight rows per CTA (the MMA M dimension)
inline constexpr int kMmaMaxWarps = 16;    // K splits per CTA

// Warps per CTA a token-tile count allows: at 4+ tiles the accumulators need more than the 128 registers a
// 512-thread CTA leaves per thread, so those instances are compiled for 256 threads (no spills).
constexpr int mma_max_warps(int tok_tiles) { return tok_tiles >= 4 ? 8 : kMmaMaxWarps; }

// fp8_decode_kernel (fused act_quant + decode FP8 linear): tokens per launch, threads per CTA, and the shared
// memory budget of its activation codes (M x kb_per_cta x 128 bytes).
inline constexpr int kFp8DecodeMaxM = 64;
inline constexpr int kFp8DecodeWarps = 8;
inline constexpr int kFp8DecodeMaxCluster = 8;
inline constexpr size_t kFp8DecodeMaxSmem = 200 * 1024;

// fp8_gemv_kernel: rows per CTA, threads per CTA (each thread 16 K-elements: K <= 16 * kFp8GemvThreads).
inline constexpr int kFp8GemvRows = 8;
inline constexpr int kFp8GemvThreads = 256;

#if defined(__CUDACC__)
#define DSV4_FP8_DECODE_HD __host__ __device__
#else
#define DSV4_FP8_DECODE_HD
#endif

// Shared-memory layout of fp8_decode_kernel (bytes), shared by the kernel and the host schedule:
//   [0, codes)          e4m3 activation codes [M, ldq], ldq = kb_per_cta*128 + 16 (padding: no bank conflicts)
//   [scales, +kpc*M*4)  f32 act scales [kb_per_cta, M]
//   red (aliases the two above once the MMAs are done): f32 [8 warps, 16, cols + 1] per-warp partials
//   [cta, +16*row_warps*M*4) f32 CTA partial [M, 16*row_warps], read by the cluster's other CTAs
struct Fp8DecodeSmem {
  int ldq = 0;
  size_t scales = 0, cta = 0, total = 0;
  DSV4_FP8_DECODE_HD static size_t align16(size_t v) { return (v + 15) / 16 * 16; }
  DSV4_FP8_DECODE_HD Fp8DecodeSmem(int M, int kb_per_cta, int row_warps, int tok_tiles) {
    ldq = kb_per_cta * 128 + 16;
    scales = align16(static_cast<size_t>(M) * ldq);
    const size_t a = scales + static_cast<size_t>(kb_per_cta) * M * 4;
    const size_t red = static_cast<size_t>(kFp8DecodeWarps) * 16 * (8 * tok_tiles + 1) * 4;
    cta = align16(a > red ? a : red);
    total = cta + static_cast<size_t>(16) * row_warps * M * 4;
  }
};

}  // namespace dsv4::cuda
