// OpenAI response pieces (see openai_json.h).
#include "server/openai_json.h"

#include <chrono>
#include <cmath>

namespace dsv4::server {
namespace {

Json bytes_of(std::string_view s) {
  Json b = Json::array();
  for (char c : s) b.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return b;
}

// A logprob as JSON: -inf (a token the processors removed) has no JSON spelling; OpenAI clients expect a
// number, so it is clamped to the most negative finite float.
Json logprob_value(float lp) { return std::isfinite(lp) ? Json(lp) : Json(-9999.0); }

}  // namespace

IdGenerator::IdGenerator() : rng_(std::random_device{}()) {}

std::string IdGenerator::next(std::string_view prefix, size_t n_hex) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  std::lock_guard lk(mu_);
  for (size_t i = 0; i < n_hex; ++i) id.push_back(kHex[rng_() & 15]);
  return id;
}

Json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return Json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens}};
}

std::string token_text(const tokenizer::Tokenizer* tok, int32_t id) {
  if (tok == nullptr || id < 0 || id >= tok->vocab_size()) return "";
  return std::string(tok->token_bytes(id));
}

Json chat_logprob(const tokenizer::Tokenizer* tok, const runtime::TokenLogprobs& lp) {
  const std::string text = token_text(tok, lp.token);
  Json top = Json::array();
  for (const sampling::TokenLogprob& t : lp.top) {
    const std::string tt = token_text(tok, t.token);
    top.push_back(Json{{"token", tt}, {"logprob", logprob_value(t.logprob)}, {"bytes", bytes_of(tt)}});
  }
  return Json{{"token", text}, {"logprob", logprob_value(lp.logprob)}, {"bytes", bytes_of(text)}, {"top_logprobs", std::move(top)}};
}

void CompletionLogprobs::add(const tokenizer::Tokenizer* tok, const runtime::TokenLogprobs& lp, size_t offset) {
  j_["tokens"].push_back(token_text(tok, lp.token));
  j_["token_logprobs"].push_back(logprob_value(lp.logprob));
  Json top = Json::object();
  for (const sampling::TokenLogprob& t : lp.top) top[token_text(tok, t.token)] = logprob_value(t.logprob);
  j_["top_logprobs"].push_back(std::move(top));
  j_["text_offset"].push_back(offset);
}

void CompletionLogprobs::add_prompt(const tokenizer::Tokenizer* tok, int32_t id, size_t offset) {
  j_["tokens"].push_back(token_text(tok, id));
  j_["token_logprobs"].push_back(nullptr);
  j_["top_logprobs"].push_back(nullptr);
  j_["text_offset"].push_back(offset);
}

Json CompletionLogprobs::take() {
  Json out = Json{{"tokens", Json::array()}, {"token_logprobs", Json::array()}, {"top_logprobs", Json::array()},
                  {"text_offset", Json::array()}};
  const size_t n = j_["tokens"].size();
  for (size_t i = taken_; i < n; ++i) {
    for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) out[key].push_back(j_[key][i]);
  }
  taken_ = n;
  return out;
}

std::string sse_data(const Json& j) { return "data: " + dump(j) + "\n\n"; }

int64_t unix_time_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace dsv4::server
