// SamplingState: token history of one request (sampling_state.h).
#include "sampling/sampling_state.h"

#include <algorithm>

#include "core/check.h"

namespace dsv4::sampling {

SamplingState::SamplingState(const SamplingParams& p, std::span<const int32_t> prompt, uint64_t seed)
    : seed_(seed) {
  if (p.repetition_penalty == 1.0f) return;
  prompt_tokens_.assign(prompt.begin(), prompt.end());
  std::sort(prompt_tokens_.begin(), prompt_tokens_.end());
  prompt_tokens_.erase(std::unique(prompt_tokens_.begin(), prompt_tokens_.end()), prompt_tokens_.end());
  check(prompt_tokens_.empty() || prompt_tokens_.front() >= 0, "SamplingState: negative prompt token id");
}

void SamplingState::append(int32_t token) {
  check(token >= 0, "SamplingState::append: negative token id");
  ++output_counts_[token];
  ++n_output_;
}

bool SamplingState::in_prompt(int32_t token) const {
  return std::binary_search(prompt_tokens_.begin(), prompt_tokens_.end(), token);
}

}  // namespace dsv4::sampling
