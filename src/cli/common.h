// Helpers shared by the dsv4 subcommands: the model/numerics options every model command takes, reading a
// JSON array of token ids, and loading the model with progress on stderr.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "runtime/local_model.h"

namespace dsv4::cli {

struct ModelOptions {
  std::string model_dir;
  std::string kv_cache_dtype = "fp8";
  std::string indexer_dtype = "fp4";
  std::string act_dtype = "bf16";
};

// Adds -m/--model and the numerics flags to a subcommand.
void add_model_options(CLI::App* cmd, ModelOptions& o);
Result<backend::Numerics> parse_numerics(const ModelOptions& o);
// Loads the model, printing progress and errors to stderr; nullptr on failure.
std::unique_ptr<runtime::LocalModel> load_model_or_report(const ModelOptions& o);
// Reads a JSON array of integers from a file ("-" = stdin).
Result<std::vector<int32_t>> read_token_file(const std::string& path);

}  // namespace dsv4::cli
