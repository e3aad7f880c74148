// Log-softmax and top-n selection (logprobs.h). Top-n keeps a small sorted array (n <= 20), one pass over
// the vocabulary, no allocation proportional to it.
#include "sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace dsv4::sampling {

double log_sum_exp(std::span<const float> logits) {
  float m = -std::numeric_limits<float>::infinity();
  for (float v : logits) m = std::max(m, v);
  check(std::isfinite(m), "log_sum_exp: logits row has no finite maximum");
  double s = 0.0;
  for (float v : logits) s += std::exp(static_cast<double>(v) - m);
  return m + std::log(s);
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, double lse, int32_t n) {
  const size_t k = std::min(static_cast<size_t>(std::max(n, 0)), logits.size());
  std::vector<int32_t> best;  // ids, descending logit, lower id first among ties
  best.reserve(k + 1);
  for (size_t i = 0; i < logits.size() && k > 0; ++i) {
    const float v = logits[i];
    if (best.size() == k && !(v > logits[static_cast<size_t>(best.back())])) continue;
    auto pos = std::upper_bound(best.begin(), best.end(), v,
                                [&](float x, int32_t id) { return x > logits[static_cast<size_t>(id)]; });
    best.insert(pos, static_cast<int32_t>(i));
    if (best.size() > k) best.pop_back();
  }
  std::vector<TokenLogprob> out;
  out.reserve(best.size());
  for (int32_t id : best)
    out.push_back({id, static_cast<float>(static_cast<double>(logits[static_cast<size_t>(id)]) - lse)});
  return out;
}

}  // namespace dsv4::sampling
