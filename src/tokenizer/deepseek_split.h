// Hand-written matchers for the three Split regexes of the DeepSeek-V3/V4 pre-tokenizer, equal to the regexes
// as HF runs them (Oniguruma, leftmost-first alternation with backtracking) and several times faster than
// PCRE2. The equality is proven by test: tests/tokenizer compares them with the PCRE2 path on the goldens and
// on random strings. A pattern string not recognized here falls back to PCRE2.
#pragma once
#include <optional>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace dsv4::tokenizer {

enum class DeepseekRule {
  kDigits,  // \p{N}{1,3}
  kCjk,     // [一-龥぀-ゟ゠-ヿ]+
  kMain,    // the letters / punctuation / whitespace alternation
};

// The rule whose regex is exactly `pattern` (as written in tokenizer.json), if any.
std::optional<DeepseekRule> match_deepseek_rule(std::string_view pattern);

// Appends the match spans of `rule` in `text` (valid UTF-8), as find_all() of the regex would.
void deepseek_find_all(DeepseekRule rule, std::string_view text, std::vector<Span>& out);

}  // namespace dsv4::tokenizer
