// SamplingParams: the per-request sampling and stopping parameters of the OpenAI / vLLM APIs as plain data,
// and validate(), which checks every field against its allowed range before a request enters the engine.
// After validate() succeeds, the sampler and the stop checker assume the ranges written next to each field.
// The processing order and the logprob convention are described in docs/sampling.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace dsv4::sampling {

// A temperature below this samples greedily (argmax), like vLLM's _SAMPLING_EPS: dividing by a smaller
// value only risks overflow, and the distribution is already a point mass for any realistic logit gap.
inline constexpr float kGreedyTemperature = 1e-5f;
inline constexpr int32_t kMaxTopLogprobs = 20;        // OpenAI top_logprobs limit
inline constexpr size_t kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 256;
inline constexpr size_t kMaxStopTokenIds = 256;
inline constexpr size_t kMaxLogitBiasEntries = 1024;
inline constexpr float kMaxAbsLogitBias = 100.0f;     // OpenAI range [-100, 100]
inline constexpr float kMaxAbsPresenceFrequency = 2.0f;  // OpenAI range [-2, 2]

struct SamplingParams {
  float temperature = 1.0f;         // >= 0; below kGreedyTemperature (0 included) = greedy argmax
  float top_p = 1.0f;               // (0, 1]; 1 = off
  int32_t top_k = 0;                // >= -1; 0 and -1 = off; >= vocab = off
  float min_p = 0.0f;               // [0, 1]; 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off; applies to tokens of the prompt and the output
  float presence_penalty = 0.0f;    // [-2, 2]; 0 = off; output tokens only
  float frequency_penalty = 0.0f;   // [-2, 2]; 0 = off; output tokens only
  std::map<int32_t, float> logit_bias;  // token id in [0, vocab) -> bias in [-100, 100], added to the raw logit
  int32_t max_tokens = 16;          // >= 1 generated tokens (vLLM's default); the server sets it from context
  std::vector<int32_t> stop_token_ids;  // ids in [0, vocab); honoured even with ignore_eos
  std::vector<std::string> stop;    // stop strings: non-empty, <= kMaxStopStrings, each <= kMaxStopStringBytes
  bool ignore_eos = false;          // keep generating past the model's EOS ids
  std::optional<int32_t> logprobs;  // none = no logprobs; n in [0, 20] = the chosen token's logprob + top n
  std::optional<uint64_t> seed;     // none = a fresh random seed per request (resolve_seed)
};

inline bool is_greedy(const SamplingParams& p) { return p.temperature < kGreedyTemperature; }

// Checks every field of p; the error names the parameter, its value and the allowed range.
Status validate(const SamplingParams& p, int64_t vocab_size);

// The seed a request samples with: p.seed, or a non-deterministic one when it has none.
uint64_t resolve_seed(const SamplingParams& p);

}  // namespace dsv4::sampling
