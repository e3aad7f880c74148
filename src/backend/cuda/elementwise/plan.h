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


// f32 RMSNorm: dim % 4 == 0 and dim <= 8192 keep the segment in registers (float4 chunks); a segment is owned
// by a warp (dim <= 512: many short segments such as per-head norms) or by a CTA of 256 threads. Other dims
// take the generic kernel (one CTA per segment, two passes over the segment).
inline constexpr int kRmsNormF32Threads = 256;
struct RmsNormF32Plan {
  int group = 0;   // threads per segment: 32 or 256; 0 = generic kernel
  int chunks = 0;  // float4 chunks per thread: 1, 2, 4 or 8
};
RmsNormF32Plan plan_rms_norm_f32(int64_t dim);

// Flat grid-stride launches of the f32 maps and row copies: blocks for about 4 waves, at most this many.
inline constexpr int kF32MapThreads = 256;
int plan_flat_blocks(int64_t work_items, int sms);

}  // namespace dsv4::cuda
