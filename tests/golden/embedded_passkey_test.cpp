// Long-context retrieval through the compressed sparse attention, on the embedded model (models/dsv4-tiny,
// trained with the pass-key task: its model card). The pass-key cases are train.py's held-out test cases
// (eval/passkey_cases.json: a one-token key 10-99 in a needle at some depth of held-out filler, then "What is
// the pass key? The pass key is"). At 4K tokens the needle lies thousands of tokens before the question, far
// outside the 128-token window, so only the CSA/HCA entries carry it: a wrong compressor, indexer top-k, entry
// visibility or attention over compressed rows makes the greedy answer wrong.
// Control: the same prompt with the key token replaced by another key must answer that other key, so the
// answer is read from the needle, not remembered from training.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/local_model.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;

fs::path tiny_model() { return fs::path(DSV4_TEST_DATA) / ".." / ".." / "models" / "dsv4-tiny"; }

struct PassKeyCase {
  int64_t length = 0;
  double depth = 0;
  std::vector<int32_t> prompt, answer;  // answer = " " token, then the key's token
};

std::vector<PassKeyCase> load_cases(int64_t length) {
  std::ifstream f(tiny_model() / "eval" / "passkey_cases.json");
  std::vector<PassKeyCase> out;
  if (!f) return out;
  for (const auto& c : nlohmann::json::parse(f)) {
    if (c.at("length").get<int64_t>() != length) continue;
    out.push_back({c.at("length").get<int64_t>(), c.at("depth").get<double>(),
                   c.at("prompt").get<std::vector<int32_t>>(), c.at("answer").get<std::vector<int32_t>>()});
  }
  return out;
}

// First position of `tok` in `ids`, or -1.
int64_t find_token(const std::vector<int32_t>& ids, int32_t tok) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == tok) return static_cast<int64_t>(i);
  return -1;
}

TEST(EmbeddedPassKey, RetrievesTheKeyFromBeyondTheWindowAt4K) {
  auto cases = load_cases(4096);
  ASSERT_GE(cases.size(), 5u) << "models/dsv4-tiny/eval/passkey_cases.json has no 4096-token cases";
  auto loaded = runtime::load_local_model(tiny_model(), backend::Numerics{});
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  runtime::LocalModel& m = *loaded.value();
  const int64_t W = m.cfg.sliding_window;
  // One case at each of the depths 0.1, 0.5, 0.9: the shipped weights and default numerics (FP8 KV, FP4 indexer).
  const std::vector<double> depths{0.1, 0.5, 0.9};
  std::vector<double> seen;
  for (size_t i = 0; i < cases.size(); ++i) {
    const PassKeyCase& c = cases[i];
    if (std::find(depths.begin(), depths.end(), c.depth) == depths.end() ||
        std::find(seen.begin(), seen.end(), c.depth) != seen.end())
      continue;
    seen.push_back(c.depth);
    ASSERT_EQ(c.answer.size(), 2u);
    const int32_t key = c.answer[1];
    const int64_t at = find_token(c.prompt, key);
    ASSERT_GE(at, 0) << "the key token is not in the prompt";
    ASSERT_LT(at, static_cast<int64_t>(c.prompt.size()) - 2 * W) << "needle inside the window: not a retrieval case";
    EXPECT_EQ(runtime::generate_greedy(m, c.prompt, 2), c.answer) << "depth " << c.depth << ", key at " << at;

    // Control: another case's key in the same needle.
    const int32_t other = cases[(i + 1) % cases.size()].answer[1];
    if (other == key) continue;
    std::vector<int32_t> swapped = c.prompt;
    for (int32_t& t : swapped)
      if (t == key) t = other;
    EXPECT_EQ(runtime::generate_greedy(m, swapped, 2), (std::vector<int32_t>{c.answer[0], other}))
        << "depth " << c.depth << ": swapped key";
  }
  EXPECT_EQ(seen.size(), depths.size());
}

}  // namespace
}  // namespace dsv4
