// Chat output translation (see chat_choice.h).
#include "server/chat_choice.h"

namespace dsv4::server {

ChatChoice::ChatChoice(tokenizer::ThinkingMode mode, const SpecialStrings* specials,
                       std::function<std::string()> make_call_id)
    : mode_(mode),
      parser_(mode),
      reasoning_filter_(specials),
      content_filter_(specials),
      make_call_id_(std::move(make_call_id)) {}

void ChatChoice::emit_text(bool reasoning, const std::string& text, std::vector<Json>& deltas) {
  if (text.empty()) return;
  (reasoning ? reasoning_ : content_) += text;
  deltas.push_back(Json{{reasoning ? "reasoning_content" : "content", text}});
}

void ChatChoice::convert(std::vector<tokenizer::ChatDelta>& parsed, std::vector<Json>& deltas) {
  using Kind = tokenizer::ChatDelta::Kind;
  for (tokenizer::ChatDelta& d : parsed) {
    if (d.kind == Kind::kReasoning) {
      emit_text(true, reasoning_filter_.push(d.text), deltas);
    } else if (d.kind == Kind::kContent) {
      emit_text(true, reasoning_filter_.finish(), deltas);  // reasoning has ended
      emit_text(false, content_filter_.push(d.text), deltas);
    } else {
      emit_text(true, reasoning_filter_.finish(), deltas);
      emit_text(false, content_filter_.finish(), deltas);
      Json call = {{"index", calls_.size()},
                   {"id", make_call_id_()},
                   {"type", "function"},
                   {"function", {{"name", d.tool_call.name}, {"arguments", d.tool_call.arguments}}}};
      calls_.push_back(call);
      deltas.push_back(Json{{"tool_calls", Json::array({std::move(call)})}});
    }
  }
  parsed.clear();
}

void ChatChoice::push(std::string_view text, std::vector<Json>& deltas) {
  std::vector<tokenizer::ChatDelta> parsed;
  parser_.push(text, parsed);
  convert(parsed, deltas);
}

void ChatChoice::finish(std::vector<Json>& deltas) {
  std::vector<tokenizer::ChatDelta> parsed;
  parser_.finish(parsed);
  convert(parsed, deltas);
  emit_text(true, reasoning_filter_.finish(), deltas);
  emit_text(false, content_filter_.finish(), deltas);
}

std::string ChatChoice::finish_reason(std::string_view engine_reason) const {
  if (engine_reason == "length") return "length";
  return calls_.empty() ? "stop" : "tool_calls";
}

Json ChatChoice::message() const {
  Json m = {{"role", "assistant"}};
  m["content"] = content_.empty() && !calls_.empty() ? Json(nullptr) : Json(content_);
  if (mode_ == tokenizer::ThinkingMode::kThinking) m["reasoning_content"] = reasoning_;
  if (!calls_.empty()) {
    Json calls = calls_;
    for (Json& c : calls) c.erase("index");
    m["tool_calls"] = std::move(calls);
  }
  return m;
}

}  // namespace dsv4::server
