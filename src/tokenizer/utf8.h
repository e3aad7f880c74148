// UTF-8 helpers for the tokenizer: strict decoding (the Unicode "maximal subpart" rule for ill-formed input),
// encoding, lossy conversion that matches Rust's String::from_utf8_lossy (what HF tokenizers' decode does), and
// the split point a streaming decoder may emit up to without cutting a code point.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace dsv4::tokenizer {

struct Utf8Char {
  char32_t cp = 0;   // the code point; U+FFFD when !valid
  int len = 1;       // bytes consumed: the sequence, or the maximal ill-formed subpart (>= 1)
  bool valid = false;
};

// Decodes the sequence starting at s[i] (i < s.size()). Rejects overlongs, surrogates and values > U+10FFFF.
Utf8Char utf8_decode(std::string_view s, size_t i);

void utf8_append(std::string& out, char32_t cp);
bool utf8_valid(std::string_view s);

// Replaces each maximal ill-formed subpart by U+FFFD, as Rust's String::from_utf8_lossy does.
std::string utf8_lossy(std::string_view bytes);

// Length of the longest prefix of `s` after which no later byte can change how the prefix decodes: everything
// except a trailing sequence that is incomplete but still valid so far.
size_t utf8_stable_prefix(std::string_view s);

}  // namespace dsv4::tokenizer
