// `dsv4 run [-m DIR] -p "prompt"`: streams a completion of a raw text prompt through the serving engine.
#include <iostream>
#include <iterator>

#include "cli/common.h"
#include "cli/commands.h"
#include "cli/generation.h"
#include "cli/interrupt.h"

namespace dsv4::cli {

void register_run(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("run", "stream a completion of a text prompt (Ctrl-C stops the generation)");
  static EngineFlags ef;
  static SamplingFlags sf;
  static std::string prompt, prompt_ids;
  static bool no_bos = false;
  add_engine_options(cmd, ef);
  add_sampling_options(cmd, sf);
  cmd->add_option("-p,--prompt", prompt, "prompt text (read from stdin when omitted)");
  cmd->add_flag("--no-bos", no_bos, "do not start the prompt with the begin-of-sentence token");
  cmd->add_option("--prompt-ids", prompt_ids, "prompt as a JSON array of token ids (models without a tokenizer; "
                                              "the output is then printed as ids)");
  cmd->callback([&ctx] {
    ctx.exit_code = 1;
    std::vector<int32_t> ids;
    if (!prompt_ids.empty()) {
      auto r = read_token_file(prompt_ids);
      if (!r.ok()) {
        std::cerr << "error: " << r.message() << "\n";
        return;
      }
      ids = std::move(r.value());
    } else if (prompt.empty()) {
      prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
    auto engine = create_engine_or_report(ef);
    if (!engine) return;
    const tokenizer::Tokenizer* tok = engine->tokenizer();
    if (prompt_ids.empty()) {
      if (!tok) {
        std::cerr << "error: " << ef.model.model_dir << " has no tokenizer.json; give the prompt as token ids "
                  << "with --prompt-ids FILE\n";
        return;
      }
      if (!no_bos && tok->bos_id()) ids.push_back(*tok->bos_id());
      tok->encode(prompt, ids);
      std::cout << prompt << std::flush;
    }
    install_interrupt_handler();
    GenerationOutcome o = stream_generation(*engine, std::move(ids), to_params(sf), true, true, !tok);
    ctx.exit_code = o.ok ? 0 : 1;
  });
}

}  // namespace dsv4::cli
