// The request fields shared by /v1/chat/completions and /v1/completions: model, n, stream and
// stream_options, max_tokens, and the sampling parameters (OpenAI's plus vLLM's extensions top_k, min_p,
// repetition_penalty, stop_token_ids, ignore_eos, skip_special_tokens). Each is checked for type and range
// here, with the parameter named in the error; sampling::validate() runs last as the engine's own check.
// Logprobs differ between the two endpoints and are parsed by each.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sampling/sampling_params.h"
#include "server/json_fields.h"

namespace dsv4::server {

struct RequestLimits {
  std::vector<std::string> model_names;  // served names; a request may omit `model`
  int32_t vocab_size = 0;
  int max_n = 16;  // choices per request
};

struct CommonRequest {
  std::string model;                 // the served name asked for (the first one when omitted)
  sampling::SamplingParams params;   // max_tokens is set once the prompt length is known
  std::optional<int64_t> max_tokens;  // max_completion_tokens, else max_tokens
  int n = 1;
  bool stream = false;
  bool include_usage = false;        // stream_options.include_usage
  bool skip_special_tokens = true;
};

ApiStatus parse_common(const Json& body, const RequestLimits& lim, CommonRequest& out);

// The max_tokens of a prompt: the request's, else the fallback; kContextLengthExceeded when the prompt
// (+ max_tokens) does not fit in max_model_len.
struct PromptBudget {
  int64_t prompt_len = 0;
  int64_t max_model_len = 0;
  int64_t fallback = 0;              // max_tokens when the request has none; 0 = all the room left
  std::string prompt_param = "messages";  // the field named when the prompt alone is too long
};
ApiResult<int32_t> resolve_max_tokens(const CommonRequest& r, const PromptBudget& b);

}  // namespace dsv4::server
