// Logits processing for one row, in vLLM's order (docs/sampling.md):
//   1 logit bias   2 repetition penalty   3 presence / frequency penalties   4 temperature
//   5 top-k        6 top-p                7 min-p                             8 sample
// Steps 1-4 rewrite the row in place (process_logits); the result is the "processed" logits that logprobs are
// reported from. Steps 5-7 do not touch the row: filter_candidates() returns the surviving tokens with their
// probabilities renormalized over the survivors, which is exactly the distribution step 8 draws from.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "sampling/sampling_params.h"
#include "sampling/sampling_state.h"

namespace dsv4::sampling {

// logits f32 [vocab]; ids in bias are < vocab (validate()).
void apply_logit_bias(std::span<float> logits, const std::map<int32_t, float>& bias);

// Tokens seen in the prompt or the output: a positive logit is divided by penalty, a negative one multiplied
// (CTRL / vLLM), so penalty > 1 always makes a seen token less likely. Each seen token is penalized once.
void apply_repetition_penalty(std::span<float> logits, float penalty, const SamplingState& state);

// Output tokens only (OpenAI): logit -= frequency * count + presence * (count > 0).
void apply_presence_frequency(std::span<float> logits, float presence, float frequency,
                              const SamplingState& state);

// Steps 1-4. Temperature divides every logit, except for greedy requests (is_greedy), which keep the scale.
void process_logits(std::span<float> logits, const SamplingParams& p, const SamplingState& state);

struct Candidate {
  int32_t token = 0;
  float logit = 0.0f;  // processed logit
  double prob = 0.0;   // renormalized over the candidates that survived; sums to 1
};

// Steps 5-7 on processed logits f32 [vocab] (no NaN or +inf, some value finite: checked).
// top-k keeps the k highest logits (ties: lower id first); top-p keeps the shortest prefix of the descending
// order whose probability mass reaches top_p (a token is kept when the mass strictly before it is < top_p);
// min-p keeps tokens whose probability is at least min_p times the largest. Tokens at -inf never survive.
// Candidates are in descending-probability order when top-k or top-p ran, else in token-id order.
// `out` is reused to avoid reallocating per step.
void filter_candidates(std::span<const float> logits, const SamplingParams& p, std::vector<Candidate>& out);

// Step 8: the candidate whose cumulative-probability interval contains u in [0, 1).
int32_t pick_candidate(std::span<const Candidate> candidates, double u);

// Index of the largest logit, the lowest id among ties.
int32_t argmax(std::span<const float> logits);

}  // namespace dsv4::sampling
