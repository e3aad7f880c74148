// The DeepSeek-V4 chat encoding (spec §11.2): OpenAI-style messages -> the prompt string, a faithful port of
// DeepSeek's reference encoding/encoding_dsv4.py (encode_messages). Roles: system, user, assistant, tool
// (merged into the following user turn as <tool_result> blocks, sorted by the preceding assistant's call
// order), developer, latest_reminder. Chat and thinking modes, reasoning effort "high" and "max" (the max
// prefix), the rule that drops earlier reasoning when no message carries tools, tools rendered in the DSML
// block, response_format, quick-instruction tasks, wo_eos, and continuation from a context.
//
// The prompt is text: special tokens appear as their strings (BOS included) and the tokenizer maps them to
// ids. Message content may be a string, null, or (extension) an array of {"type": "text"} parts.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dsv4::tokenizer {

enum class ThinkingMode { kChat, kThinking };
enum class ReasoningEffort { kDefault, kHigh, kMax };  // kDefault and kHigh add nothing; kMax adds the prefix

struct ChatTokens {
  static constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
  static constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
  static constexpr std::string_view kThinkStart = "<think>";
  static constexpr std::string_view kThinkEnd = "</think>";
  static constexpr std::string_view kDsml = "｜DSML｜";
  static constexpr std::string_view kUser = "<｜User｜>";
  static constexpr std::string_view kAssistant = "<｜Assistant｜>";
  static constexpr std::string_view kLatestReminder = "<｜latest_reminder｜>";
};

struct ChatEncodeOptions {
  ThinkingMode thinking_mode = ThinkingMode::kChat;
  ReasoningEffort reasoning_effort = ReasoningEffort::kDefault;
  bool drop_thinking = true;
  bool add_bos = true;  // only when there is no context
};

// `messages` and `context` are JSON arrays of messages; `context` (may be null) is an already-encoded prefix
// that is not rendered again. Errors name the message index and field.
Result<std::string> encode_messages(const nlohmann::ordered_json& messages, const ChatEncodeOptions& opts,
                                    const nlohmann::ordered_json& context = nullptr);

// The "## Tools" block for a list of OpenAI-format tools ({"type": "function", "function": {...}}).
Result<std::string> render_tools(const nlohmann::ordered_json& tools);

// The special-token strings `prompt` uses that a tokenizer must know (for a clear error before encoding).
std::vector<std::string> special_tokens_used(std::string_view prompt);

}  // namespace dsv4::tokenizer
