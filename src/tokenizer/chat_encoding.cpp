// Port of encode_messages() from DeepSeek's encoding_dsv4.py (see chat_encoding.h). Messages stay JSON
// objects, as in the reference, so optional fields keep Python's get()/truthiness semantics; the functions
// below mirror the reference's one for one.
#include "tokenizer/chat_encoding.h"

#include <algorithm>
#include <map>

#include "tokenizer/py_json.h"

namespace dsv4::tokenizer {
namespace {

using Json = nlohmann::ordered_json;
using T = ChatTokens;

constexpr std::string_view kReasoningEffortMax =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root "
    "cause, rigorously stress-testing your logic against all potential paths, edge cases, and adversarial "
    "scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, considered "
    "alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n";

// TOOLS_TEMPLATE with {dsml_token}, {thinking_start_token}, {thinking_end_token} substituted; {tool_schemas} is
// kept for render_tools().
constexpr std::string_view kToolsTemplate =
    "## Tools\n\n"
    "You have access to a set of tools to help answer the user's question. You can invoke tools by writing a "
    "\"<｜DSML｜tool_calls>\" block like the following:\n\n"
    "<｜DSML｜tool_calls>\n"
    "<｜DSML｜invoke name=\"$TOOL_NAME\">\n"
    "<｜DSML｜parameter name=\"$PARAMETER_NAME\" string=\"true|false\">$PARAMETER_VALUE</｜DSML｜parameter>\n"
    "...\n"
    "</｜DSML｜invoke>\n"
    "<｜DSML｜invoke name=\"$TOOL_NAME2\">\n"
    "...\n"
    "</｜DSML｜invoke>\n"
    "</｜DSML｜tool_calls>\n\n"
    "String parameters should be specified as is and set `string=\"true\"`. For all other types (numbers, "
    "booleans, arrays, objects), pass the value in JSON format and set `string=\"false\"`.\n\n"
    "If thinking_mode is enabled (triggered by <think>), you MUST output your complete reasoning inside "
    "<think>...</think> BEFORE any tool calls or final response.\n\n"
    "Otherwise, output directly after </think> with tool calls or final response.\n\n"
    "### Available Tool Schemas\n\n"
    "{tool_schemas}\n\n"
    "You MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n";

constexpr std::string_view kResponseFormatPrefix =
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

const std::map<std::string, std::string, std::less<>>& task_tokens() {
  static const std::map<std::string, std::string, std::less<>> m = {
      {"action", "<｜action｜>"}, {"query", "<｜query｜>"}, {"authority", "<｜authority｜>"},
      {"domain", "<｜domain｜>"}, {"title", "<｜title｜>"}, {"read_url", "<｜read_url｜>"}};
  return m;
}

// msg.get(key): nullptr when absent or null.
const Json* get(const Json& msg, const char* key) {
  if (!msg.is_object()) return nullptr;
  auto it = msg.find(key);
  if (it == msg.end() || it->is_null()) return nullptr;
  return &*it;
}

bool truthy(const Json* v) {
  if (v == nullptr || v->is_null()) return false;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_number()) return v->get<double>() != 0;
  if (v->is_string() || v->is_array() || v->is_object()) return !v->empty();
  return true;
}

std::string role_of(const Json& msg) {
  const Json* r = get(msg, "role");
  return r != nullptr && r->is_string() ? r->get<std::string>() : "";
}

Error msg_error(size_t index, const std::string& what) {
  return make_error("chat message " + std::to_string(index) + ": " + what);
}

// Content as text: a string, null/absent -> "", or (extension) an array of {"type":"text","text":...} parts.
Result<std::string> text_of(const Json* v, size_t index, const char* field) {
  if (v == nullptr) return std::string();
  if (v->is_string()) return v->get<std::string>();
  if (v->is_array()) {
    std::string out;
    for (const Json& part : *v) {
      const Json* type = get(part, "type");
      const Json* text = get(part, "text");
      if (type == nullptr || *type != "text" || (text != nullptr && !text->is_string())) {
        return msg_error(index, std::string(field) + ": only text parts are supported");
      }
      if (text != nullptr) out += text->get<std::string>();
    }
    return out;
  }
  return msg_error(index, std::string(field) + " must be a string");
}

Result<std::string> render_response_format(const Json& rf) { return std::string(kResponseFormatPrefix) + py_json_dumps(rf); }

// encode_arguments_to_dsml(): one <｜DSML｜parameter> line per argument.
Result<std::string> encode_arguments(const Json& arguments_field, size_t index) {
  Json args;
  bool parsed = false;
  if (arguments_field.is_string()) {
    args = Json::parse(arguments_field.get<std::string>(), nullptr, /*allow_exceptions=*/false);
    parsed = !args.is_discarded();
  }
  if (!parsed) args = Json{{"arguments", arguments_field}};
  if (!args.is_object()) return msg_error(index, "tool call arguments must be a JSON object");
  std::string out;
  bool first = true;
  for (const auto& [k, v] : args.items()) {
    if (!first) out += "\n";
    first = false;
    out += "<｜DSML｜parameter name=\"" + k + "\" string=\"" + (v.is_string() ? "true" : "false") + "\">";
    out += v.is_string() ? v.get<std::string>() : py_json_dumps(v);
    out += "</｜DSML｜parameter>";
  }
  return out;
}

Result<std::string> render_tool_calls(const Json& tool_calls, size_t index) {
  std::string invokes;
  bool first = true;
  for (const Json& tc : tool_calls) {
    const Json* fn = get(tc, "function");
    const Json* name = fn != nullptr ? get(*fn, "name") : nullptr;
    if (name == nullptr || !name->is_string()) return msg_error(index, "tool call without function.name");
    const Json* arguments = get(*fn, "arguments");
    DSV4_TRY(params, encode_arguments(arguments != nullptr ? *arguments : Json(nullptr), index));
    if (!first) invokes += "\n";
    first = false;
    invokes += "<｜DSML｜invoke name=\"" + name->get<std::string>() + "\">\n" + params + "\n</｜DSML｜invoke>";
  }
  return "\n\n<｜DSML｜tool_calls>\n" + invokes + "\n</｜DSML｜tool_calls>";
}

int find_last_user_index(const std::vector<Json>& messages) {
  for (int i = static_cast<int>(messages.size()) - 1; i >= 0; --i) {
    const std::string r = role_of(messages[i]);
    if (r == "user" || r == "developer") return i;
  }
  return -1;
}

Result<std::string> render_user_blocks(const Json& blocks, size_t index) {
  std::string out;
  bool first = true;
  for (const Json& block : blocks) {
    const Json* type = get(block, "type");
    const std::string t = type != nullptr && type->is_string() ? type->get<std::string>() : "None";
    std::string part;
    if (t == "text") {
      DSV4_TRY(text, text_of(get(block, "text"), index, "text"));
      part = text;
    } else if (t == "tool_result") {
      const Json* c = get(block, "content");
      if (c != nullptr && c->is_array()) {
        bool first_part = true;
        for (const Json& b : *c) {
          const Json* bt = get(b, "type");
          if (!first_part) part += "\n\n";
          first_part = false;
          if (bt != nullptr && *bt == "text") {
            DSV4_TRY(text, text_of(get(b, "text"), index, "text"));
            part += text;
          } else {
            part += "[Unsupported " + (bt != nullptr && bt->is_string() ? bt->get<std::string>() : "None") + "]";
          }
        }
      } else {
        DSV4_TRY(text, text_of(c, index, "content"));
        part = text;
      }
      part = "<tool_result>" + part + "</tool_result>";
    } else {
      part = "[Unsupported " + t + "]";
    }
    if (!first) out += "\n\n";
    first = false;
    out += part;
  }
  return out;
}

struct RenderArgs {
  ThinkingMode mode;
  bool drop_thinking;
  ReasoningEffort effort;
};

Result<std::string> render_body(size_t index, const std::vector<Json>& messages, const RenderArgs& a, int last_user) {
  const Json& msg = messages[index];
  const std::string role = role_of(msg);
  const Json* tools = get(msg, "tools");
  const Json* response_format = get(msg, "response_format");
  std::string prompt;
  auto append_tools_and_format = [&](std::string& out) -> Status {
    if (truthy(tools)) {
      DSV4_TRY(block, render_tools(*tools));
      out += "\n\n" + block;
    }
    if (truthy(response_format)) {
      DSV4_TRY(rf, render_response_format(*response_format));
      out += "\n\n" + rf;
    }
    return Ok{};
  };
  if (role == "system") {
    DSV4_TRY(content, text_of(get(msg, "content"), index, "content"));
    prompt += content;
    DSV4_TRY_STATUS(append_tools_and_format(prompt));
  } else if (role == "developer") {
    DSV4_TRY(content, text_of(get(msg, "content"), index, "content"));
    if (content.empty()) return msg_error(index, "a developer message needs content");
    prompt += std::string(T::kUser) + content;
    DSV4_TRY_STATUS(append_tools_and_format(prompt));
  } else if (role == "user") {
    prompt += T::kUser;
    const Json* blocks = get(msg, "content_blocks");
    if (truthy(blocks)) {
      DSV4_TRY(text, render_user_blocks(*blocks, index));
      prompt += text;
    } else {
      DSV4_TRY(content, text_of(get(msg, "content"), index, "content"));
      prompt += content;
    }
  } else if (role == "latest_reminder") {
    DSV4_TRY(content, text_of(get(msg, "content"), index, "content"));
    prompt += std::string(T::kLatestReminder) + content;
  } else if (role == "assistant") {
    std::string tc;
    if (truthy(get(msg, "tool_calls"))) {
      DSV4_TRY(rendered, render_tool_calls(*get(msg, "tool_calls"), index));
      tc = rendered;
    }
    DSV4_TRY(content, text_of(get(msg, "content"), index, "content"));
    DSV4_TRY(reasoning, text_of(get(msg, "reasoning_content"), index, "reasoning_content"));
    const bool prev_has_task = index >= 1 && get(messages[index - 1], "task") != nullptr;
    std::string thinking;
    if (a.mode == ThinkingMode::kThinking && !prev_has_task &&
        (!a.drop_thinking || static_cast<int>(index) > last_user)) {
      thinking = reasoning + std::string(T::kThinkEnd);
    }
    prompt += thinking + content + tc;
    if (!truthy(get(msg, "wo_eos"))) prompt += T::kEos;
  } else {
    return msg_error(index, "unknown role '" + role + "'");
  }
  return prompt;
}

// render_message(): the body plus the transition to what follows.
Result<std::string> render_message(size_t index, const std::vector<Json>& messages, const RenderArgs& a) {
  const int last_user = find_last_user_index(messages);
  std::string prompt;
  if (index == 0 && a.mode == ThinkingMode::kThinking && a.effort == ReasoningEffort::kMax) prompt += kReasoningEffortMax;
  DSV4_TRY(body, render_body(index, messages, a, last_user));
  prompt += body;
  if (index + 1 < messages.size()) {
    const std::string next = role_of(messages[index + 1]);
    if (next != "assistant" && next != "latest_reminder") return prompt;
  }
  const std::string role = role_of(messages[index]);
  if (const Json* task = get(messages[index], "task")) {
    const std::string name = task->is_string() ? task->get<std::string>() : task->dump();
    auto it = task_tokens().find(name);
    if (it == task_tokens().end()) return msg_error(index, "invalid task '" + name + "'");
    if (name != "action") {
      prompt += it->second;
    } else {
      prompt += std::string(T::kAssistant) + std::string(a.mode != ThinkingMode::kThinking ? T::kThinkEnd : T::kThinkStart);
      prompt += it->second;
    }
  } else if (role == "user" || role == "developer") {
    prompt += T::kAssistant;
    const bool thinking = a.mode == ThinkingMode::kThinking;
    if ((!a.drop_thinking && thinking) || (a.drop_thinking && thinking && static_cast<int>(index) >= last_user)) {
      prompt += T::kThinkStart;
    } else {
      prompt += T::kThinkEnd;
    }
  }
  return prompt;
}

// merge_tool_messages(): tool results become tool_result blocks of a user message.
std::vector<Json> merge_tool_messages(const Json& messages) {
  std::vector<Json> merged;
  for (const Json& msg : messages) {
    const std::string role = role_of(msg);
    if (role == "tool") {
      Json block = {{"type", "tool_result"},
                    {"tool_use_id", msg.contains("tool_call_id") ? msg["tool_call_id"] : Json("")},
                    {"content", msg.contains("content") ? msg["content"] : Json("")}};
      if (!merged.empty() && role_of(merged.back()) == "user" && merged.back().contains("content_blocks")) {
        merged.back()["content_blocks"].push_back(std::move(block));
      } else {
        merged.push_back({{"role", "user"}, {"content_blocks", Json::array({std::move(block)})}});
      }
    } else if (role == "user") {
      Json text = msg.contains("content") ? msg["content"] : Json("");
      Json block = {{"type", "text"}, {"text", text}};
      if (!merged.empty() && role_of(merged.back()) == "user" && merged.back().contains("content_blocks") &&
          get(merged.back(), "task") == nullptr) {
        merged.back()["content_blocks"].push_back(std::move(block));
      } else {
        Json m = {{"role", "user"}, {"content", text}, {"content_blocks", Json::array({std::move(block)})}};
        for (const char* key : {"task", "wo_eos", "mask"}) {
          if (msg.contains(key)) m[key] = msg[key];
        }
        merged.push_back(std::move(m));
      }
    } else {
      merged.push_back(msg);
    }
  }
  return merged;
}

std::string tool_call_id(const Json& tc) {
  const Json* id = get(tc, "id");
  if (truthy(id) && id->is_string()) return id->get<std::string>();
  const Json* fn = get(tc, "function");
  const Json* fid = fn != nullptr ? get(*fn, "id") : nullptr;
  return fid != nullptr && fid->is_string() ? fid->get<std::string>() : "";
}

// sort_tool_results_by_call_order(): in place.
void sort_tool_results(std::vector<Json>& messages) {
  std::map<std::string, int> order;
  for (Json& msg : messages) {
    const std::string role = role_of(msg);
    if (role == "assistant" && truthy(get(msg, "tool_calls"))) {
      order.clear();
      int idx = 0;
      for (const Json& tc : msg["tool_calls"]) {
        const std::string id = tool_call_id(tc);
        if (!id.empty()) order[id] = idx;
        ++idx;
      }
    } else if (role == "user" && truthy(get(msg, "content_blocks"))) {
      Json& blocks = msg["content_blocks"];
      std::vector<Json> results;
      for (const Json& b : blocks) {
        if (get(b, "type") != nullptr && b["type"] == "tool_result") results.push_back(b);
      }
      if (results.size() <= 1 || order.empty()) continue;
      auto key = [&](const Json& b) {
        const Json* id = get(b, "tool_use_id");
        auto it = id != nullptr && id->is_string() ? order.find(id->get<std::string>()) : order.end();
        return it == order.end() ? 0 : it->second;
      };
      std::stable_sort(results.begin(), results.end(), [&](const Json& x, const Json& y) { return key(x) < key(y); });
      size_t k = 0;
      for (Json& b : blocks) {
        if (get(b, "type") != nullptr && b["type"] == "tool_result") b = results[k++];
      }
    }
  }
}

// _drop_thinking_messages().
std::vector<Json> drop_thinking_messages(const std::vector<Json>& messages) {
  const int last_user = find_last_user_index(messages);
  std::vector<Json> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string role = role_of(messages[i]);
    if (role == "user" || role == "system" || role == "tool" || role == "latest_reminder" ||
        role == "direct_search_results" || static_cast<int>(i) >= last_user) {
      out.push_back(messages[i]);
    } else if (role == "assistant") {
      Json m = messages[i];
      m.erase("reasoning_content");
      out.push_back(std::move(m));
    }
  }
  return out;
}

}  // namespace

Result<std::string> render_tools(const Json& tools) {
  std::string schemas;
  bool first = true;
  for (const Json& tool : tools) {
    const Json* fn = get(tool, "function");
    if (fn == nullptr) return make_error("tools: each tool needs a \"function\" object (OpenAI format)");
    if (!first) schemas += "\n";
    first = false;
    schemas += py_json_dumps(*fn);
  }
  std::string out(kToolsTemplate);
  out.replace(out.find("{tool_schemas}"), std::string_view("{tool_schemas}").size(), schemas);
  return out;
}

Result<std::string> encode_messages(const Json& messages, const ChatEncodeOptions& opts, const Json& context) {
  if (!messages.is_array()) return make_error("chat messages must be a JSON array");
  if (!context.is_null() && !context.is_array()) return make_error("chat context must be a JSON array");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object()) return msg_error(i, "not a JSON object");
  }
  const Json ctx_json = context.is_null() ? Json::array() : context;
  std::vector<Json> ctx = merge_tool_messages(ctx_json);
  std::vector<Json> msgs = merge_tool_messages(messages);
  std::vector<Json> full = ctx;
  full.insert(full.end(), msgs.begin(), msgs.end());
  sort_tool_results(full);
  sort_tool_results(ctx);
  std::string prompt = opts.add_bos && ctx.empty() ? std::string(T::kBos) : std::string();
  bool drop = opts.drop_thinking;
  for (const Json& m : full) drop = drop && !truthy(get(m, "tools"));
  size_t n_render = msgs.size(), ctx_len = ctx.size();
  if (opts.thinking_mode == ThinkingMode::kThinking && drop) {
    full = drop_thinking_messages(full);
    n_render = full.size() - drop_thinking_messages(ctx).size();
    ctx_len = full.size() - n_render;
  }
  const RenderArgs args{opts.thinking_mode, drop, opts.reasoning_effort};
  for (size_t i = 0; i < n_render; ++i) {
    DSV4_TRY(part, render_message(ctx_len + i, full, args));
    prompt += part;
  }
  return prompt;
}

std::vector<std::string> special_tokens_used(std::string_view prompt) {
  std::vector<std::string> out;
  const std::string_view candidates[] = {T::kBos, T::kEos, T::kThinkStart, T::kThinkEnd, T::kDsml, T::kUser,
                                         T::kAssistant, T::kLatestReminder};
  for (std::string_view c : candidates) {
    if (prompt.find(c) != std::string_view::npos) out.emplace_back(c);
  }
  for (const auto& [name, tok] : task_tokens()) {
    if (prompt.find(tok) != std::string_view::npos) out.push_back(tok);
  }
  return out;
}

}  // namespace dsv4::tokenizer
