// Logprobs of one row: the log-softmax of the processed logits (after logit bias, penalties and temperature,
// before top-k / top-p / min-p; docs/sampling.md), for the chosen token and the top-n alternatives.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace dsv4::sampling {

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

// log(sum_i exp(logits[i])), computed in double around the maximum; logits f32 [vocab], max finite.
double log_sum_exp(std::span<const float> logits);

// The n tokens with the highest logits (ties: lower id first), in descending order, with their logprobs.
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, double lse, int32_t n);

}  // namespace dsv4::sampling
