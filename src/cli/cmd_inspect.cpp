// `dsv4 inspect -m DIR`: config summary, layer schedule, parameter count and KV bytes per token; with
// --weights also binds the checkpoint and reports its naming and tensor formats.
#include <iostream>

#include "cli/commands.h"
#include "model/config.h"
#include "model/config_summary.h"
#include "weights/loader.h"

namespace dsv4::cli {

void register_inspect(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("inspect", "print the model's config summary, layer schedule, parameters and KV bytes");
  static std::string dir;
  static bool check_weights = false;
  cmd->add_option("-m,--model", dir, "model directory (config.json [+ safetensors])")->required();
  cmd->add_flag("--weights", check_weights, "also load and validate the checkpoint");
  cmd->callback([&ctx] {
    auto cfg = model::load_config(dir);
    if (!cfg.ok()) {
      std::cerr << "error: " << cfg.message() << "\n";
      ctx.exit_code = 1;
      return;
    }
    std::cout << model::format_summary(*cfg);
    if (check_weights) {
      auto w = weights::load_weights(dir, *cfg);
      if (!w.ok()) {
        std::cerr << "error: " << w.message() << "\n";
        ctx.exit_code = 1;
        return;
      }
      std::cout << "checkpoint: ok (" << w->naming << " tensor names)\n";
    }
  });
}

}  // namespace dsv4::cli
