// Exactness against HF tokenizers: every case of tests/data/tokenizer/golden.jsonl (encoded by
// tools/gen_tokenizer_goldens.py with tokenizers 0.23.2) must give the same ids, and decode must give back
// what HF's decode gives (the text itself for every case in the file). Run with both regex engines.
#include <gtest/gtest.h>

#include "tokenizer_test_support.h"

namespace dsv4::tokenizer::testing {
namespace {

std::string show(const std::vector<int32_t>& v, size_t around) {
  std::string s;
  size_t lo = around > 5 ? around - 5 : 0;
  for (size_t i = lo; i < v.size() && i < around + 5; ++i) s += std::to_string(v[i]) + " ";
  return s;
}

void check_golden(const Tokenizer& tok, const std::filesystem::path& file, size_t min_cases) {
  auto cases = load_golden(file);
  ASSERT_GE(cases.size(), min_cases) << file;
  size_t failures = 0;
  for (const GoldenCase& c : cases) {
    auto ids = tok.encode(c.text);
    if (ids != c.ids) {
      size_t k = 0;
      while (k < ids.size() && k < c.ids.size() && ids[k] == c.ids[k]) ++k;
      ADD_FAILURE() << c.name << ": ids differ at " << k << ": got [" << show(ids, k) << "] want [" << show(c.ids, k)
                    << "]";
      if (++failures > 20) break;
      continue;
    }
    auto text = tok.decode(ids);
    ASSERT_TRUE(text.ok()) << text.message();
    EXPECT_EQ(*text, c.decoded) << c.name;
  }
}

TEST(TokenizerGolden, DeepseekV3MatchesHf) {
  DSV4_REQUIRE_DEEPSEEK_TOKENIZER();
  const Tokenizer* tok = deepseek_v3();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->n_handwritten_splits(), 3);
  check_golden(*tok, data_dir() / "golden.jsonl", 5000);
}

TEST(TokenizerGolden, DeepseekV3Pcre2EngineMatchesHf) {
  DSV4_REQUIRE_DEEPSEEK_TOKENIZER();
  const Tokenizer* tok = deepseek_v3(RegexEngine::kPcre2);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->n_handwritten_splits(), 0);
  check_golden(*tok, data_dir() / "golden.jsonl", 5000);
}

TEST(TokenizerGolden, V4FixtureMatchesHf) {
  DSV4_REQUIRE_DEEPSEEK_TOKENIZER();
  const Tokenizer* tok = deepseek_v4_fixture();
  ASSERT_NE(tok, nullptr);
  check_golden(*tok, data_dir() / "v4_fixture.jsonl", 10);
}

}  // namespace
}  // namespace dsv4::tokenizer::testing
