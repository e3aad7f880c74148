// Request validation: every error of the matrix in docs/server.md maps to its ApiErrorKind and names the
// parameter; valid requests give the expected SamplingParams, encode options and rendered prompt.
#include <gtest/gtest.h>

#include "server_test_support.h"

namespace dsv4::server {
namespace {

using testing::chat;
using testing::completion;
using testing::error_kind;

const std::string kUser = R"("messages": [{"role": "user", "content": "hi"}])";

std::string with(const std::string& fields) { return "{" + kUser + (fields.empty() ? "" : ", " + fields) + "}"; }

TEST(RequestValidation, BodyMustBeAJsonObject) {
  EXPECT_EQ(error_kind(chat("{")), ApiErrorKind::kInvalidJson);
  EXPECT_EQ(error_kind(chat("[1]")), ApiErrorKind::kInvalidJson);
  EXPECT_EQ(error_kind(chat("")), ApiErrorKind::kInvalidJson);
  EXPECT_EQ(error_kind(chat("{\"a\": \"\xff\"}")), ApiErrorKind::kInvalidJson);  // invalid UTF-8
  EXPECT_EQ(error_kind(chat(std::string(100, '[') + std::string(100, ']'))), ApiErrorKind::kInvalidJson);
}

TEST(RequestValidation, MessagesErrors) {
  EXPECT_EQ(error_kind(chat("{}")), ApiErrorKind::kMissingField);
  EXPECT_EQ(error_kind(chat(R"({"messages": "hi"})")), ApiErrorKind::kInvalidType);
  EXPECT_EQ(error_kind(chat(R"({"messages": []})")), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(chat(R"({"messages": [1]})")), ApiErrorKind::kInvalidType);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"content": "x"}]})")), ApiErrorKind::kMissingField);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"role": "robot", "content": "x"}]})")), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"role": "user", "content": ""}]})")), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"role": "user"}]})")), ApiErrorKind::kMissingField);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"role": "user", "content": 5}]})")), ApiErrorKind::kInvalidType);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})")),
            ApiErrorKind::kUnsupported);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"role": "tool", "content": "r"}]})")), ApiErrorKind::kMissingField);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]})")),
            ApiErrorKind::kMissingField);
  EXPECT_EQ(error_kind(chat(R"({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]})")),
            ApiErrorKind::kInvalidValue);
  std::string many = R"({"messages": [)";
  for (size_t i = 0; i <= kMaxMessages; ++i) many += std::string(i ? "," : "") + R"({"role": "user", "content": "x"})";
  EXPECT_EQ(error_kind(chat(many + "]}")), ApiErrorKind::kInvalidValue);
  auto r = chat(R"({"messages": [{"role": "user", "content": "x"}, {"role": "user", "content": 1}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("messages[1].content"), std::string::npos) << r.error().message;
}

TEST(RequestValidation, SamplingRangesAndTypes) {
  struct Case {
    std::string fields;
    ApiErrorKind kind;
    std::string param;
  };
  const Case cases[] = {
      {R"("temperature": -0.5)", ApiErrorKind::kInvalidValue, "temperature"},
      {R"("temperature": "hot")", ApiErrorKind::kInvalidType, "temperature"},
      {R"("top_p": 0)", ApiErrorKind::kInvalidValue, "top_p"},
      {R"("top_p": 1.01)", ApiErrorKind::kInvalidValue, "top_p"},
      {R"("top_k": -2)", ApiErrorKind::kInvalidValue, "top_k"},
      {R"("top_k": 1.5)", ApiErrorKind::kInvalidType, "top_k"},
      {R"("min_p": 1.5)", ApiErrorKind::kInvalidValue, "min_p"},
      {R"("presence_penalty": 2.5)", ApiErrorKind::kInvalidValue, "presence_penalty"},
      {R"("frequency_penalty": -3)", ApiErrorKind::kInvalidValue, "frequency_penalty"},
      {R"("repetition_penalty": 0)", ApiErrorKind::kInvalidValue, "repetition_penalty"},
      {R"("max_tokens": 0)", ApiErrorKind::kInvalidValue, "max_tokens"},
      {R"("max_completion_tokens": -1)", ApiErrorKind::kInvalidValue, "max_completion_tokens"},
      {R"("max_tokens": "10")", ApiErrorKind::kInvalidType, "max_tokens"},
      {R"("n": 0)", ApiErrorKind::kInvalidValue, "n"},
      {R"("n": 5)", ApiErrorKind::kInvalidValue, "n"},
      {R"("stream": "yes")", ApiErrorKind::kInvalidType, "stream"},
      {R"("stop": 5)", ApiErrorKind::kInvalidType, "stop"},
      {R"("stop": ["a", 1])", ApiErrorKind::kInvalidType, "stop"},
      {R"("logit_bias": {"600": 1})", ApiErrorKind::kInvalidValue, "logit_bias"},
      {R"("logit_bias": {"5": 101})", ApiErrorKind::kInvalidValue, "logit_bias"},
      {R"("logit_bias": {"x": 1})", ApiErrorKind::kInvalidValue, "logit_bias"},
      {R"("top_logprobs": 21, "logprobs": true)", ApiErrorKind::kInvalidValue, "top_logprobs"},
      {R"("top_logprobs": 2)", ApiErrorKind::kInvalidValue, "top_logprobs"},
      {R"("logprobs": 1)", ApiErrorKind::kInvalidType, "logprobs"},
      {R"("seed": "x")", ApiErrorKind::kInvalidType, "seed"},
      {R"("model": "gpt-4")", ApiErrorKind::kModelNotFound, "model"},
      {R"("model": 4)", ApiErrorKind::kInvalidType, "model"},
      {R"("stop_token_ids": [999])", ApiErrorKind::kInvalidValue, "stop_token_ids"},
      {R"("stream_options": 1)", ApiErrorKind::kInvalidType, "stream_options"},
  };
  for (const Case& c : cases) {
    auto r = chat(with(c.fields));
    ASSERT_FALSE(r.ok()) << c.fields;
    EXPECT_EQ(r.error().kind, c.kind) << c.fields << ": " << r.error().message;
    EXPECT_EQ(r.error().param, c.param) << c.fields;
  }
}

TEST(RequestValidation, ValidSamplingFieldsAndUnknownFieldsIgnored) {
  auto r = chat(with(R"("model": "alias", "temperature": 0.5, "top_p": 0.9, "top_k": 5, "min_p": 0.1, "seed": -1,
                        "presence_penalty": 1, "frequency_penalty": -1, "repetition_penalty": 1.1, "n": 2,
                        "stop": ["x", ""], "logit_bias": {"7": -100}, "max_completion_tokens": 9, "max_tokens": 3,
                        "stream": true, "stream_options": {"include_usage": true}, "logprobs": true,
                        "top_logprobs": 3, "user": "u", "whatever": {"deep": [1, 2]}, "temperature_2": "x")"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const CommonRequest& c = r->common;
  EXPECT_EQ(c.model, "alias");
  EXPECT_FLOAT_EQ(c.params.temperature, 0.5f);
  EXPECT_EQ(c.params.top_k, 5);
  EXPECT_EQ(c.params.seed, static_cast<uint64_t>(-1));
  EXPECT_EQ(c.n, 2);
  EXPECT_EQ(c.params.stop, std::vector<std::string>{"x"});
  EXPECT_FLOAT_EQ(c.params.logit_bias.at(7), -100.0f);
  EXPECT_EQ(c.max_tokens, 9);  // max_completion_tokens wins
  EXPECT_TRUE(c.stream);
  EXPECT_TRUE(c.include_usage);
  EXPECT_EQ(c.params.logprobs, 3);
  auto plain = chat(with(""));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->common.model, "tiny");
  EXPECT_FALSE(plain->common.params.logprobs.has_value());
  EXPECT_EQ(plain->encode.thinking_mode, tokenizer::ThinkingMode::kChat);
}

TEST(RequestValidation, MaxTokensAgainstTheContext) {
  CommonRequest r;
  auto ok = resolve_max_tokens(r, {.prompt_len = 10, .max_model_len = 100});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 90);
  EXPECT_EQ(*resolve_max_tokens(r, {.prompt_len = 10, .max_model_len = 100, .fallback = 16}), 16);
  EXPECT_EQ(error_kind(resolve_max_tokens(r, {.prompt_len = 100, .max_model_len = 100})), ApiErrorKind::kContextLengthExceeded);
  r.max_tokens = 91;
  EXPECT_EQ(error_kind(resolve_max_tokens(r, {.prompt_len = 10, .max_model_len = 100})), ApiErrorKind::kContextLengthExceeded);
  r.max_tokens = 90;
  EXPECT_EQ(*resolve_max_tokens(r, {.prompt_len = 10, .max_model_len = 100}), 90);
}

TEST(RequestValidation, ThinkingAndReasoningEffort) {
  using tokenizer::ReasoningEffort;
  using tokenizer::ThinkingMode;
  EXPECT_EQ(chat(with(R"("thinking": {"type": "enabled"})"))->encode.thinking_mode, ThinkingMode::kThinking);
  EXPECT_EQ(chat(with(R"("thinking": false, "reasoning_effort": "max")"))->encode.thinking_mode, ThinkingMode::kChat);
  EXPECT_EQ(chat(with(R"("chat_template_kwargs": {"thinking": true})"))->encode.thinking_mode, ThinkingMode::kThinking);
  EXPECT_EQ(chat(with(R"("chat_template_kwargs": {"enable_thinking": true})"))->encode.thinking_mode, ThinkingMode::kThinking);
  auto max = chat(with(R"("reasoning_effort": "max")"));
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->encode.thinking_mode, ThinkingMode::kThinking);
  EXPECT_EQ(max->encode.reasoning_effort, ReasoningEffort::kMax);
  EXPECT_EQ(chat(with(R"("chat_template_kwargs": {"reasoning_effort": "high"})"))->encode.reasoning_effort, ReasoningEffort::kHigh);
  EXPECT_EQ(error_kind(chat(with(R"("reasoning_effort": "extreme")"))), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(chat(with(R"("thinking": {"type": "sometimes"})"))), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(chat(with(R"("chat_template_kwargs": [])"))), ApiErrorKind::kInvalidType);
}

TEST(RequestValidation, ToolsAndToolChoice) {
  const std::string tools = R"("tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])";
  auto r = chat(with(tools));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->n_tools, 1u);
  ASSERT_EQ(r->messages.size(), 2u);  // a system message carries the tools
  EXPECT_EQ(r->messages[0]["role"], "system");
  EXPECT_TRUE(r->messages[0].contains("tools"));
  auto none = chat(with(tools + R"(, "tool_choice": "none")"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->n_tools, 0u);
  EXPECT_EQ(none->messages.size(), 1u);
  EXPECT_TRUE(chat(with(tools + R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}})")).ok());
  EXPECT_EQ(error_kind(chat(with(tools + R"(, "tool_choice": {"type": "function", "function": {"name": "other"}})"))),
            ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(chat(with(R"("tool_choice": "auto")"))), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(chat(with(R"("tools": {})"))), ApiErrorKind::kInvalidType);
  EXPECT_EQ(error_kind(chat(with(R"("tools": [{"type": "function"}])"))), ApiErrorKind::kMissingField);
  EXPECT_EQ(error_kind(chat(with(R"("tools": [{"type": "retrieval", "function": {"name": "f"}}])"))), ApiErrorKind::kInvalidValue);
}

TEST(RequestValidation, ToolCallRoundTripRendersDsmlAndToolResults) {
  auto r = chat(R"({"messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 2}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 20 C"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string text;
  auto ids = render_chat_prompt(*r, testing::test_tokenizer(), &text);
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  EXPECT_NE(text.find("You are helpful.\n\n## Tools"), std::string::npos) << text;
  EXPECT_NE(text.find("<｜DSML｜invoke name=\"get_weather\">"), std::string::npos) << text;
  EXPECT_NE(text.find("<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>"), std::string::npos);
  EXPECT_NE(text.find("<｜DSML｜parameter name=\"days\" string=\"false\">2</｜DSML｜parameter>"), std::string::npos);
  EXPECT_NE(text.find("<tool_result>sunny, 20 C</tool_result>"), std::string::npos) << text;
  EXPECT_EQ(text.rfind("<｜Assistant｜></think>"), text.size() - std::string("<｜Assistant｜></think>").size());
  EXPECT_EQ(ids->front(), 0);  // BOS
}

TEST(RequestValidation, ResponseFormatIsRenderedInTheSystemMessage) {
  auto r = chat(with(R"("response_format": {"type": "json_object"})"));
  ASSERT_TRUE(r.ok());
  std::string text;
  ASSERT_TRUE(render_chat_prompt(*r, testing::test_tokenizer(), &text).ok());
  EXPECT_NE(text.find("## Response Format:"), std::string::npos) << text;
  EXPECT_TRUE(chat(with(R"("response_format": {"type": "text"})"))->messages.size() == 1);
  EXPECT_EQ(error_kind(chat(with(R"("response_format": {"type": "json_schema"})"))), ApiErrorKind::kMissingField);
  EXPECT_EQ(error_kind(chat(with(R"("response_format": {"type": "yaml"})"))), ApiErrorKind::kInvalidValue);
}

TEST(RequestValidation, ReasoningOfEarlierTurnsAndMaxEffortPrefix) {
  auto r = chat(R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "content": "b", "reasoning_content": "why"}, {"role": "user", "content": "c"}],
      "reasoning_effort": "max"})");
  ASSERT_TRUE(r.ok());
  std::string text;
  ASSERT_TRUE(render_chat_prompt(*r, testing::test_tokenizer(), &text).ok());
  EXPECT_NE(text.find("Reasoning Effort: Absolute maximum"), std::string::npos);
  EXPECT_EQ(text.find("why"), std::string::npos) << "earlier reasoning is dropped without tools";
  EXPECT_EQ(text.substr(text.size() - 7), "<think>");
}

TEST(RequestValidation, CompletionPrompts) {
  auto s = completion(R"({"prompt": "Hello"})");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->prompts.size(), 1u);
  EXPECT_EQ(s->prompts[0].ids.front(), 0);  // add_bos_token
  auto ids = completion(R"({"prompt": [5, 6, 7], "n": 2, "echo": true, "logprobs": 3})");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->prompts[0].ids, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_TRUE(ids->echo);
  EXPECT_EQ(ids->common.params.logprobs, 3);
  auto batch = completion(R"({"prompt": ["a", [1, 2]]})");
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->prompts.size(), 2u);
  EXPECT_EQ(error_kind(completion("{}")), ApiErrorKind::kMissingField);
  EXPECT_EQ(error_kind(completion(R"({"prompt": 5})")), ApiErrorKind::kInvalidType);
  EXPECT_EQ(error_kind(completion(R"({"prompt": []})")), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(completion(R"({"prompt": [1, 512]})")), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(completion(R"({"prompt": [1, -1]})")), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(completion(R"({"prompt": [[]]})")), ApiErrorKind::kInvalidType);
  EXPECT_EQ(error_kind(completion(R"({"prompt": "a", "logprobs": 21})")), ApiErrorKind::kInvalidValue);
  EXPECT_EQ(error_kind(completion(R"({"prompt": "a", "suffix": "b"})")), ApiErrorKind::kUnsupported);
  EXPECT_EQ(error_kind(completion(R"({"prompt": "a", "best_of": 3})")), ApiErrorKind::kUnsupported);
}

}  // namespace
}  // namespace dsv4::server
