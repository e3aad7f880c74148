// `dsv4 chat-template -m DIR MESSAGES.json [--thinking] [--tools TOOLS.json]`: the DeepSeek-V4 prompt of a
// conversation (spec §11.2). MESSAGES.json is an array of OpenAI-style messages or {"messages": [...],
// "tools": [...]}; tools attach to the first message when it is system/developer, else to a new empty system
// message in front. Every special token the prompt uses must exist in the model's tokenizer (looked up by
// text); --ids prints the prompt's token ids instead of the text.
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "tokenizer/chat_encoding.h"
#include "tokenizer/ids_json.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::cli {
namespace {

using Json = nlohmann::ordered_json;

struct ChatTemplateArgs {
  std::string model;
  std::string messages_path;
  std::string tools_path;
  std::string effort;
  bool thinking = false;
  bool keep_thinking = false;
  bool no_bos = false;
  bool ids = false;
};

Result<Json> read_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error("cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  Json j = Json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return make_error(path + ": not valid JSON");
  return j;
}

Result<Json> load_messages(const ChatTemplateArgs& a) {
  DSV4_TRY(doc, read_json(a.messages_path));
  Json messages = doc.is_object() && doc.contains("messages") ? doc["messages"] : doc;
  Json tools = doc.is_object() && doc.contains("tools") ? doc["tools"] : Json();
  if (!a.tools_path.empty()) {
    DSV4_TRY(t, read_json(a.tools_path));
    tools = t.is_object() && t.contains("tools") ? t["tools"] : t;
  }
  if (!messages.is_array()) return make_error(a.messages_path + ": expected an array of messages");
  if (!tools.is_null()) {
    if (!tools.is_array()) return make_error("tools: expected an array of OpenAI-format tools");
    const bool first_takes_tools = !messages.empty() && messages[0].is_object() &&
                                   (messages[0].value("role", "") == "system" || messages[0].value("role", "") == "developer");
    if (!first_takes_tools) messages.insert(messages.begin(), Json{{"role", "system"}, {"content", ""}});
    messages[0]["tools"] = tools;
  }
  return messages;
}

int run_chat_template(const ChatTemplateArgs& a) {
  auto fail = [](const std::string& msg) {
    std::cerr << "error: " << msg << "\n";
    return 1;
  };
  auto tok = tokenizer::Tokenizer::load(a.model);
  if (!tok.ok()) return fail(tok.message());
  auto messages = load_messages(a);
  if (!messages.ok()) return fail(messages.message());
  tokenizer::ChatEncodeOptions opts;
  opts.thinking_mode = a.thinking ? tokenizer::ThinkingMode::kThinking : tokenizer::ThinkingMode::kChat;
  opts.drop_thinking = !a.keep_thinking;
  opts.add_bos = !a.no_bos;
  if (a.effort == "max") {
    opts.reasoning_effort = tokenizer::ReasoningEffort::kMax;
  } else if (a.effort == "high") {
    opts.reasoning_effort = tokenizer::ReasoningEffort::kHigh;
  } else if (!a.effort.empty()) {
    return fail("--reasoning-effort must be high or max, got '" + a.effort + "'");
  }
  auto prompt = tokenizer::encode_messages(*messages, opts);
  if (!prompt.ok()) return fail(prompt.message());
  for (const std::string& t : tokenizer::special_tokens_used(*prompt)) {
    if (!tok->token_to_id(t)) return fail("the tokenizer in " + a.model + " has no special token '" + t + "'");
  }
  if (a.ids) {
    std::cout << tokenizer::ids_to_json(tok->encode(*prompt)) << "\n";
  } else {
    std::cout << *prompt;
  }
  return 0;
}

}  // namespace

void register_chat_template(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("chat-template", "render a conversation into the DeepSeek-V4 prompt");
  auto args = std::make_shared<ChatTemplateArgs>();
  cmd->add_option("-m,--model", args->model, "model directory with tokenizer.json")->required();
  cmd->add_option("messages", args->messages_path, "JSON file: array of messages or {messages, tools}")->required();
  cmd->add_option("--tools", args->tools_path, "JSON file with OpenAI-format tools");
  cmd->add_flag("--thinking", args->thinking, "thinking mode (default: chat mode)");
  cmd->add_option("--reasoning-effort", args->effort, "high or max (max adds the prefix in thinking mode)");
  cmd->add_flag("--keep-thinking", args->keep_thinking, "do not drop the reasoning of earlier turns");
  cmd->add_flag("--no-bos", args->no_bos, "leave out the BOS text");
  cmd->add_flag("--ids", args->ids, "print the prompt's token ids instead of its text");
  cmd->callback([args, &ctx] { ctx.exit_code = run_chat_template(*args); });
}

}  // namespace dsv4::cli
