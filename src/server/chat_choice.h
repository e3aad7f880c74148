// ChatChoice turns the text of one generated chat choice into OpenAI message parts: the DeepSeek-V4
// completion parser (CompletionStream) splits reasoning, content and DSML tool calls; leftover special tokens
// are removed (SpecialTextFilter, unless the request keeps them); each tool call gets an id and an index.
// Streaming and non-streaming share it: push() yields the chat.completion.chunk deltas
//   {"reasoning_content": "..."} | {"content": "..."} |
//   {"tool_calls": [{"index": k, "id": "call_...", "type": "function", "function": {"name", "arguments"}}]}
// and message() is their sum, so both modes give the same message for the same generated text.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "server/json_fields.h"
#include "server/special_filter.h"
#include "tokenizer/chat_parser.h"

namespace dsv4::server {

class ChatChoice {
 public:
  // `specials` may be nullptr (keep special tokens); `make_call_id` names tool calls ("call_...").
  ChatChoice(tokenizer::ThinkingMode mode, const SpecialStrings* specials, std::function<std::string()> make_call_id);

  // Generated text (special tokens shown) -> deltas, in order.
  void push(std::string_view text, std::vector<Json>& deltas);
  // End of generation: what was held back.
  void finish(std::vector<Json>& deltas);

  // OpenAI finish_reason for the engine's: "tool_calls" when the choice called tools and stopped.
  std::string finish_reason(std::string_view engine_reason) const;
  // The whole message: {"role": "assistant", "content", ["reasoning_content"], ["tool_calls"]}.
  Json message() const;
  size_t n_tool_calls() const { return calls_.size(); }

 private:
  void convert(std::vector<tokenizer::ChatDelta>& parsed, std::vector<Json>& deltas);
  void emit_text(bool reasoning, const std::string& text, std::vector<Json>& deltas);

  tokenizer::ThinkingMode mode_;
  tokenizer::CompletionStream parser_;
  SpecialTextFilter reasoning_filter_, content_filter_;
  std::function<std::string()> make_call_id_;
  std::string reasoning_, content_;
  Json calls_ = Json::array();
};

}  // namespace dsv4::server
