// `dsv4 chat [-m DIR]`: interactive multi-turn chat with the DeepSeek-V4 chat encoding. Commands: /help,
// /reset, /think, /nothink, /system TEXT, /quit. Ctrl-C stops the current answer, not the program.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/commands.h"
#include "cli/generation.h"
#include "cli/interrupt.h"
#include "tokenizer/chat_encoding.h"
#include "tokenizer/chat_parser.h"

namespace dsv4::cli {
namespace {

const char* kHelp =
    "commands:\n"
    "  /help          this text\n"
    "  /reset         forget the conversation\n"
    "  /think         thinking mode on (the model reasons before answering)\n"
    "  /nothink       thinking mode off (chat mode, the default)\n"
    "  /system TEXT   set the system prompt (and reset)\n"
    "  /quit          leave (also Ctrl-D)\n"
    "Ctrl-C stops the answer being generated.\n";

struct ChatSession {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::string system;
  bool thinking = false;
  void reset() {
    messages = nlohmann::ordered_json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  }
};

// Handles a slash command; returns false to quit.
bool handle_command(const std::string& line, ChatSession& s) {
  if (line == "/quit" || line == "/exit") return false;
  if (line == "/help") {
    std::cout << kHelp;
  } else if (line == "/reset") {
    s.reset();
    std::cout << "[conversation reset]\n";
  } else if (line == "/think" || line == "/nothink") {
    s.thinking = line == "/think";
    std::cout << "[thinking mode " << (s.thinking ? "on" : "off") << "]\n";
  } else if (line.rfind("/system", 0) == 0) {
    s.system = line.size() > 8 ? line.substr(8) : "";
    s.reset();
    std::cout << "[system prompt set; conversation reset]\n";
  } else {
    std::cout << "unknown command " << line << " (try /help)\n";
  }
  return true;
}

}  // namespace

void register_chat(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("chat", "interactive multi-turn chat (/help for commands, Ctrl-C stops an answer)");
  static EngineFlags ef;
  static SamplingFlags sf;
  static bool think = false;
  add_engine_options(cmd, ef);
  add_sampling_options(cmd, sf);
  cmd->add_flag("--thinking", think, "start in thinking mode");
  cmd->callback([&ctx] {
    ctx.exit_code = 1;
    auto engine = create_engine_or_report(ef);
    if (!engine) return;
    const tokenizer::Tokenizer* tok = engine->tokenizer();
    if (!tok) {
      std::cerr << "error: " << ef.model.model_dir << " has no tokenizer.json\n";
      return;
    }
    install_interrupt_handler();
    ChatSession s;
    s.thinking = think;
    s.reset();
    std::cout << "dsv4 chat — /help for commands, Ctrl-D to leave\n";
    std::string line;
    for (;;) {
      std::cout << "> " << std::flush;
      if (!std::getline(std::cin, line)) break;
      if (line.empty()) continue;
      if (line[0] == '/') {
        if (!handle_command(line, s)) break;
        continue;
      }
      s.messages.push_back({{"role", "user"}, {"content", line}});
      tokenizer::ChatEncodeOptions opts;
      opts.thinking_mode = s.thinking ? tokenizer::ThinkingMode::kThinking : tokenizer::ThinkingMode::kChat;
      auto prompt = tokenizer::encode_messages(s.messages, opts);
      if (!prompt.ok()) {
        std::cerr << "error: " << prompt.message() << "\n";
        s.messages.erase(s.messages.end() - 1);
        continue;
      }
      // Special tokens stay in the text (</think> separates reasoning from the answer) so it can be parsed.
      GenerationOutcome o = stream_generation(*engine, tok->encode(*prompt), to_params(sf), true, false);
      if (!o.ok) {
        s.messages.erase(s.messages.end() - 1);
        continue;
      }
      tokenizer::ParsedMessage pm = tokenizer::parse_completion(o.text, opts.thinking_mode);
      nlohmann::ordered_json reply{{"role", "assistant"}, {"content", pm.content}};
      if (!pm.reasoning_content.empty()) reply["reasoning_content"] = pm.reasoning_content;
      s.messages.push_back(reply);
    }
    std::cout << "\n";
    ctx.exit_code = 0;
  });
}

}  // namespace dsv4::cli
