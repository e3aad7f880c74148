// `dsv4 generate -m DIR --tokens ids.json -n N`: greedy continuation, printed as a JSON array of ids.
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/commands.h"

namespace dsv4::cli {

void register_generate(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("generate", "greedy-decode N tokens after a prompt of token ids");
  static ModelOptions mo;
  static std::string tokens_path;
  static int64_t n_new = 16;
  add_model_options(cmd, mo);
  cmd->add_option("--tokens", tokens_path, "JSON array of prompt token ids (- for stdin)")->required();
  cmd->add_option("-n,--n-tokens", n_new, "number of tokens to generate")->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->callback([&ctx] {
    ctx.exit_code = 1;
    std::vector<int32_t> ids;
    auto m = load_model_and_tokens(mo, tokens_path, ids);
    if (!m) return;
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> out = runtime::generate_greedy(*m, ids, n_new);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << nlohmann::json(out).dump() << "\n";
    std::cerr << ids.size() << " prompt + " << out.size() << " generated tokens in " << s << " s ("
              << static_cast<double>(out.size()) / s << " tok/s incl. prefill)\n";
    ctx.exit_code = 0;
  });
}

}  // namespace dsv4::cli
