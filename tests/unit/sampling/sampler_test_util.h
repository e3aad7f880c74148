// Helpers shared by the sampler tests: a fake model (deterministic logits per request and step), a batch
// builder, a multi-step runner that appends the sampled tokens, and a draw histogram for one fixed row.
#pragma once
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "sampling/sampler.h"

namespace dsv4::sampling::sampling_test {

// One request's sampling side, and the logits a fake model produces for it at each step.
struct Req {
  SamplingParams params;
  SamplingState state;
  uint64_t salt;  // selects the fake logits
  Req(SamplingParams p, uint64_t seed, uint64_t salt_)
      : params(std::move(p)), state(params, std::vector<int32_t>{1, 2, 3}, seed), salt(salt_) {}
};

inline std::vector<float> fake_logits(uint64_t salt, int64_t step, int64_t vocab) {
  std::vector<float> l(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i)
    l[static_cast<size_t>(i)] = 2.0f * std::sin(0.37f * static_cast<float>(salt) + 1.3f * static_cast<float>(i) +
                                                0.71f * static_cast<float>(step));
  return l;
}

inline std::vector<SampleResult> sample_rows(const Sampler& s, const std::vector<std::vector<float>>& rows,
                                      const std::vector<SampleRow>& meta) {
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  const TensorView t{flat.data(), DType::F32, {static_cast<int64_t>(rows.size()), s.vocab_size()}};
  return s.sample({t, meta});
}

// Runs the requests together for n_steps; returns each request's generated tokens.
inline std::vector<std::vector<int32_t>> run(std::vector<Req*> reqs, int64_t vocab, int n_steps) {
  const Sampler sampler(vocab);
  std::vector<std::vector<int32_t>> out(reqs.size());
  for (int step = 0; step < n_steps; ++step) {
    std::vector<std::vector<float>> rows;
    std::vector<SampleRow> meta;
    for (Req* r : reqs) {
      rows.push_back(fake_logits(r->salt, r->state.n_output(), vocab));
      meta.push_back({&r->params, &r->state});
    }
    const auto res = sample_rows(sampler, rows, meta);
    for (size_t i = 0; i < reqs.size(); ++i) {
      out[i].push_back(res[i].token);
      reqs[i]->state.append(res[i].token);
    }
  }
  return out;
}

// Draws n tokens from one fixed row (the state's history only advances the RNG step: no penalties set).
inline std::vector<int64_t> histogram(const std::vector<float>& row, const SamplingParams& p, uint64_t seed, int n) {
  const Sampler sampler(static_cast<int64_t>(row.size()));
  SamplingState st(p, {}, seed);
  std::vector<int64_t> counts(row.size(), 0);
  for (int i = 0; i < n; ++i) {
    const int32_t t = sample_rows(sampler, {row}, {{&p, &st}})[0].token;
    ++counts[static_cast<size_t>(t)];
    st.append(t);
  }
  return counts;
}

}  // namespace dsv4::sampling::sampling_test
