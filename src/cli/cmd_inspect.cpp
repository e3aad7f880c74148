// `dsv4 inspect -m DIR`: config summary, layer schedule, parameter count and KV bytes per token; with
// --weights also binds the checkpoint and reports its naming and tensor formats.
#include <iostream>

#include "cli/common.h"
#include "cli/commands.h"
#include "kv/memory_budget.h"
#include "runtime/paged_cache.h"
#include "model/config.h"
#include "model/config_summary.h"
#include "weights/loader.h"

namespace dsv4::cli {

namespace {

// Pages and tokens that fit in a KV budget, for the deployment rows (FP8 main rows everywhere, window rings
// included, + MXFP4 indexer, spec §9.2) and for the rows the engine stores with the default numerics (packed
// FP8 window and compressed rows, MXFP4 indexer rows).
bool report_kv_budget(const model::ModelConfig& cfg, const std::string& budget, const kv::Concurrency& c) {
  auto bytes = parse_budget(budget);
  if (!bytes.ok()) {
    std::cerr << "error: --kv-memory: " << bytes.message() << "\n";
    return false;
  }
  kv::CacheShape fp8 = runtime::cache_shape(cfg);
  model::KvCacheBytes b = model::kv_cache_bytes(cfg, model::KvRowFormat::Fp8, model::IndexerRowFormat::Fp4);
  fp8.kv_row_bytes = b.kv_row;
  fp8.window_row_bytes = 0;  // window rows as FP8 rows too
  fp8.indexer_row_bytes = b.indexer_row;
  const backend::Numerics official{};
  const RowFormat kv_format = runtime::kv_row_format(official, cfg), index_format = runtime::index_row_format(official);
  const std::string engine = std::string(kv_format == RowFormat::Fp8Kv ? "FP8" : "f32") +
                             " window and compressed KV rows + " +
                             (index_format == RowFormat::Mxfp4 ? "MXFP4" : "f32") +
                             " indexer rows (this build, default numerics)";
  std::pair<std::string, kv::CacheShape> shapes[] = {
      {"FP8 KV rows + MXFP4 indexer rows (deployment)", fp8},
      {engine, runtime::cache_shape(cfg, index_format, kv_format)}};
  for (auto& [name, shape] : shapes) {
    auto layout = kv::make_layout(shape);
    if (!layout.ok()) {
      std::cerr << "error: " << layout.message() << "\n";
      return false;
    }
    auto sizes = kv::size_pools(*layout, *bytes, c);
    std::cout << "\nKV budget " << budget << ", " << name << ":\n";
    if (!sizes.ok()) {
      std::cout << "  does not fit: " << sizes.message() << "\n";
      continue;
    }
    std::cout << kv::describe(*layout, *sizes, c);
  }
  return true;
}

}  // namespace

void register_inspect(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("inspect", "print the model's config summary, layer schedule, parameters and KV bytes");
  static std::string dir;
  static bool check_weights = false;
  static std::string kv_memory;
  static int64_t max_seqs = 64, max_step_tokens = 8192;
  cmd->add_option("-m,--model", dir, "model directory (config.json [+ safetensors])")->required();
  cmd->add_flag("--weights", check_weights, "also load and validate the checkpoint");
  cmd->add_option("--kv-memory", kv_memory, "report how many tokens fit in this KV budget (e.g. 80GiB)");
  cmd->add_option("--max-seqs", max_seqs, "sequences the window/state pools are sized for")->capture_default_str();
  cmd->add_option("--max-step-tokens", max_step_tokens, "tokens per engine step the pools are sized for")
      ->capture_default_str();
  cmd->callback([&ctx] {
    auto cfg = model::load_config(dir);
    if (!cfg.ok()) {
      std::cerr << "error: " << cfg.message() << "\n";
      ctx.exit_code = 1;
      return;
    }
    std::cout << model::format_summary(*cfg);
    if (!kv_memory.empty() && !report_kv_budget(*cfg, kv_memory, {.max_seqs = max_seqs, .max_step_tokens = max_step_tokens})) {
      ctx.exit_code = 1;
      return;
    }
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
