// The inverse of the chat encoding: a completion (the text generated after the prompt, special tokens shown)
// -> reasoning, content and tool calls, following DeepSeek's parse_message_from_completion_text. Unlike the
// reference, which raises on malformed output, parsing never fails: what cannot be parsed stays in the content
// (a malformed DSML block is kept verbatim), and `error` carries the reference's message. For every text the
// reference accepts, the result equals the reference's and `error` is empty.
//
// CompletionStream does the same incrementally: fed text deltas (e.g. from StreamDecoder), it emits reasoning
// and content deltas as soon as they cannot be the start of a delimiter, and each tool call when its block
// closes. Concatenated deltas equal the one-shot parse for well-formed text.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_encoding.h"

namespace dsv4::tokenizer {

struct ToolCall {
  std::string name;
  std::string arguments;  // JSON object text, as the reference builds it
};

struct ParsedMessage {
  std::string reasoning_content;
  std::string content;
  std::vector<ToolCall> tool_calls;
  bool finished = false;  // the EOS was seen
  std::string error;      // empty when well formed
};

ParsedMessage parse_completion(std::string_view text, ThinkingMode mode);

struct ChatDelta {
  enum class Kind { kReasoning, kContent, kToolCall };
  Kind kind;
  std::string text;     // kReasoning, kContent
  ToolCall tool_call;   // kToolCall
};

// Internals shared by parse_completion and CompletionStream.
inline constexpr std::string_view kToolCallsStart = "\n\n<｜DSML｜tool_calls";
inline constexpr std::string_view kToolCallsEnd = "</｜DSML｜tool_calls>";
struct ToolBlock {
  size_t next = 0;  // index after the block's closing tag
  std::vector<ToolCall> calls;
  std::string error;  // the reference's message when malformed
};
// parse_tool_calls() of the reference, from just after "\n\n<｜DSML｜tool_calls".
ToolBlock parse_tool_block(std::string_view text, size_t i);

class CompletionStream {
 public:
  explicit CompletionStream(ThinkingMode mode);
  // Appends the deltas that `text` makes final.
  void push(std::string_view text, std::vector<ChatDelta>& out);
  // End of generation: emits what was held back and returns the complete parse (as parse_completion).
  ParsedMessage finish(std::vector<ChatDelta>& out);

 private:
  enum class Phase { kReasoning, kContent, kToolBlock, kAfterTools, kDone };
  void step(std::vector<ChatDelta>& out, bool final);
  void emit_text(ChatDelta::Kind kind, size_t end, std::vector<ChatDelta>& out);

  ThinkingMode mode_;
  Phase phase_;
  std::string buf_;
  size_t pos_ = 0;  // everything before pos_ has been consumed
};

}  // namespace dsv4::tokenizer
