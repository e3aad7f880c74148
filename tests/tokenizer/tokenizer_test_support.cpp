// Loading of the reference tokenizers and golden files for the tokenizer tests (see tokenizer_test_support.h).
#include "tokenizer_test_support.h"

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

namespace dsv4::tokenizer::testing {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const Tokenizer* deepseek_v3(RegexEngine engine) {
  static std::mutex mu;
  static std::map<RegexEngine, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (!have_deepseek_v3()) return nullptr;
  auto& slot = cache[engine];
  if (!slot) {
    auto t = Tokenizer::load(deepseek_v3_dir(), LoadOptions{.regex_engine = engine});
    if (!t.ok()) {
      ADD_FAILURE() << t.message();
      return nullptr;
    }
    slot = std::make_unique<Tokenizer>(std::move(t).value());
  }
  return slot.get();
}

const Tokenizer* deepseek_v4_fixture() {
  static std::mutex mu;
  static std::unique_ptr<Tokenizer> t;
  std::lock_guard<std::mutex> lock(mu);
  if (t) return t.get();
  if (!have_deepseek_v3()) return nullptr;
  auto j = nlohmann::json::parse(read_text(deepseek_v3_dir() / "tokenizer.json"));
  const std::map<int, std::string> known = {
      {128821, "<think>"},       {128822, "</think>"},         {128825, "｜DSML｜"},    {128828, "<｜latest_reminder｜>"},
      {128829, "<｜action｜>"},  {128830, "<｜query｜>"},       {128831, "<｜authority｜>"}, {128832, "<｜domain｜>"},
      {128836, "<｜title｜>"},   {128844, "<｜extracted_url｜>"}, {128845, "<｜read_url｜>"}};
  for (int id = 128815; id < 128846; ++id) {
    auto it = known.find(id);
    std::string content = it != known.end() ? it->second : "<｜v4_reserved_" + std::to_string(id) + "｜>";
    j["added_tokens"].push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  const std::string cfg = read_text(data_dir() / "v4_tokenizer_config.json");
  auto r = Tokenizer::from_json(j.dump(), cfg, "{\"vocab_size\": 129280}");
  if (!r.ok()) {
    ADD_FAILURE() << r.message();
    return nullptr;
  }
  t = std::make_unique<Tokenizer>(std::move(r).value());
  return t.get();
}

std::vector<GoldenCase> load_golden(const std::filesystem::path& jsonl) {
  std::vector<GoldenCase> out;
  std::ifstream f(jsonl);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j.contains("header")) continue;
    GoldenCase c;
    c.name = j["name"].get<std::string>();
    c.text = j["text"].get<std::string>();
    c.ids = j["ids"].get<std::vector<int32_t>>();
    c.decoded = j.contains("decoded") ? j["decoded"].get<std::string>() : c.text;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace dsv4::tokenizer::testing
