// POST /v1/chat/completions request -> the messages and options the DeepSeek-V4 chat encoding takes.
// Messages are checked role by role (system, developer, user, assistant with tool_calls and reasoning_content,
// tool) and rebuilt with only the fields the encoding reads, so unknown fields are ignored and cannot reach
// it. V4 carries tools and response_format on a message: they are attached to the first system message (one
// with empty content is inserted when there is none). tool_choice "none" leaves the tools out; "auto",
// "required" and a named function render them (the choice itself is not enforced by decoding).
// Thinking: `thinking` ({"type": "enabled"|"disabled"} or a boolean), else chat_template_kwargs.thinking /
// enable_thinking, else on when reasoning_effort is given; reasoning_effort (top level or in
// chat_template_kwargs) "low", "medium", "high" -> default effort, "max" -> the max-effort prefix.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "server/common_request.h"
#include "tokenizer/chat_encoding.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::server {

// Caps that keep rendering linear-time work bounded (the reference encoding is quadratic in messages).
inline constexpr size_t kMaxMessages = 4096;
inline constexpr size_t kMaxTools = 1024;

struct ChatRequest {
  CommonRequest common;
  Json messages = Json::array();  // normalized, tools / response_format attached
  tokenizer::ChatEncodeOptions encode;
  bool logprobs = false;
  int32_t top_logprobs = 0;
  size_t n_tools = 0;
};

ApiResult<ChatRequest> parse_chat_request(const Json& body, const RequestLimits& lim);

// The prompt token ids of a chat request (BOS included); errors name `messages`.
ApiResult<std::vector<int32_t>> render_chat_prompt(const ChatRequest& req, const tokenizer::Tokenizer& tok,
                                                   std::string* text = nullptr);

}  // namespace dsv4::server
