// `dsv4` command-line entry point: parses the subcommand and runs it. Every subcommand has --help.
#include <cstdio>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"dsv4: inference engine for DeepSeek-V4 models"};
  app.require_subcommand(1);
  dsv4::cli::CommandContext ctx;
  dsv4::cli::register_run(app, ctx);
  dsv4::cli::register_chat(app, ctx);
  dsv4::cli::register_serve(app, ctx);
  dsv4::cli::register_inspect(app, ctx);
  dsv4::cli::register_logits(app, ctx);
  dsv4::cli::register_generate(app, ctx);
  dsv4::cli::register_tokenize(app, ctx);
  dsv4::cli::register_detokenize(app, ctx);
  dsv4::cli::register_chat_template(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return ctx.exit_code;
}
