// fuzz-link: dsv4_tokenizer
// Fuzz target for the completion parser: any text, in both modes, must parse without crashing, one-shot and
// streamed in chunks; for text the parser calls well formed, the streamed deltas must equal the one-shot parse.
// The first input byte picks the mode and chunk size; inputs are seeded with DSML fragments by mutation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "tokenizer/chat_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto mode = (data[0] & 1) ? dsv4::tokenizer::ThinkingMode::kThinking : dsv4::tokenizer::ThinkingMode::kChat;
  const size_t chunk = 1 + (data[0] >> 1) % 16;
  // Splice delimiters into the random bytes so the parser's states are reached.
  static const char* const kFragments[] = {"</think>", "\n\n<｜DSML｜tool_calls>\n", "<｜DSML｜invoke name=\"f\">\n",
                                           "<｜DSML｜parameter name=\"a\" string=\"true\">", "</｜DSML｜parameter>\n",
                                           "</｜DSML｜invoke>\n", "</｜DSML｜tool_calls>", "<｜end▁of▁sentence｜>"};
  std::string text;
  for (size_t i = 1; i < size; ++i) {
    if (data[i] >= 0xF8) {
      text += kFragments[data[i] & 7];
    } else {
      text.push_back(static_cast<char>(data[i]));
    }
  }
  const auto batch = dsv4::tokenizer::parse_completion(text, mode);
  dsv4::tokenizer::CompletionStream stream(mode);
  std::vector<dsv4::tokenizer::ChatDelta> deltas;
  for (size_t i = 0; i < text.size(); i += chunk) stream.push(std::string_view(text).substr(i, chunk), deltas);
  const auto final_parse = stream.finish(deltas);
  if (final_parse.content != batch.content || final_parse.error != batch.error) std::abort();
  if (batch.error.empty()) {
    std::string reasoning, content;
    size_t calls = 0;
    for (const auto& d : deltas) {
      if (d.kind == dsv4::tokenizer::ChatDelta::Kind::kReasoning) reasoning += d.text;
      if (d.kind == dsv4::tokenizer::ChatDelta::Kind::kContent) content += d.text;
      if (d.kind == dsv4::tokenizer::ChatDelta::Kind::kToolCall) ++calls;
    }
    if (reasoning != batch.reasoning_content || content != batch.content || calls != batch.tool_calls.size()) std::abort();
  }
  return 0;
}
