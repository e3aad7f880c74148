// Incremental completion parsing (see chat_parser.h). Text is consumed phase by phase; a tail that could be
// the beginning of the next delimiter is held back until it is decided.
#include <algorithm>
#include <span>

#include "tokenizer/chat_parser.h"

namespace dsv4::tokenizer {
namespace {

using T = ChatTokens;
constexpr std::string_view kReasoningStops[] = {T::kThinkEnd, kToolCallsStart, T::kEos};
constexpr std::string_view kContentStops[] = {T::kEos, kToolCallsStart};
constexpr std::string_view kEosStop[] = {T::kEos};

struct Found {
  size_t at = std::string::npos;
  int which = -1;
};

using Stops = std::span<const std::string_view>;

Found find_first(const std::string& buf, size_t pos, Stops stops) {
  Found f;
  int k = 0;
  for (std::string_view s : stops) {
    const size_t p = buf.find(s, pos);
    if (p != std::string::npos && p < f.at) f = {p, k};
    ++k;
  }
  return f;
}

// Length of the longest tail of buf[pos:] that is a proper prefix of one of `stops`.
size_t holdback(const std::string& buf, size_t pos, Stops stops) {
  size_t longest = 0;
  for (std::string_view s : stops) longest = std::max(longest, s.size());
  const size_t avail = buf.size() - pos;
  for (size_t k = std::min(avail, longest - 1); k > 0; --k) {
    std::string_view tail(buf.data() + buf.size() - k, k);
    for (std::string_view s : stops) {
      if (s.substr(0, k) == tail) return k;
    }
  }
  return 0;
}

}  // namespace

CompletionStream::CompletionStream(ThinkingMode mode)
    : mode_(mode), phase_(mode == ThinkingMode::kThinking ? Phase::kReasoning : Phase::kContent) {}

void CompletionStream::push(std::string_view text, std::vector<ChatDelta>& out) {
  buf_.append(text);
  step(out, false);
}

ParsedMessage CompletionStream::finish(std::vector<ChatDelta>& out) {
  step(out, true);
  return parse_completion(buf_, mode_);
}

void CompletionStream::emit_text(ChatDelta::Kind kind, size_t end, std::vector<ChatDelta>& out) {
  if (end > pos_) out.push_back({kind, buf_.substr(pos_, end - pos_), {}});
  pos_ = std::max(pos_, end);
}

void CompletionStream::step(std::vector<ChatDelta>& out, bool final) {
  while (true) {
    if (phase_ == Phase::kReasoning || phase_ == Phase::kContent) {
      const bool reasoning = phase_ == Phase::kReasoning;
      const auto kind = reasoning ? ChatDelta::Kind::kReasoning : ChatDelta::Kind::kContent;
      const Stops stops = reasoning ? Stops(kReasoningStops) : Stops(kContentStops);
      Found f = find_first(buf_, pos_, stops);
      if (f.which < 0) {
        emit_text(kind, final ? buf_.size() : buf_.size() - holdback(buf_, pos_, stops), out);
        if (final) phase_ = Phase::kDone;
        return;
      }
      emit_text(kind, f.at, out);
      const std::string_view stop = stops[f.which];
      if (stop == kToolCallsStart) {
        phase_ = Phase::kToolBlock;  // pos_ stays at the block start
      } else if (stop == T::kThinkEnd) {
        pos_ = f.at + stop.size();
        phase_ = Phase::kContent;
      } else {
        pos_ = f.at + stop.size();
        phase_ = Phase::kDone;
      }
      continue;
    }
    if (phase_ == Phase::kToolBlock) {
      // Parse the block only once the stream has ended: text after a closing tag can change how the reference
      // parser reads the block (a closing tag inside an attribute value), and an EOS inside a parameter value is
      // data to it (libFuzzer found a block that failed to parse at the first EOS and parsed at the end), so an
      // earlier parse could emit what the one-shot parse_completion does not. The engine stops at the EOS token,
      // so the end of the stream follows it at once.
      if (!final) return;
      ToolBlock b = parse_tool_block(buf_, pos_ + kToolCallsStart.size());
      if (!b.error.empty()) {
        // Malformed: the block is kept as content, up to the EOS (wait for it unless the stream ended).
        Found eos = find_first(buf_, pos_, kEosStop);
        if (eos.which < 0 && !final) return;
        emit_text(ChatDelta::Kind::kContent, eos.which < 0 ? buf_.size() : eos.at, out);
        pos_ = eos.which < 0 ? buf_.size() : eos.at + T::kEos.size();
        phase_ = Phase::kDone;
        return;
      }
      for (ToolCall& c : b.calls) out.push_back({ChatDelta::Kind::kToolCall, {}, std::move(c)});
      pos_ = b.next;
      phase_ = Phase::kAfterTools;
      continue;
    }
    if (phase_ == Phase::kAfterTools) {
      Found f = find_first(buf_, pos_, kEosStop);
      if (f.which < 0 && !final) return;
      emit_text(ChatDelta::Kind::kContent, f.which < 0 ? buf_.size() : f.at, out);
      pos_ = f.which < 0 ? buf_.size() : f.at + T::kEos.size();
      phase_ = Phase::kDone;
      continue;
    }
    return;  // kDone: text after the EOS is not part of the message
  }
}

}  // namespace dsv4::tokenizer
