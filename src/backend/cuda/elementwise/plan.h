// Launch schedule of the elementwise kernels (host-side heuristics, kept out of the kernels).
// RMSNorm: one CTA of kRmsNormThreads per row; each thread keeps `chunks` 16-byte chunks (8 bf16) of its row
// in registers between the sum of squares and the write, so a row is read from memory once.
#pragma once
#include <cstdint>
#include <string>

namespace dsv4::cuda {

inline constexpr int kRmsNormThreads = 128;
inline constexpr int kRmsNormMaxChunks = 8;
inline constexpr int kRmsNormMaxDim = kRmsNormThreads * kRmsNormMaxChunks * 8;  // 8192

struct RmsNormPlan {
  int chunks = 0;  // 16-byte chunks per thread: a compile-time instance of 1, 2, 4 or 8
  std::string unsupported;  // non-empty: why this shape cannot run (names the dimension)
};

RmsNormPlan plan_rms_norm(int64_t dim);

}  // namespace dsv4::cuda
