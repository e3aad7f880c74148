// SamplingState: what the sampler remembers about one request between steps: its resolved seed, the distinct
// prompt token ids (kept only when the repetition penalty is on, since nothing else reads them) and the count of
// each generated token. The sampler only reads it; the engine calls append() once per committed token, so
// n_output() is also the RNG step of the next draw (a recomputed or preempted request redraws the same tokens).
#pragma once
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "sampling/sampling_params.h"

namespace dsv4::sampling {

class SamplingState {
 public:
  // prompt: the request's prompt token ids; seed: resolve_seed(p), or a fixed one in tests.
  SamplingState(const SamplingParams& p, std::span<const int32_t> prompt, uint64_t seed);

  void append(int32_t token);  // a generated token was committed

  uint64_t seed() const { return seed_; }
  int64_t n_output() const { return n_output_; }
  // Generated token id -> how often it was generated.
  const std::unordered_map<int32_t, int32_t>& output_counts() const { return output_counts_; }
  // Distinct prompt ids, sorted; empty when p.repetition_penalty == 1.
  const std::vector<int32_t>& prompt_tokens() const { return prompt_tokens_; }
  bool in_prompt(int32_t token) const;

 private:
  uint64_t seed_;
  int64_t n_output_ = 0;
  std::unordered_map<int32_t, int32_t> output_counts_;
  std::vector<int32_t> prompt_tokens_;
};

}  // namespace dsv4::sampling
