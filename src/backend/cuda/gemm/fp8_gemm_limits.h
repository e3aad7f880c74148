// Compile-time limits of fp8_gemm_mma_kernel shared by the kernel (.cuh) and the host-side plan (plan.cpp is
// compiled by the host compiler and cannot include the kernel header).
#pragma once

namespace dsv4::cuda {

inline constexpr int kMmaRowsPerCta = 16;  // weight rows per CTA (the MMA M dimension)
inline constexpr int kMmaMaxWarps = 16;    // K splits per CTA

// Warps per CTA a token-tile count allows: at 4+ tiles the accumulators need more than the 128 registers a
// 512-thread CTA leaves per thread, so those instances are compiled for 256 threads (no spills).
constexpr int mma_max_warps(int tok_tiles) { return tok_tiles >= 4 ? 8 : kMmaMaxWarps; }

}  // namespace dsv4::cuda
