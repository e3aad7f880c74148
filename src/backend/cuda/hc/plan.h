// Launch schedules of the mHC kernels (host-side heuristics, kept out of the kernels).
// hc_mix_kernel is a skinny GEMV/GEMM [T, hc*D] x [hc*D, n_mix] on f32 CUDA cores. A thread owns kTpt tokens
// and one K lane (a float4 of the row per step); kLanes threads of a group split K and are reduced by warp
// shuffles, kGroups groups share a CTA (kTpt * kGroups tokens per CTA, fn tiles reused through L1). Three
// compiled configurations: T <= kernel_paths().hc_tiny_max_t (default 8; 1 token per CTA), T <= 128 (4 tokens
// per CTA), larger T (32 tokens per CTA, fn read once per 32 tokens). The K range is split over grid.y so small
// T still fills the GPU.
// hc_finish_kernel / hc_post_kernel: grid (T, D chunks); the chunks per token shrink as T grows.
#pragma once
#include <cstdint>
#include <string>

namespace dsv4::cuda {

inline constexpr int kHcMaxHc = 4;        // compiled hc values: 1..4 (n_mix <= 24)
inline constexpr int kHcFinishThreads = 256;
inline constexpr int kHcFinishStageSplits = 256;  // K-split partials hc_finish_kernel stages in shared memory
inline constexpr int kHcPostThreads = 256;
// hc_fused_kernel: T <= kHcFusedMaxT (the Tiny/Small mix configurations: 64-lane groups); a CTA is
// kHcFusedGroups groups (one K split each) plus one tail warp per token of the tile.
inline constexpr int kHcFusedMaxT = 64;
inline constexpr int kHcFusedGroups = 4;
inline constexpr int kHcFusedLanes = 64;
inline constexpr int kHcFusedStageSplits = 64;  // K-split partials the last CTA stages in shared memory
inline constexpr int kHcFusedMaxTiles = kHcFusedMaxT;  // counters in the workspace

enum class HcMixConfig : uint8_t { Tiny, Small, Large };

struct HcMixPlan {
  HcMixConfig config = HcMixConfig::Tiny;
  int mix = 0;        // compiled n_mix bound: 4 or 24
  int vec = 1;        // 4 when width % 4 == 0 (float4 loads), else 1
  int threads = 0;    // CTA size
  int tokens_per_cta = 0;
  int64_t tiles = 0;  // grid.x
  int splits = 0;     // grid.y
  int32_t k_slice = 0;
  std::string unsupported;  // non-empty: why this shape cannot run (names the dimension)
};

HcMixPlan plan_hc_mix(int64_t T, int64_t width, int64_t n_mix, int sms);

struct HcRowPlan {
  int vec = 1;          // 4 when D % 4 == 0
  int32_t d_chunk = 0;  // D values per CTA
  int chunks = 0;       // grid.y
};

// Row kernels (finish, post): enough CTAs for ~2 waves, at least one vector per thread per CTA.
HcRowPlan plan_hc_rows(int64_t T, int64_t D, int threads, int sms);

}  // namespace dsv4::cuda
