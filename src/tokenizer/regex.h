// PCRE2 (UTF + UCP, JIT when available) running the Split regexes of a tokenizer.json, which are written for
// Oniguruma (the engine inside HF tokenizers). translate_onig_pattern() rewrites the Unicode classes that
// differ between the two engines (\p{L} \p{M} \p{N} \p{P} \p{S} \p{Z} \s \d \w and their negations outside
// brackets) into explicit ranges from the reference's own tables, and \uHHHH into \x{HHHH}; other syntax is
// passed through. Like Ruby-syntax Oniguruma, ^ and $ match at line boundaries.
//
// find_all() has the iteration semantics of the Rust `onig` crate's find_iter, which HF uses: leftmost
// matches, non-overlapping, and an empty match right where the previous match ended is skipped.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace dsv4::tokenizer {

struct Span {
  size_t begin = 0;
  size_t end = 0;  // exclusive, in bytes
};

std::string translate_onig_pattern(std::string_view pattern);

class Pcre2Regex {
 public:
  // `pattern` is in Oniguruma syntax; it is translated first.
  static Result<Pcre2Regex> compile(std::string_view pattern);

  // Appends the byte spans of all matches in `text`, which must be valid UTF-8.
  void find_all(std::string_view text, std::vector<Span>& out) const;

  const std::string& translated() const { return translated_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;  // immutable after compile; shared by copies
  std::string translated_;
};

}  // namespace dsv4::tokenizer
