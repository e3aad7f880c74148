// Logits processing steps 1-8 for one row (logits_processor.h). Probabilities are computed in double from
// exp(logit - max) so that filtering and sampling do not depend on the magnitude of the logits.
#include "sampling/logits_processor.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace dsv4::sampling {
namespace {

// Descending logit, lower id first among ties: a total order, so every filter is deterministic.
bool higher(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
}

float penalize(float logit, float penalty) { return logit > 0.0f ? logit / penalty : logit * penalty; }

float max_logit(std::span<const float> logits) {
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (float v : logits) {
    m = std::max(m, v);
    nan |= std::isnan(v);
  }
  check(!nan && std::isfinite(m), "sampler: logits row has NaN, +inf or no finite value");
  return m;
}

double total_weight(const std::vector<Candidate>& c) {
  double total = 0.0;
  for (const Candidate& x : c) total += x.prob;
  return total;
}

// c[i].prob holds the unnormalized weight exp(logit - max). Sorting the whole vocabulary per step is the
// cost of top-p, so the descending order is built incrementally: partial-sort a prefix, and only widen it
// (x4) when the nucleus is not complete inside it. The kept set equals that of a full sort.
void keep_top_p(std::vector<Candidate>& c, float top_p, bool sorted) {
  const double limit = static_cast<double>(top_p) * total_weight(c);
  double before = 0.0;
  size_t n = 0;
  size_t n_sorted = sorted ? c.size() : std::min<size_t>(64, c.size());
  for (;;) {
    if (!sorted) std::partial_sort(c.begin() + static_cast<ptrdiff_t>(n), c.begin() + static_cast<ptrdiff_t>(n_sorted),
                                   c.end(), higher);
    while (n < n_sorted && before < limit) before += c[n++].prob;
    if (before >= limit || n_sorted == c.size()) break;
    n_sorted = std::min(c.size(), n_sorted * 4);
  }
  c.resize(n);
}

}  // namespace

void apply_logit_bias(std::span<float> logits, const std::map<int32_t, float>& bias) {
  for (const auto& [id, b] : bias) logits[static_cast<size_t>(id)] += b;
}

void apply_repetition_penalty(std::span<float> logits, float penalty, const SamplingState& state) {
  if (penalty == 1.0f) return;
  for (int32_t id : state.prompt_tokens()) logits[static_cast<size_t>(id)] = penalize(logits[id], penalty);
  for (const auto& [id, count] : state.output_counts()) {
    if (state.in_prompt(id)) continue;  // already penalized once
    logits[static_cast<size_t>(id)] = penalize(logits[id], penalty);
  }
}

void apply_presence_frequency(std::span<float> logits, float presence, float frequency,
                              const SamplingState& state) {
  if (presence == 0.0f && frequency == 0.0f) return;
  for (const auto& [id, count] : state.output_counts())
    logits[static_cast<size_t>(id)] -= frequency * static_cast<float>(count) + presence;
}

void process_logits(std::span<float> logits, const SamplingParams& p, const SamplingState& state) {
  apply_logit_bias(logits, p.logit_bias);
  apply_repetition_penalty(logits, p.repetition_penalty, state);
  apply_presence_frequency(logits, p.presence_penalty, p.frequency_penalty, state);
  if (is_greedy(p) || p.temperature == 1.0f) return;
  const float inv_t = 1.0f / p.temperature;
  for (float& v : logits) v *= inv_t;
}

void filter_candidates(std::span<const float> logits, const SamplingParams& p, std::vector<Candidate>& out) {
  const float lmax = max_logit(logits);
  out.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    if (l > -std::numeric_limits<float>::infinity())
      out.push_back({static_cast<int32_t>(i), l, std::exp(static_cast<double>(l) - lmax)});
  }
  bool sorted = false;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < out.size()) {
    std::partial_sort(out.begin(), out.begin() + p.top_k, out.end(), higher);
    out.resize(static_cast<size_t>(p.top_k));
    sorted = true;
  }
  if (p.top_p < 1.0f) keep_top_p(out, p.top_p, sorted);
  if (p.min_p > 0.0f) {
    const double min_p = p.min_p;  // the maximum has weight exactly 1
    std::erase_if(out, [&](const Candidate& c) { return c.prob < min_p; });
  }
  const double total = total_weight(out);
  for (Candidate& c : out) c.prob /= total;
}

int32_t pick_candidate(std::span<const Candidate> candidates, double u) {
  check(!candidates.empty(), "pick_candidate: no candidates");
  double cum = 0.0;
  for (const Candidate& c : candidates) {
    cum += c.prob;
    if (u < cum) return c.token;
  }
  // u within rounding of the total: the last candidate that can be drawn at all.
  for (size_t i = candidates.size(); i-- > 0;)
    if (candidates[i].prob > 0.0) return candidates[i].token;
  return candidates.front().token;
}

int32_t argmax(std::span<const float> logits) {
  check(!logits.empty(), "argmax: empty row");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  check(std::isfinite(logits[best]), "sampler: logits row has no finite maximum");
  return static_cast<int32_t>(best);
}

}  // namespace dsv4::sampling
