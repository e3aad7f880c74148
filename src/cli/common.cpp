// Shared CLI helpers; see common.h.
#include "cli/common.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/options.h"
#include "kv/memory_budget.h"

namespace dsv4::cli {

namespace {
void add_device_option(CLI::App* cmd, std::string& device) {
  cmd->add_option("--device", device, "backend: cpu (reference) or cuda (GPU; needs a -DDSV4_CUDA=ON build)")
      ->capture_default_str();
}

// Weight upload progress on stderr, a line per ~10%.
runtime::LoadProgress upload_progress() {
  return [last = -1](int64_t done, int64_t total) mutable {
    int pct = total > 0 ? static_cast<int>(100 * done / total) : 100;
    if (pct / 10 == last / 10 && pct != 100) return;
    if (pct == last) return;
    last = pct;
    std::cerr << "uploading weights to the GPU: " << pct << "% (" << (done >> 20) << " / " << (total >> 20)
              << " MiB)\n";
  };
}
}  // namespace

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("-m,--model", o.model_dir, "model directory (config.json + safetensors)")->required();
  cmd->add_option("--kv-cache-dtype", o.kv_cache_dtype, "KV cache rounding: fp8 (official), bf16, f32")
      ->capture_default_str();
  cmd->add_option("--indexer-dtype", o.indexer_dtype, "indexer rounding: fp4 (official), bf16, f32")
      ->capture_default_str();
  cmd->add_option("--act-dtype", o.act_dtype, "activation rounding: bf16 (official), f32")->capture_default_str();
  add_device_option(cmd, o.device);
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
  auto device = runtime::parse_device(o.device);
  if (!device.ok()) {
    std::cerr << "error: " << device.message() << "\n";
    return nullptr;
  }
  auto t0 = std::chrono::steady_clock::now();
  std::cerr << "loading " << o.model_dir << " ...\n";
  auto m = runtime::load_local_model(o.model_dir, *numerics, *device, upload_progress());
  if (!m.ok()) {
    std::cerr << "error: " << m.message() << "\n";
    return nullptr;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "loaded in " << s << " s\n";
  return std::move(m.value());
}

void add_engine_options(CLI::App* cmd, EngineFlags& f) {
  cmd->add_option("-m,--model", f.model.model_dir, "model directory (default: the embedded model)");
  cmd->add_option("--kv-cache-dtype", f.model.kv_cache_dtype, "KV cache rounding: fp8 (official), bf16, f32")
      ->capture_default_str();
  cmd->add_option("--indexer-dtype", f.model.indexer_dtype, "indexer rounding: fp4 (official), bf16, f32")
      ->capture_default_str();
  cmd->add_option("--act-dtype", f.model.act_dtype, "activation rounding: bf16 (official), f32")->capture_default_str();
  add_device_option(cmd, f.model.device);
  cmd->add_option("--kv-memory", f.kv_memory,
                  "memory for the paged KV cache: bytes (1GiB, 512MiB, 1073741824) or a share of free memory (50%: of the "
                  "host's, or with --device cuda of the GPU's left after the weights)")
      ->capture_default_str();
  cmd->add_option("--max-running", f.max_running, "sequences decoded at once")->capture_default_str();
  cmd->add_option("--max-step-tokens", f.max_tokens_per_step, "token budget of one engine step")->capture_default_str();
  cmd->add_option("--max-prefill-chunk", f.max_prefill_chunk, "prompt tokens of one request per step")
      ->capture_default_str();
  cmd->add_option("--max-model-len", f.max_model_len, "maximum prompt + output tokens (0: model/KV limit)");
  cmd->add_flag("--enable-prefix-caching", f.prefix_caching,
                "reuse the KV cache of prompts' common prefixes, in whole pages of 256 tokens");
  cmd->add_option("--prefix-cache-share", f.prefix_cache_share,
                  "with --enable-prefix-caching: share of the KV memory (after the running sequences' window and state) "
                  "that cached pages' windows and compressor snapshots may use")
      ->capture_default_str()->check(CLI::Range(0.0, 0.95));
}

std::string default_model_dir() {
  if (!options().default_model.empty()) return options().default_model;
  return DSV4_DEFAULT_MODEL_DIR;
}

Result<int64_t> parse_budget(const std::string& s) {
  if (!s.empty() && s.back() == '%') {
    char* end = nullptr;
    double pct = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() - 1) return make_error("\"" + s + "\" is not a percentage (example: 50%)");
    return kv::resolve_budget(kv::BudgetFraction{pct / 100.0}, runtime::free_memory_bytes(Device::Host));
  }
  return parse_bytes(s);
}

Result<int64_t> parse_bytes(const std::string& s) {
  static const std::pair<const char*, double> units[] = {{"GiB", 1073741824.0}, {"MiB", 1048576.0}, {"KiB", 1024.0},
                                                        {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1.0}};
  double mult = 1.0;
  std::string num = s;
  for (auto& [u, m] : units) {
    std::string us(u);
    if (num.size() > us.size() && num.compare(num.size() - us.size(), us.size(), us) == 0) {
      num.resize(num.size() - us.size());
      mult = m;
      break;
    }
  }
  char* end = nullptr;
  double v = std::strtod(num.c_str(), &end);
  if (num.empty() || end != num.c_str() + num.size() || !(v > 0) || v * mult > 9e18)
    return make_error("\"" + s + "\" is not a memory size (examples: 1GiB, 512MiB, 1073741824)");
  return static_cast<int64_t>(v * mult);
}

std::unique_ptr<runtime::Engine> create_engine_or_report(EngineFlags& f) {
  if (f.model.model_dir.empty()) f.model.model_dir = default_model_dir();
  auto numerics = parse_numerics(f.model);
  auto bytes = parse_budget(f.kv_memory);
  auto device = runtime::parse_device(f.model.device);
  if (!numerics.ok() || !bytes.ok() || !device.ok()) {
    std::cerr << "error: "
              << (!numerics.ok() ? numerics.message() : !bytes.ok() ? bytes.message() : device.message()) << "\n";
    return nullptr;
  }
  // "N%" on a device: a share of the device memory left after the weights, resolved by the engine.
  double kv_fraction = 0;
  if (*device != Device::Host && !f.kv_memory.empty() && f.kv_memory.back() == '%')
    kv_fraction = std::strtod(f.kv_memory.c_str(), nullptr) / 100.0;
  auto t0 = std::chrono::steady_clock::now();
  std::cerr << "loading " << f.model.model_dir << " ...\n";
  auto e = runtime::Engine::create({.model_dir = f.model.model_dir, .numerics = *numerics, .device = *device,
                                    .progress = upload_progress(), .kv_memory_bytes = *bytes,
                                    .kv_memory_fraction = kv_fraction,
                                    .max_running = f.max_running, .max_tokens_per_step = f.max_tokens_per_step,
                                    .max_prefill_chunk = f.max_prefill_chunk, .max_model_len = f.max_model_len,
                                    .prefix_caching = f.prefix_caching, .prefix_cache_share = f.prefix_cache_share});
  if (!e.ok()) {
    std::cerr << "error: " << e.message() << "\n";
    return nullptr;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "loaded in " << s << " s\n";
  return std::move(e.value());
}

std::unique_ptr<runtime::LocalModel> load_model_and_tokens(const ModelOptions& o, const std::string& tokens_path,
                                                           std::vector<int32_t>& ids) {
  auto read = read_token_file(tokens_path);
  if (!read.ok()) {
    std::cerr << "error: " << read.message() << "\n";
    return nullptr;
  }
  auto m = load_model_or_report(o);
  if (!m) return nullptr;
  if (auto s = runtime::validate_tokens(m->cfg, *read); !s.ok()) {
    std::cerr << "error: " << tokens_path << ": " << s.message() << "\n";
    return nullptr;
  }
  ids = std::move(read.value());
  return m;
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
