// mHC schedules; see plan.h.
#include "backend/cuda/hc/plan.h"

#include <algorithm>

#include "backend/cuda/common/kernel_paths.h"

namespace dsv4::cuda {

HcMixPlan plan_hc_mix(int64_t T, int64_t width, int64_t n_mix, int sms) {
  HcMixPlan p;
  if (width <= 0 || width > INT32_MAX) {
    p.unsupported = "hc mix: width (hc * D) " + std::to_string(width) + " out of range";
    return p;
  }
  if (n_mix <= 0 || n_mix > 24) {
    p.unsupported = "hc mix: n_mix " + std::to_string(n_mix) + " not in [1, 24] (hc <= 4 compiled)";
    return p;
  }
  p.mix = n_mix <= 4 ? 4 : 24;
  p.vec = width % 4 == 0 ? 4 : 1;
  int lanes = 0;
  if (T <= kernel_paths().hc_tiny_max_t) {
    p.config = HcMixConfig::Tiny, lanes = 64, p.threads = 64, p.tokens_per_cta = 1;
  } else if (T <= 128) {
    p.config = HcMixConfig::Small, lanes = 64, p.threads = 64, p.tokens_per_cta = 4;
  } else {
    p.config = HcMixConfig::Large, lanes = 32, p.threads = 256, p.tokens_per_cta = 32;
  }
  p.tiles = (T + p.tokens_per_cta - 1) / p.tokens_per_cta;
  const int64_t step = static_cast<int64_t>(lanes) * p.vec;
  const int64_t n_steps = (width + step - 1) / step;
  const int64_t per_sm = std::max<int64_t>(1, kernel_paths().hc_ctas_per_sm);
  const int64_t want =
      std::max<int64_t>(1, (per_sm * sms + p.tiles - 1) / std::max<int64_t>(p.tiles, 1));
  const int64_t splits = std::clamp<int64_t>(want, 1, n_steps);
  const int64_t steps_per_split = (n_steps + splits - 1) / splits;
  p.splits = static_cast<int>((n_steps + steps_per_split - 1) / steps_per_split);
  p.k_slice = static_cast<int32_t>(steps_per_split * step);
  if (p.splits > 65535) p.unsupported = "hc mix: K splits exceed grid.y";
  return p;
}

HcRowPlan plan_hc_rows(int64_t T, int64_t D, int threads, int sms) {
  HcRowPlan p;
  p.vec = D % 4 == 0 ? 4 : 1;
  const int64_t per_cta = static_cast<int64_t>(threads) * p.vec;  // values one pass of the CTA covers
  const int64_t max_chunks = std::max<int64_t>(1, (D + per_cta - 1) / per_cta);
  const int64_t want = std::max<int64_t>(1, (2 * static_cast<int64_t>(sms) + T - 1) / std::max<int64_t>(T, 1));
  const int64_t chunks = std::min(want, max_chunks);
  const int64_t passes = (max_chunks + chunks - 1) / chunks;
  p.d_chunk = static_cast<int32_t>(passes * per_cta);
  p.chunks = static_cast<int>((D + p.d_chunk - 1) / p.d_chunk);
  return p;
}

}  // namespace dsv4::cuda
