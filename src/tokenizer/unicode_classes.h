// Unicode character classes exactly as the reference regex engine sees them. HF tokenizers runs its Split
// regexes on Oniguruma, whose Unicode tables (v16 in tokenizers 0.23) are newer than PCRE2's (v14 in Debian's
// 10.42), so the tables here come from the reference itself (generated/unicode_classes.inc, written by
// tools/gen_tokenizer_goldens.py). Both the PCRE2 path (classes rewritten into explicit ranges) and the
// hand-written DeepSeek splitter use them, which is what makes the two agree with HF on every code point.
#pragma once
#include <cstdint>
#include <optional>
#include <span>

namespace dsv4::tokenizer {

struct CodepointRange {
  char32_t lo;
  char32_t hi;  // inclusive
};

// Bit flags; a code point can carry several (e.g. a letter is in L and w).
enum CharClass : uint16_t {
  kClassL = 1 << 0,      // \p{L}
  kClassM = 1 << 1,      // \p{M}
  kClassN = 1 << 2,      // \p{N}
  kClassP = 1 << 3,      // \p{P}
  kClassS = 1 << 4,      // \p{S}
  kClassZ = 1 << 5,      // \p{Z}
  kClassSpace = 1 << 6,  // \s (Unicode White_Space, as Oniguruma defines it)
  kClassDigit = 1 << 7,  // \d
  kClassWord = 1 << 8,   // \w
};

// Class bits of `cp` (0 for unassigned and for values past U+10FFFF). O(1): a two-level table built on first use.
uint16_t char_classes(char32_t cp);

// The ranges of one class, by its regex name: 'L','M','N','P','S','Z' for \p{X}; 's','d','w' for \s \d \w.
std::optional<std::span<const CodepointRange>> class_ranges(char name);

}  // namespace dsv4::tokenizer
