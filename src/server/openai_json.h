// Building blocks of the OpenAI response objects shared by the endpoints: ids, usage, token logprobs in the
// chat format ({"token", "logprob", "bytes", "top_logprobs"}) and the legacy completions format
// ({"tokens", "token_logprobs", "top_logprobs", "text_offset"}), and SSE framing. Token strings are the
// token's bytes (invalid UTF-8 from partial byte tokens is replaced when serialised; "bytes" keeps them).
#pragma once
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

#include "runtime/events.h"
#include "server/json_fields.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::server {

// Random ids such as "chatcmpl-3f9c..." and "call_a81b..."; thread-safe.
class IdGenerator {
 public:
  IdGenerator();
  std::string next(std::string_view prefix, size_t n_hex = 24);

 private:
  std::mutex mu_;
  std::mt19937_64 rng_;
};

Json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

// The text of token `id` (its bytes; "" without a tokenizer).
std::string token_text(const tokenizer::Tokenizer* tok, int32_t id);

// One entry of a chat choice's logprobs.content.
Json chat_logprob(const tokenizer::Tokenizer* tok, const runtime::TokenLogprobs& lp);

// Logprobs of a text completion choice, built token by token.
class CompletionLogprobs {
 public:
  // A generated token; `offset` is the byte offset of its text in the choice's text.
  void add(const tokenizer::Tokenizer* tok, const runtime::TokenLogprobs& lp, size_t offset);
  // A prompt token (echo): no logprob.
  void add_prompt(const tokenizer::Tokenizer* tok, int32_t id, size_t offset);
  Json json() const { return j_; }
  Json take();  // the entries added since the last take (streaming)

 private:
  Json j_ = Json{{"tokens", Json::array()}, {"token_logprobs", Json::array()}, {"top_logprobs", Json::array()},
                 {"text_offset", Json::array()}};
  size_t taken_ = 0;
};

// "data: <json>\n\n"
std::string sse_data(const Json& j);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";
inline constexpr std::string_view kSseKeepAlive = ": keep-alive\n\n";  // an SSE comment: clients skip it

int64_t unix_time_now();

}  // namespace dsv4::server
