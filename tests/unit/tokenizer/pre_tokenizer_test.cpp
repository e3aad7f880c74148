// Pre-tokenizer unit tests. Expected pieces come from HF tokenizers 0.23.2 (its pre_tokenize_str on the same
// pre-tokenizer JSON, via the npm binding); the regex translation and the hand-written DeepSeek matchers are
// compared with PCRE2 on random strings.
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

std::vector<std::string> pieces(const PreTokenizer& pt, std::string_view text) {
  std::vector<Span> spans;
  pt.split(text, spans);
  std::vector<std::string> out;
  for (const Span& s : spans) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

PreTokenizer make(std::vector<PreTokenizerStep> steps, RegexEngine engine = RegexEngine::kAuto) {
  auto pt = PreTokenizer::create(steps, engine);
  EXPECT_TRUE(pt.ok()) << pt.message();
  return std::move(pt).value();
}

TEST(PreTokenizer, SplitBehavioursMatchHf) {
  using V = std::vector<std::string>;
  struct Case {
    SplitBehavior b;
    bool invert;
    V want;
  };
  const Case cases[] = {
      {SplitBehavior::kRemoved, false, V{"a", "b", "c"}},
      {SplitBehavior::kRemoved, true, V{"-", "-", "-", "-", "-", "-", "-"}},
      {SplitBehavior::kIsolated, false, V{"-", "a", "-", "-", "b", "-", "c", "-", "-", "-"}},
      {SplitBehavior::kMergedWithPrevious, false, V{"-", "a-", "-", "b-", "c-", "-", "-"}},
      {SplitBehavior::kMergedWithPrevious, true, V{"-a", "-", "-b", "-c", "-", "-", "-"}},
      {SplitBehavior::kMergedWithNext, false, V{"-a", "-", "-b", "-c", "-", "-", "-"}},
      {SplitBehavior::kMergedWithNext, true, V{"-", "a-", "-", "b-", "c-", "-", "-"}},
      {SplitBehavior::kContiguous, false, V{"-", "a", "--", "b", "-", "c", "---"}},
      {SplitBehavior::kContiguous, true, V{"-", "a", "--", "b", "-", "c", "---"}},
  };
  for (const Case& c : cases) {
    PreTokenizer pt = make({SplitStep{"-", false, c.b, c.invert}});
    EXPECT_EQ(pieces(pt, "-a--b-c---"), c.want) << static_cast<int>(c.b) << " invert " << c.invert;
  }
}

TEST(PreTokenizer, Gpt2ByteLevelRegexMatchesHf) {
  PreTokenizer pt = make({ByteLevelStep{false, true}});
  EXPECT_EQ(pieces(pt, "I'm  here, 123 times!!\n\n  ok"),
            (std::vector<std::string>{"I", "'m", " ", " here", ",", " 123", " times", "!!", "\n\n ", " ok"}));
}

TEST(PreTokenizer, EmptyMatchesFollowOnigFindIter) {
  PreTokenizer pt = make({SplitStep{"a*", true, SplitBehavior::kIsolated, false}});
  EXPECT_EQ(pieces(pt, "baab"), (std::vector<std::string>{"b", "aa", "b"}));
}

TEST(PreTokenizer, InvalidUtf8BytesArePiecesOfTheirOwn) {
  PreTokenizer pt = make({SplitStep{"\\s+", true, SplitBehavior::kIsolated, false}});
  EXPECT_EQ(pieces(pt, "ab\xFF" "cd \xE4\xBD"), (std::vector<std::string>{"ab", "\xFF", "cd", " ", "\xE4", "\xBD"}));
}

TEST(PreTokenizer, UnsupportedOptionsAreErrors) {
  EXPECT_FALSE(PreTokenizer::create({ByteLevelStep{true, false}}).ok());
  EXPECT_FALSE(PreTokenizer::create({SplitStep{"(unclosed", true, SplitBehavior::kIsolated, false}}).ok());
}

TEST(RegexTranslation, ClassesBecomeReferenceRanges) {
  EXPECT_EQ(translate_onig_pattern("\\r\\n[^x]"), "\\r\\n[^x]");
  const std::string t = translate_onig_pattern("\\p{N}+");
  EXPECT_EQ(t.substr(0, 1), "[");
  EXPECT_NE(t.find("\\x{30}-\\x{39}"), std::string::npos);
  EXPECT_EQ(translate_onig_pattern("\\u00e9"), "\\x{00e9}");
  // U+10D40 (Garay digit, Unicode 16) is \p{N} for HF's Oniguruma but unknown to PCRE2 10.42's tables.
  auto re = Pcre2Regex::compile("\\p{N}");
  ASSERT_TRUE(re.ok());
  std::vector<Span> m;
  re->find_all("\xF0\x90\xB5\x80", m);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_NE(char_classes(0x10D40) & kClassN, 0);
}

// The DeepSeek-V3/V4 pre-tokenizer, as in its tokenizer.json.
std::vector<PreTokenizerStep> deepseek_steps() {
  return {SplitStep{"\\p{N}{1,3}", true, SplitBehavior::kIsolated, false},
          SplitStep{"[一-龥぀-ゟ゠-ヿ]+", true, SplitBehavior::kIsolated, false},
          SplitStep{"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
                    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
                    true, SplitBehavior::kIsolated, false},
          ByteLevelStep{false, false}};
}

TEST(DeepseekSplit, HandwrittenEqualsPcre2OnRandomStrings) {
  PreTokenizer fast = make(deepseek_steps());
  PreTokenizer pcre = make(deepseek_steps(), RegexEngine::kPcre2);
  ASSERT_EQ(fast.n_handwritten(), 3);
  ASSERT_EQ(pcre.n_handwritten(), 0);
  // Representatives of every class the regexes distinguish, plus their boundaries.
  const char32_t pool[] = {'a', 'Z', 'q', '0', '7', ' ', ' ', '\t', '\n', '\r', '\v', '\f', '!', '\'', '-', '.', '[',
                           '\\', '`', '~', '$', '+', 0x85, 0xA0, 0xAD, 0xE9, 0x301, 0x308, 0x660, 0x969, 0x1680,
                           0x180E, 0x2000, 0x200B, 0x200D, 0x2028, 0x2029, 0x202F, 0x3000, 0x3007, 0x3040, 0x3041,
                           0x3099, 0x309B, 0x30A0, 0x30FB, 0x30FC, 0x4E00, 0x9FA5, 0x9FA6, 0xAC00, 0xFE0F, 0xFEFF,
                           0xFF10, 0xFF01, 0x1F600, 0x1F3FD, 0x10D40, 0x1C89, 0xE000, 0x10FFFD, 0x2460, 0x00BD};
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 24);
    for (int k = 0; k < len; ++k) {
      char32_t c = (rng() % 8 == 0) ? static_cast<char32_t>(rng() % 0x110000) : pool[rng() % std::size(pool)];
      if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
      utf8_append(s, c);
    }
    ASSERT_EQ(pieces(fast, s), pieces(pcre, s)) << "input: " << s;
  }
}

}  // namespace
}  // namespace dsv4::tokenizer
