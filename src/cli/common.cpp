// Shared CLI helpers; see common.h.
#include "cli/common.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>

#include <nlohmann/json.hpp>

namespace dsv4::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("-m,--model", o.model_dir, "model directory (config.json + safetensors)")->required();
  cmd->add_option("--kv-cache-dtype", o.kv_cache_dtype, "KV cache rounding: fp8 (official), bf16, f32")
      ->capture_default_str();
  cmd->add_option("--indexer-dtype", o.indexer_dtype, "indexer rounding: fp4 (official), bf16, f32")
      ->capture_default_str();
  cmd->add_option("--act-dtype", o.act_dtype, "activation rounding: bf16 (official), f32")->capture_default_str();
}

Result<backend::Numerics> parse_numerics(const ModelOptions& o) {
  backend::Numerics n;
  auto kv = backend::parse_kv_cache_dtype(o.kv_cache_dtype);
  if (!kv.ok()) return kv.error();
  auto ix = backend::parse_indexer_dtype(o.indexer_dtype);
  if (!ix.ok()) return ix.error();
  auto ac = backend::parse_act_dtype(o.act_dtype);
  if (!ac.ok()) return ac.error();
  n.kv_cache = *kv;
  n.indexer = *ix;
  n.act = *ac;
  return n;
}

std::unique_ptr<runtime::LocalModel> load_model_or_report(const ModelOptions& o) {
  auto numerics = parse_numerics(o);
  if (!numerics.ok()) {
    std::cerr << "error: " << numerics.message() << "\n";
    return nullptr;
  }
  auto t0 = std::chrono::steady_clock::now();
  std::cerr << "loading " << o.model_dir << " ...\n";
  auto m = runtime::load_local_model(o.model_dir, *numerics);
  if (!m.ok()) {
    std::cerr << "error: " << m.message() << "\n";
    return nullptr;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "loaded in " << s << " s\n";
  return std::move(m.value());
}

Result<std::vector<int32_t>> read_token_file(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream f(path);
    if (!f) return make_error("cannot open token file " + path);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return make_error(path + ": not valid JSON (expected an array of token ids)");
  if (!j.is_array()) return make_error(path + ": expected a JSON array of token ids");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer() || j[i].get<int64_t>() < 0 ||
        j[i].get<int64_t>() > std::numeric_limits<int32_t>::max())
      return make_error(path + ": element " + std::to_string(i) + " is not a non-negative integer token id");
    ids.push_back(j[i].get<int32_t>());
  }
  return ids;
}

}  // namespace dsv4::cli
