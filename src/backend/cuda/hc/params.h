// Parameter structs of the mHC kernel family (spec §4). One struct per kernel, passed as
// `const __grid_constant__`; every pointer is __restrict__ and carries its dtype and shape.
// hc_pre / hc_head run in two kernels: hc_mix_kernel (the skinny GEMV fn · v and Σ v², split over K) and
// hc_finish_kernel (partials summed in a fixed order, rho, sigmoids, Sinkhorn, collapse of the streams).
#pragma once
#include <cstdint>

namespace dsv4::cuda {

// Partial mixing logits of the flattened streams: for split s (K range [s*k_slice, (s+1)*k_slice)),
// part_mu[s, t, o] = Σ_k fn[o, k] · x[t, k] and part_ss[s, t] = Σ_k x[t, k]² (f64).
struct HcMixParams {
  const float* __restrict__ x = nullptr;   // f32 [T, width], width = hc * D, stream-major
  const float* __restrict__ fn = nullptr;  // f32 [n_mix, width]
  float* __restrict__ part_mu = nullptr;   // f32 [splits, T, n_mix]
  double* __restrict__ part_ss = nullptr;  // f64 [splits, T]
  int64_t T = 0;
  int32_t width = 0;
  int32_t n_mix = 0;    // (2 + hc) * hc for hc_pre, hc for hc_head; at most the compiled kMix
  int32_t k_slice = 0;  // K elements per split (grid.y = splits); a multiple of the CTA's K step
};

// Per token: mu = (Σ_s part_mu[s]) · rho, rho = 1 / sqrt(Σ_s part_ss[s] / width + norm_eps);
// pre_j = sigmoid(mu_j · scale[0] + base_j) + hc_eps; with post/comb (hc_pre): post_j = 2 sigmoid(..scale[1]..),
// comb = Sinkhorn(mu[2hc..] · scale[2] + base[2hc..]); y[t, c] = round(Σ_j pre_j · x[t, j, c]).
// grid = (T, D chunks of d_chunk values); every chunk recomputes the tiny per-token math, chunk 0 writes
// post and comb.
struct HcFinishParams {
  const float* __restrict__ x = nullptr;         // f32 [T, hc, D]
  const float* __restrict__ part_mu = nullptr;   // f32 [splits, T, n_mix]
  const double* __restrict__ part_ss = nullptr;  // f64 [splits, T]
  const float* __restrict__ base = nullptr;      // f32 [n_mix]
  const float* __restrict__ scale = nullptr;     // f32 [3] (hc_pre) or [1] (hc_head)
  float* __restrict__ y = nullptr;               // f32 [T, D]
  float* __restrict__ post = nullptr;            // f32 [T, hc]; nullptr for hc_head
  float* __restrict__ comb = nullptr;            // f32 [T, hc, hc]; nullptr for hc_head
  int64_t T = 0;
  int32_t D = 0;
  int32_t splits = 0;
  int32_t d_chunk = 0;  // D values per CTA (grid.y = ceil(D / d_chunk)), a multiple of the vector width
  int32_t sinkhorn_iters = 0;
  float hc_eps = 1e-6f;
  float norm_eps = 1e-6f;
  bool round_bf16 = false;
};

// hc_pre / hc_head at small T in one kernel (hc_fused_kernel): grid (token tiles of kTpt tokens, split groups);
// a CTA computes the partials of kHcFusedGroups K splits of its tile (the same splits, lanes and summation order
// as hc_mix_kernel, so the partials are bitwise those of the two-kernel path), writes them to part_mu/part_ss,
// and takes a ticket on counters[tile]; the last CTA of the tile resets the counter and runs hc_finish_kernel's
// tail for the tile's tokens (same order: partials summed in split order, Sinkhorn one element per lane) and the
// collapse of the streams over all of D.
struct HcFusedParams {
  const float* __restrict__ x = nullptr;      // f32 [T, hc, D]
  const float* __restrict__ fn = nullptr;     // f32 [n_mix, hc * D]
  const float* __restrict__ base = nullptr;   // f32 [n_mix]
  const float* __restrict__ scale = nullptr;  // f32 [3] (hc_pre) or [1] (hc_head)
  float* __restrict__ y = nullptr;            // f32 [T, D]
  float* __restrict__ post = nullptr;         // f32 [T, hc]; nullptr for hc_head
  float* __restrict__ comb = nullptr;         // f32 [T, hc, hc]; nullptr for hc_head
  float* part_mu = nullptr;                   // f32 [splits, T, n_mix] workspace (written, then read by the last CTA)
  double* part_ss = nullptr;                  // f64 [splits, T]
  unsigned* counters = nullptr;               // [tiles], zero before the launch; the kernel leaves them zero
  int64_t T = 0;
  int32_t width = 0;  // hc * D
  int32_t D = 0;
  int32_t n_mix = 0;
  int32_t k_slice = 0;
  int32_t splits = 0;
  int32_t sinkhorn_iters = 0;
  float hc_eps = 1e-6f;
  float norm_eps = 1e-6f;
  bool round_bf16 = false;
  // hc_pre_norm: RMSNorm of each collapsed row y (weight out_norm_w [D]) by the mix threads of the last CTA,
  // rms_norm_f32_kernel<256, *>'s arithmetic (needs D % 4 == 0, 512 < D <= 8192, kVec = 4).
  const float* __restrict__ out_norm_w = nullptr;
  float out_norm_eps = 0.0f;
  bool out_norm = false;
  // With out_norm at D <= 4096: the norm takes the collapsed values from registers (hc_fused_collapse_norm), else
  // the collapse writes y and the norm reads it back (KernelPaths::hc_collapse_norm; bitwise the same).
  bool collapse_norm = true;
};

// hc_post (spec §4.2): out[t, k, c] = round(post[t, k] · a[t, c] + Σ_j comb[t, j, k] · R[t, j, c]), the sum
// over j ascending, separate f32 multiply and add (the CPU reference's order). grid = (T, D chunks).
struct HcPostParams {
  const float* __restrict__ a = nullptr;     // f32 [T, D]
  const float* __restrict__ R = nullptr;     // f32 [T, hc, D]
  const float* __restrict__ post = nullptr;  // f32 [T, hc]
  const float* __restrict__ comb = nullptr;  // f32 [T, hc, hc]
  float* __restrict__ out = nullptr;         // f32 [T, hc, D]; must not alias a or R
  int64_t T = 0;
  int32_t D = 0;
  int32_t d_chunk = 0;
  bool round_bf16 = false;
};

}  // namespace dsv4::cuda
