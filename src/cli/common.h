// Helpers shared by the dsv4 subcommands: the model/numerics options every model command takes, reading a
// JSON array of token ids, and loading the model with progress on stderr.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "runtime/engine.h"
#include "runtime/local_model.h"

namespace dsv4::cli {

struct ModelOptions {
  std::string model_dir;
  std::string kv_cache_dtype = "fp8";
  std::string indexer_dtype = "fp4";
  std::string act_dtype = "bf16";
  std::string device = "cpu";
};

// Adds -m/--model and the numerics flags to a subcommand.
void add_model_options(CLI::App* cmd, ModelOptions& o);
Result<backend::Numerics> parse_numerics(const ModelOptions& o);
// Loads the model, printing progress and errors to stderr; nullptr on failure.
std::unique_ptr<runtime::LocalModel> load_model_or_report(const ModelOptions& o);
// Options of the commands that run the serving engine (run, chat, serve).
struct EngineFlags {
  ModelOptions model;
  std::string kv_memory = "1GiB";
  int64_t max_running = 16;
  int64_t max_tokens_per_step = 512;
  int64_t max_prefill_chunk = 256;
  int64_t max_model_len = 0;
  bool prefix_caching = false;
  double prefix_cache_share = 0.25;
};
// Adds the engine flags; -m is optional and defaults to the embedded model.
void add_engine_options(CLI::App* cmd, EngineFlags& f);
// The embedded default model directory (models/dsv4-tiny of the source tree, or $DSV4_MODEL).
std::string default_model_dir();
// Parses "1GiB", "512MiB", "2e9", "1073741824" into bytes.
Result<int64_t> parse_bytes(const std::string& s);
// A KV budget: bytes as parse_bytes, or "N%" of the available memory.
Result<int64_t> parse_budget(const std::string& s);
// Creates the engine (progress and errors on stderr); nullptr on failure.
std::unique_ptr<runtime::Engine> create_engine_or_report(EngineFlags& f);
// Reads the token file and loads the model, checking the ids against its vocabulary; reports errors on
// stderr and returns nullptr on failure.
std::unique_ptr<runtime::LocalModel> load_model_and_tokens(const ModelOptions& o, const std::string& tokens_path,
                                                           std::vector<int32_t>& ids);
// Reads a JSON array of integers from a file ("-" = stdin).
Result<std::vector<int32_t>> read_token_file(const std::string& path);

}  // namespace dsv4::cli
