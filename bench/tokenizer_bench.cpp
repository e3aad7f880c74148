// Single-threaded encode throughput of the dsv4 tokenizer on the golden corpus (tests/data/tokenizer/
// golden.jsonl: prose in 27 languages, code, numbers, whitespace, emoji, special tokens, random Unicode and
// three long inputs), measured exactly like tools/gen_tokenizer_goldens.py measures HF tokenizers: MB/s of
// UTF-8 input, each input encoded separately ("per_input") and the inputs joined by "\n" ("joined"), three
// runs each. Prints one JSON object.
// Usage: tokenizer_bench MODEL_DIR GOLDEN_JSONL
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR GOLDEN_JSONL\n", argv[0]);
    return 2;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto tok = dsv4::tokenizer::Tokenizer::load(argv[1]);
  if (!tok.ok()) {
    std::fprintf(stderr, "error: %s\n", tok.message().c_str());
    return 1;
  }
  const double load_s = seconds_since(t0);
  std::vector<std::string> texts;
  std::ifstream f(argv[2]);
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("text")) texts.push_back(j["text"].get<std::string>());
  }
  size_t bytes = 0;
  std::string joined;
  for (size_t i = 0; i < texts.size(); ++i) {
    bytes += texts[i].size();
    if (i > 0) joined += "\n";
    joined += texts[i];
  }
  nlohmann::json res = {{"corpus_bytes", bytes}, {"n_inputs", texts.size()}, {"load_s", load_s}};
  size_t n_ids = 0;
  for (const char* mode : {"per_input", "joined"}) {
    std::vector<double> times;
    for (int run = 0; run < 3; ++run) {
      t0 = std::chrono::steady_clock::now();
      n_ids = 0;
      if (std::string(mode) == "per_input") {
        for (const auto& t : texts) n_ids += tok->encode(t).size();
      } else {
        n_ids = tok->encode(joined).size();
      }
      times.push_back(seconds_since(t0));
    }
    double best = times[0];
    for (double t : times) best = std::min(best, t);
    res[mode] = {{"first_mb_s", bytes / times[0] / 1e6}, {"best_mb_s", bytes / best / 1e6}, {"seconds", times},
                 {"n_ids", n_ids}};
  }
  std::printf("%s\n", res.dump(1).c_str());
  return 0;
}
