// Shared by the server unit tests: the tiny test tokenizer of tests/data/server (ids < 512, DeepSeek-V4
// special tokens; see make_tokenizer.py there) and request-parsing shortcuts.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>

#include "server/chat_request.h"
#include "server/completion_request.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::server::testing {

inline const tokenizer::Tokenizer& test_tokenizer() {
  static const tokenizer::Tokenizer tok = [] {
    auto t = tokenizer::Tokenizer::load(std::filesystem::path(DSV4_TEST_DATA) / "server");
    if (!t.ok()) throw std::runtime_error(t.message());
    return std::move(t.value());
  }();
  return tok;
}

inline RequestLimits test_limits() { return RequestLimits{.model_names = {"tiny", "alias"}, .vocab_size = 512, .max_n = 4}; }

inline ApiResult<ChatRequest> chat(const std::string& body) {
  auto j = parse_json_body(body);
  if (!j.ok()) return j.error();
  return parse_chat_request(*j, test_limits());
}

inline ApiResult<CompletionRequest> completion(const std::string& body) {
  auto j = parse_json_body(body);
  if (!j.ok()) return j.error();
  return parse_completion_request(*j, test_limits(), &test_tokenizer());
}

// The kind of the error `r` holds (fails the test when it holds a value).
template <typename T>
ApiErrorKind error_kind(const ApiResult<T>& r) {
  EXPECT_FALSE(r.ok());
  return r.ok() ? ApiErrorKind::kInternal : r.error().kind;
}

}  // namespace dsv4::server::testing
