// Completion parsing (see chat_parser.h): a port of parse_message_from_completion_text / parse_tool_calls
// with the reference's exact acceptance rules (the two regexes are resolved by hand), made tolerant.
#include "tokenizer/chat_parser.h"

#include <optional>
#include <set>

#include "tokenizer/py_json.h"

namespace dsv4::tokenizer {
namespace {

using T = ChatTokens;
const std::string kInvokeStart = "<｜DSML｜invoke";
const std::string kInvokeEnd = "</｜DSML｜invoke";
const std::string kParamStart = "<｜DSML｜parameter";
const std::string kParamEnd = "/｜DSML｜parameter";

struct Stop {
  size_t next;  // index after the stop (text.size() when none)
  std::string_view before;
  int which = -1;  // index into stops, -1 when none found
  size_t at = 0;   // index of the stop (text.size() when none)
};

// _read_until_stop(): the earliest of `stops` at or after i.
Stop read_until(std::string_view text, size_t i, std::initializer_list<std::string_view> stops) {
  size_t best = std::string_view::npos;
  int which = -1, k = 0;
  for (std::string_view s : stops) {
    const size_t p = text.find(s, i);
    if (p != std::string_view::npos && p < best) {
      best = p;
      which = k;
    }
    ++k;
  }
  if (which < 0) return {text.size(), text.substr(i), -1, text.size()};
  return {best + std::data(stops)[which].size(), text.substr(i, best - i), which, best};
}

bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// re.findall(r'^\s*name="(.*?)">\n$', s, DOTALL) with exactly one match.
std::optional<std::string> match_tool_name(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_py_space(s[i])) ++i;
  s.remove_prefix(i);
  if (s.substr(0, 6) != "name=\"") return std::nullopt;
  s.remove_prefix(6);
  if (s.size() >= 3 && s.substr(s.size() - 3) == "\">\n") return std::string(s.substr(0, s.size() - 3));
  if (s.size() >= 4 && s.substr(s.size() - 4) == "\">\n\n") return std::string(s.substr(0, s.size() - 4));
  return std::nullopt;
}

struct Param {
  std::string name, is_str, value;
};

// re.findall(r'^ name="(.*?)" string="(true|false)">(.*?)<$', s, DOTALL) with exactly one match.
std::optional<Param> match_param(std::string_view s) {
  if (s.substr(0, 7) != " name=\"") return std::nullopt;
  std::string_view rest = s.substr(7);
  std::string_view value_end;
  size_t cut = 0;
  if (!rest.empty() && rest.back() == '<') {
    cut = 1;
  } else if (rest.size() >= 2 && rest.substr(rest.size() - 2) == "<\n") {
    cut = 2;
  } else {
    return std::nullopt;
  }
  for (size_t p = rest.find("\" string=\""); p != std::string_view::npos; p = rest.find("\" string=\"", p + 1)) {
    std::string_view after = rest.substr(p + 10);
    for (std::string_view flag : {std::string_view("true"), std::string_view("false")}) {
      const size_t head = flag.size() + 2;  // flag + "\">"
      if (after.substr(0, flag.size()) == flag && after.substr(flag.size(), 2) == "\">" && after.size() >= head + cut) {
        return Param{std::string(rest.substr(0, p)), std::string(flag),
                     std::string(after.substr(head, after.size() - head - cut))};
      }
    }
  }
  return std::nullopt;
}

std::string json_str(const std::string& s) { return py_json_dumps(nlohmann::ordered_json(s)); }

}  // namespace

ToolBlock parse_tool_block(std::string_view text, size_t i) {
  ToolBlock b;
  while (i < text.size()) {
    Stop s = read_until(text, i, {kInvokeStart, kToolCallsEnd});
    if (s.before != ">\n") {
      b.error = "Tool call format error: expected '>\\n' but got '" + std::string(s.before) + "'";
      return b;
    }
    i = s.next;
    if (s.which == 1) break;
    if (s.which < 0) {
      b.error = "Missing special token in tool calls";
      return b;
    }
    Stop n = read_until(text, i, {kParamStart, kInvokeEnd});
    auto name = match_tool_name(n.before);
    if (!name) {
      b.error = "Tool name format error: '" + std::string(n.before) + "'";
      return b;
    }
    i = n.next;
    std::vector<Param> params;
    std::set<std::string> seen;
    int stop = n.which;
    while (stop == 0) {
      Stop p = read_until(text, i, {kParamEnd});
      auto param = match_param(p.before);
      if (!param) {
        b.error = "Parameter format error: '" + std::string(p.before) + "'";
        return b;
      }
      if (!seen.insert(param->name).second) {
        b.error = "Duplicate parameter name: '" + param->name + "'";
        return b;
      }
      params.push_back(std::move(*param));
      Stop q = read_until(text, p.next, {kParamStart, kInvokeEnd});
      if (q.before != ">\n") {
        b.error = "Parameter format error: expected '>\\n' but got '" + std::string(q.before) + "'";
        return b;
      }
      i = q.next;
      stop = q.which;
    }
    std::string args = "{";
    for (size_t k = 0; k < params.size(); ++k) {
      if (k > 0) args += ", ";
      args += json_str(params[k].name) + ": " + (params[k].is_str == "true" ? json_str(params[k].value) : params[k].value);
    }
    b.calls.push_back({std::move(*name), args + "}"});
  }
  b.next = i;
  return b;
}

namespace {

void check_special_tokens(ParsedMessage& m) {
  for (std::string_view sp : {T::kBos, T::kEos, T::kThinkStart, T::kThinkEnd, T::kDsml}) {
    if (m.content.find(sp) != std::string::npos || m.reasoning_content.find(sp) != std::string::npos) {
      if (m.error.empty()) m.error = "Unexpected special token '" + std::string(sp) + "' in content";
      return;
    }
  }
}

// The tool-call block starting at `start` (the "\n\n<｜DSML｜tool_calls" itself) to the end of the message.
void parse_tools_and_tail(std::string_view text, size_t start, ParsedMessage& m) {
  ToolBlock b = parse_tool_block(text, start + kToolCallsStart.size());
  if (!b.error.empty()) {
    Stop eos = read_until(text, start, {T::kEos});
    m.content += eos.before;  // keep the malformed block as text
    m.finished = eos.which == 0;
    m.error = b.error;
    return;
  }
  m.tool_calls = std::move(b.calls);
  Stop tail = read_until(text, b.next, {T::kEos});
  m.finished = tail.which == 0;
  if (!tail.before.empty()) {
    m.content += tail.before;
    m.error = "Unexpected content after tool calls";
  } else if (!m.finished) {
    m.error = "Invalid format: missing EOS token";
  }
  if (m.error.empty() && tail.next != text.size()) m.error = "Unexpected content at end";
}

}  // namespace

ParsedMessage parse_completion(std::string_view text, ThinkingMode mode) {
  ParsedMessage m;
  size_t i = 0;
  if (mode == ThinkingMode::kThinking) {
    Stop r = read_until(text, 0, {T::kThinkEnd, kToolCallsStart, T::kEos});
    m.reasoning_content = r.before;
    if (r.which != 0) m.error = "Invalid thinking format: missing </think>";
    i = r.which == 0 ? r.next : r.at;  // without </think>, what follows is parsed as content
  }
  Stop c = read_until(text, i, {T::kEos, kToolCallsStart});
  m.content = c.before;
  if (c.which == 1) {
    parse_tools_and_tail(text, c.at, m);
  } else {
    m.finished = c.which == 0;
    if (!m.finished && m.error.empty()) m.error = "Invalid format: missing EOS token";
    if (m.finished && c.next != text.size() && m.error.empty()) m.error = "Unexpected content at end";
  }
  check_special_tokens(m);
  return m;
}

}  // namespace dsv4::tokenizer
