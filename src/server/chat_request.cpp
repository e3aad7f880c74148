// Chat request parsing and prompt rendering (see chat_request.h).
#include "server/chat_request.h"

#include <algorithm>

namespace dsv4::server {
namespace {

ApiError bad(ApiErrorKind kind, const std::string& msg, const std::string& param = "messages") {
  return api_error(kind, msg, param);
}

// Message content as text: a string, or an array of {"type": "text", "text": ...} parts; null/absent -> none.
ApiResult<std::optional<std::string>> read_content(const Json& msg, const std::string& path) {
  const Json* c = field(msg, "content");
  if (c == nullptr) return std::optional<std::string>();
  if (c->is_string()) return std::optional<std::string>(c->get<std::string>());
  if (!c->is_array()) return bad(ApiErrorKind::kInvalidType, "'" + path + ".content' must be a string or an array of parts");
  std::string text;
  for (size_t i = 0; i < c->size(); ++i) {
    const Json& part = (*c)[i];
    const std::string pp = path + ".content[" + std::to_string(i) + "]";
    DSV4_API_TRY(type, opt_string(part, "type", pp + ".type"));
    if (!part.is_object() || !type) return bad(ApiErrorKind::kInvalidType, "'" + pp + "' must be an object with a 'type'");
    if (*type != "text") return bad(ApiErrorKind::kUnsupported, "'" + pp + "': content parts of type '" + *type + "' are not supported (text only)");
    DSV4_API_TRY(t, opt_string(part, "text", pp + ".text"));
    if (!t) return bad(ApiErrorKind::kMissingField, "'" + pp + ".text' is required");
    text += *t;
  }
  return std::optional<std::string>(std::move(text));
}

ApiResult<Json> read_tool_call(const Json& tc, const std::string& path) {
  if (!tc.is_object()) return bad(ApiErrorKind::kInvalidType, "'" + path + "' must be an object");
  DSV4_API_TRY(id, opt_string(tc, "id", path + ".id"));
  DSV4_API_TRY(type, opt_string(tc, "type", path + ".type"));
  if (type && *type != "function") return bad(ApiErrorKind::kInvalidValue, "'" + path + ".type' must be 'function'");
  const Json* fn = field(tc, "function");
  if (fn == nullptr || !fn->is_object()) return bad(ApiErrorKind::kMissingField, "'" + path + ".function' must be an object");
  DSV4_API_TRY(name, opt_string(*fn, "name", path + ".function.name"));
  if (!name || name->empty()) return bad(ApiErrorKind::kMissingField, "'" + path + ".function.name' is required");
  const Json* args = field(*fn, "arguments");
  Json arguments = Json::object();
  if (args != nullptr && args->is_string()) {
    arguments = Json::parse(args->get<std::string>(), nullptr, false);
    if (arguments.is_discarded() || !arguments.is_object())
      return bad(ApiErrorKind::kInvalidValue, "'" + path + ".function.arguments' must be a JSON object encoded as a string");
  } else if (args != nullptr && args->is_object()) {
    arguments = *args;
  } else if (args != nullptr) {
    return bad(ApiErrorKind::kInvalidType, "'" + path + ".function.arguments' must be a string");
  }
  return Json{{"id", id.value_or("")}, {"type", "function"}, {"function", {{"name", *name}, {"arguments", dump(arguments)}}}};
}

ApiResult<Json> read_assistant(const Json& msg, const std::string& path, Json out) {
  DSV4_API_TRY(content, read_content(msg, path));
  out["content"] = content.value_or("");
  for (const char* key : {"reasoning_content", "reasoning"}) {
    DSV4_API_TRY(r, opt_string(msg, key, path + "." + key));
    if (r) out["reasoning_content"] = *r;
  }
  if (const Json* calls = field(msg, "tool_calls")) {
    if (!calls->is_array()) return bad(ApiErrorKind::kInvalidType, "'" + path + ".tool_calls' must be an array");
    Json list = Json::array();
    for (size_t i = 0; i < calls->size(); ++i) {
      DSV4_API_TRY(tc, read_tool_call((*calls)[i], path + ".tool_calls[" + std::to_string(i) + "]"));
      list.push_back(std::move(tc));
    }
    if (!list.empty()) out["tool_calls"] = std::move(list);
  }
  return out;
}

ApiResult<Json> read_message(const Json& msg, size_t index) {
  const std::string path = "messages[" + std::to_string(index) + "]";
  if (!msg.is_object()) return bad(ApiErrorKind::kInvalidType, "'" + path + "' must be an object");
  DSV4_API_TRY(role, opt_string(msg, "role", path + ".role"));
  if (!role) return bad(ApiErrorKind::kMissingField, "'" + path + ".role' is required");
  Json out = {{"role", *role}};
  if (*role == "assistant") return read_assistant(msg, path, std::move(out));
  if (*role != "system" && *role != "developer" && *role != "user" && *role != "tool")
    return bad(ApiErrorKind::kInvalidValue, "'" + path + ".role' '" + *role + "' is not one of system, developer, user, assistant, tool");
  DSV4_API_TRY(content, read_content(msg, path));
  if ((*role == "user" || *role == "developer") && !content)
    return bad(ApiErrorKind::kMissingField, "'" + path + ".content' is required");
  if ((*role == "user" || *role == "developer") && content->empty())
    return bad(ApiErrorKind::kInvalidValue, "'" + path + ".content' must not be empty");
  out["content"] = content.value_or("");
  if (*role == "tool") {
    DSV4_API_TRY(id, opt_string(msg, "tool_call_id", path + ".tool_call_id"));
    if (!id) return bad(ApiErrorKind::kMissingField, "'" + path + ".tool_call_id' is required");
    out["tool_call_id"] = *id;
  }
  return out;
}

ApiResult<Json> read_tools(const Json& body) {
  const Json* tools = field(body, "tools");
  if (tools == nullptr) return Json::array();
  if (!tools->is_array()) return bad(ApiErrorKind::kInvalidType, "'tools' must be an array", "tools");
  if (tools->size() > kMaxTools)
    return bad(ApiErrorKind::kInvalidValue, "'tools' has more than " + std::to_string(kMaxTools) + " tools", "tools");
  for (size_t i = 0; i < tools->size(); ++i) {
    const std::string path = "tools[" + std::to_string(i) + "]";
    const Json& t = (*tools)[i];
    DSV4_API_TRY(type, opt_string(t, "type", path + ".type"));
    if (!t.is_object() || type.value_or("function") != "function")
      return bad(ApiErrorKind::kInvalidValue, "'" + path + "' must be a function tool", "tools");
    const Json* fn = field(t, "function");
    if (fn == nullptr || !fn->is_object()) return bad(ApiErrorKind::kMissingField, "'" + path + ".function' is required", "tools");
    DSV4_API_TRY(name, opt_string(*fn, "name", path + ".function.name"));
    if (!name || name->empty()) return bad(ApiErrorKind::kMissingField, "'" + path + ".function.name' is required", "tools");
    const Json* params = field(*fn, "parameters");
    if (params != nullptr && !params->is_object())
      return bad(ApiErrorKind::kInvalidType, "'" + path + ".function.parameters' must be an object", "tools");
  }
  return *tools;
}

// tool_choice -> whether the tools are rendered.
ApiResult<bool> read_tool_choice(const Json& body, const Json& tools) {
  const Json* tc = field(body, "tool_choice");
  if (tc == nullptr) return !tools.empty();
  std::string name;
  if (tc->is_string()) {
    const std::string s = tc->get<std::string>();
    if (s == "none") return false;
    if (s != "auto" && s != "required")
      return bad(ApiErrorKind::kInvalidValue, "'tool_choice' must be none, auto, required or a function", "tool_choice");
  } else if (tc->is_object() && field(*tc, "function") != nullptr && field(*field(*tc, "function"), "name") != nullptr &&
             field(*field(*tc, "function"), "name")->is_string()) {
    name = (*tc)["function"]["name"].get<std::string>();
    const bool known = std::any_of(tools.begin(), tools.end(), [&](const Json& t) { return t["function"]["name"] == name; });
    if (!known) return bad(ApiErrorKind::kInvalidValue, "'tool_choice' names '" + name + "', which is not in 'tools'", "tool_choice");
  } else {
    return bad(ApiErrorKind::kInvalidType, "'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice");
  }
  if (tools.empty()) return bad(ApiErrorKind::kInvalidValue, "'tool_choice' needs 'tools'", "tool_choice");
  return true;
}

ApiResult<std::optional<Json>> read_response_format(const Json& body) {
  const Json* rf = field(body, "response_format");
  if (rf == nullptr) return std::optional<Json>();
  DSV4_API_TRY(type, opt_string(*rf, "type", "response_format.type"));
  if (!rf->is_object() || !type)
    return bad(ApiErrorKind::kInvalidType, "'response_format' must be an object with a 'type'", "response_format");
  if (*type == "text") return std::optional<Json>();
  if (*type == "json_schema" && (field(*rf, "json_schema") == nullptr || !(*rf)["json_schema"].is_object()))
    return bad(ApiErrorKind::kMissingField, "'response_format.json_schema' is required", "response_format");
  if (*type != "json_object" && *type != "json_schema")
    return bad(ApiErrorKind::kInvalidValue, "'response_format.type' must be text, json_object or json_schema", "response_format");
  return std::optional<Json>(*rf);
}

// `thinking`, chat_template_kwargs and reasoning_effort -> encode options.
ApiStatus read_thinking(const Json& body, tokenizer::ChatEncodeOptions& enc) {
  const Json* kw = field(body, "chat_template_kwargs");
  if (kw != nullptr && !kw->is_object())
    return bad(ApiErrorKind::kInvalidType, "'chat_template_kwargs' must be an object", "chat_template_kwargs");
  const Json none = Json::object();
  const Json& kwargs = kw != nullptr ? *kw : none;
  std::optional<bool> thinking;
  if (const Json* t = field(body, "thinking")) {
    DSV4_API_TRY(type, opt_string(*t, "type", "thinking.type"));
    if (t->is_boolean()) {
      thinking = t->get<bool>();
    } else if (t->is_object() && type && (*type == "enabled" || *type == "disabled")) {
      thinking = *type == "enabled";
    } else {
      return bad(ApiErrorKind::kInvalidValue, "'thinking' must be a boolean or {\"type\": \"enabled\" | \"disabled\"}", "thinking");
    }
  }
  for (const char* key : {"thinking", "enable_thinking"}) {
    DSV4_API_TRY(v, opt_bool(kwargs, key, std::string("chat_template_kwargs.") + key));
    if (!thinking && v) thinking = v;
  }
  DSV4_API_TRY(effort, opt_string(body, "reasoning_effort", "reasoning_effort"));
  DSV4_API_TRY(kw_effort, opt_string(kwargs, "reasoning_effort", "chat_template_kwargs.reasoning_effort"));
  if (!effort) effort = kw_effort;
  if (effort) {
    if (*effort == "max") {
      enc.reasoning_effort = tokenizer::ReasoningEffort::kMax;
    } else if (*effort == "high" || *effort == "medium" || *effort == "low") {
      enc.reasoning_effort = tokenizer::ReasoningEffort::kHigh;
    } else {
      return bad(ApiErrorKind::kInvalidValue, "'reasoning_effort' must be low, medium, high or max", "reasoning_effort");
    }
  }
  enc.thinking_mode = thinking.value_or(effort.has_value()) ? tokenizer::ThinkingMode::kThinking : tokenizer::ThinkingMode::kChat;
  return Done{};
}

ApiStatus read_logprobs(const Json& body, ChatRequest& out) {
  DSV4_API_TRY(lp, opt_bool(body, "logprobs", "logprobs"));
  DSV4_API_TRY(top, opt_int(body, "top_logprobs", "top_logprobs"));
  out.logprobs = lp.value_or(false);
  if (top && (*top < 0 || *top > sampling::kMaxTopLogprobs))
    return api_error(ApiErrorKind::kInvalidValue, "'top_logprobs' = " + std::to_string(*top) + " is out of range [0, 20]", "top_logprobs");
  if (top && !out.logprobs)
    return api_error(ApiErrorKind::kInvalidValue, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
  out.top_logprobs = static_cast<int32_t>(top.value_or(0));
  if (out.logprobs) out.common.params.logprobs = out.top_logprobs;
  return Done{};
}

// Tools and response_format go on the first system message (V4 renders them in that message).
void attach_to_system(Json& messages, const Json& tools, const std::optional<Json>& rf) {
  if (tools.empty() && !rf) return;
  auto sys = std::find_if(messages.begin(), messages.end(), [](const Json& m) { return m["role"] == "system"; });
  if (sys == messages.end()) sys = messages.insert(messages.begin(), Json{{"role", "system"}, {"content", ""}});
  if (!tools.empty()) (*sys)["tools"] = tools;
  if (rf) (*sys)["response_format"] = *rf;
}

}  // namespace

ApiResult<ChatRequest> parse_chat_request(const Json& body, const RequestLimits& lim) {
  ChatRequest req;
  DSV4_API_TRY_STATUS(parse_common(body, lim, req.common));
  const Json* msgs = field(body, "messages");
  if (msgs == nullptr) return bad(ApiErrorKind::kMissingField, "'messages' is required");
  if (!msgs->is_array()) return bad(ApiErrorKind::kInvalidType, "'messages' must be an array");
  if (msgs->empty()) return bad(ApiErrorKind::kInvalidValue, "'messages' must not be empty");
  if (msgs->size() > kMaxMessages)
    return bad(ApiErrorKind::kInvalidValue, "'messages' has more than " + std::to_string(kMaxMessages) + " messages");
  for (size_t i = 0; i < msgs->size(); ++i) {
    DSV4_API_TRY(m, read_message((*msgs)[i], i));
    req.messages.push_back(std::move(m));
  }
  DSV4_API_TRY(tools, read_tools(body));
  DSV4_API_TRY(render_tools, read_tool_choice(body, tools));
  DSV4_API_TRY(rf, read_response_format(body));
  req.n_tools = render_tools ? tools.size() : 0;
  attach_to_system(req.messages, render_tools ? tools : Json::array(), rf);
  DSV4_API_TRY_STATUS(read_thinking(body, req.encode));
  DSV4_API_TRY_STATUS(read_logprobs(body, req));
  return req;
}

ApiResult<std::vector<int32_t>> render_chat_prompt(const ChatRequest& req, const tokenizer::Tokenizer& tok,
                                                   std::string* text) {
  auto prompt = tokenizer::encode_messages(req.messages, req.encode);
  if (!prompt.ok()) return bad(ApiErrorKind::kInvalidValue, prompt.message());
  for (const std::string& special : tokenizer::special_tokens_used(*prompt)) {
    if (!tok.token_to_id(special))
      return api_error(ApiErrorKind::kUnsupported, "the model's tokenizer has no token '" + special + "' needed by this request");
  }
  if (text != nullptr) *text = *prompt;
  return tok.encode(*prompt);
}

}  // namespace dsv4::server
