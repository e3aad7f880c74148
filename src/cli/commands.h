// Registration of the `dsv4` subcommands. Each command lives in its own cmd_<name>.cpp and adds itself to
// the CLI11 app; main.cpp calls every register function. A command's callback returns the process exit code
// through `exit_code`.
#pragma once
#include <CLI/CLI.hpp>

namespace dsv4::cli {

struct CommandContext {
  int exit_code = 0;
};

void register_inspect(CLI::App& app, CommandContext& ctx);
void register_logits(CLI::App& app, CommandContext& ctx);
void register_generate(CLI::App& app, CommandContext& ctx);
void register_tokenize(CLI::App& app, CommandContext& ctx);
void register_detokenize(CLI::App& app, CommandContext& ctx);
void register_chat_template(CLI::App& app, CommandContext& ctx);
void register_run(CLI::App& app, CommandContext& ctx);
void register_chat(CLI::App& app, CommandContext& ctx);
void register_serve(CLI::App& app, CommandContext& ctx);

}  // namespace dsv4::cli
