// POST /v1/completions request: prompt as a string, an array of token ids, or a batch (array of strings or of
// id arrays; each prompt gives n choices, choice index = prompt index * n + k), echo, logprobs (an integer
// 0..20: the sampled token's logprob plus that many alternatives). String prompts start with BOS when the
// tokenizer's add_bos_token says so; id prompts are used as given. suffix and best_of != n are refused.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "server/common_request.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::server {

inline constexpr size_t kMaxChoicesPerRequest = 128;

struct PromptInput {
  std::optional<std::string> text;  // for string prompts (echo returns it as sent)
  std::vector<int32_t> ids;
};

struct CompletionRequest {
  CommonRequest common;
  std::vector<PromptInput> prompts;
  bool echo = false;
  std::optional<int32_t> logprobs;
};

// Tokenizes string prompts with `tok` (nullptr: only id prompts are accepted).
ApiResult<CompletionRequest> parse_completion_request(const Json& body, const RequestLimits& lim,
                                                      const tokenizer::Tokenizer* tok);

}  // namespace dsv4::server
