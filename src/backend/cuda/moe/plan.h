// Schedule constants of the MoE kernels shared by host and device code.
// mxfp4_gemv_kernel: a CTA of kMxfp4Warps warps covers kMxfp4RowsPerCta weight rows of one slot; a lane reads
// one whole 32-element block (16 bytes + its scale byte) per 1024-wide K chunk, so K must be a multiple of 1024.
#pragma once
#include <cstdint>
#include <string>

namespace dsv4::cuda {

inline constexpr int kMxfp4Warps = 8;
inline constexpr int kMxfp4RowsPerWarp = 4;
inline constexpr int kMxfp4RowsPerCta = kMxfp4Warps * kMxfp4RowsPerWarp;
inline constexpr int kMxfp4MaxK = 8192;

// Empty when supported, else a message naming the dimension.
std::string mxfp4_gemv_unsupported(int64_t N, int64_t K);

}  // namespace dsv4::cuda
