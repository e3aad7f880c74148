// YaRN frequency blend of the reference (spec §2.8, §13.3), computed in f32 like the reference.
#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace dsv4::model {

backend::RopeTable make_rope_table(int64_t rope_dim, double base, const YarnScaling* yarn) {
  backend::RopeTable t;
  int64_t half = rope_dim / 2;
  t.freqs.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    float expo = static_cast<float>(2 * i) / static_cast<float>(rope_dim);
    t.freqs[i] = 1.0f / std::pow(static_cast<float>(base), expo);
  }
  if (yarn && yarn->enabled) {
    auto corr = [&](double beta) {
      return static_cast<double>(rope_dim) *
             std::log(static_cast<double>(yarn->original_max_position) / (beta * 2.0 * std::numbers::pi)) /
             (2.0 * std::log(base));
    };
    double lo = std::max(std::floor(corr(yarn->beta_fast)), 0.0);
    double hi = std::min(std::ceil(corr(yarn->beta_slow)), static_cast<double>(rope_dim - 1));
    if (lo == hi) hi += 0.001;
    for (int64_t i = 0; i < half; ++i) {
      float ramp = std::clamp(static_cast<float>((static_cast<double>(i) - lo) / (hi - lo)), 0.0f, 1.0f);
      float smooth = 1.0f - ramp;
      float th = t.freqs[i];
      t.freqs[i] = th / static_cast<float>(yarn->factor) * (1.0f - smooth) + th * smooth;
    }
  }
  return t;
}

backend::RopeTable layer_rope_table(const ModelConfig& cfg, int64_t il) {
  if (cfg.compress_ratio(il) == 0) return make_rope_table(cfg.qk_rope_head_dim, cfg.rope_theta, nullptr);
  return make_rope_table(cfg.qk_rope_head_dim, cfg.compress_rope_theta, &cfg.rope_scaling);
}

}  // namespace dsv4::model
