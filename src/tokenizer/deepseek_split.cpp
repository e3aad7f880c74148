// The DeepSeek pre-tokenizer regexes as direct scanners (see deepseek_split.h). The main rule is
//   [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+      (A)
//   | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+                  (B)
//   | ?[\p{P}\p{S}]+[\r\n]*                                 (C)
//   | \s*[\r\n]+                                            (D)
//   | \s+(?!\S)                                             (E)
//   | \s+                                                   (F)
// tried in order at each position; every quantifier is greedy and nothing follows it inside its branch, so
// each branch's match is its maximal run, except D and E whose backtracking is resolved in closed form.
#include "tokenizer/deepseek_split.h"

#include <cstdint>

#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

constexpr std::string_view kDigitsPattern = "\\p{N}{1,3}";
constexpr std::string_view kCjkPattern = "[一-龥぀-ゟ゠-ヿ]+";
constexpr std::string_view kMainPattern =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

struct Char {
  char32_t cp;
  uint16_t cls;
  int len;
};

// Code point at text[i] with its classes; the text is valid UTF-8.
inline Char char_at(std::string_view text, size_t i) {
  const auto b = static_cast<uint8_t>(text[i]);
  if (b < 0x80) return {b, char_classes(b), 1};
  Utf8Char c = utf8_decode(text, i);
  return {c.cp, char_classes(c.cp), c.len};
}

inline bool is_ascii_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
inline bool is_ascii_punct(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}
inline bool is_cr_lf(char32_t c) { return c == '\r' || c == '\n'; }

constexpr uint16_t kLM = kClassL | kClassM;
constexpr uint16_t kPS = kClassP | kClassS;

// End of the run of characters having any of `cls`, starting at i.
size_t run_end(std::string_view text, size_t i, uint16_t cls) {
  while (i < text.size()) {
    Char c = char_at(text, i);
    if ((c.cls & cls) == 0) break;
    i += c.len;
  }
  return i;
}

// Length of the main-rule match at i, or 0 when no branch matches there.
size_t main_match_at(std::string_view text, size_t i) {
  const size_t n = text.size();
  const Char c0 = char_at(text, i);
  const size_t i1 = i + c0.len;
  // A: one ASCII punctuation character, then ASCII letters.
  if (c0.len == 1 && is_ascii_punct(text[i]) && i1 < n && is_ascii_alpha(text[i1])) {
    size_t j = i1;
    while (j < n && is_ascii_alpha(text[j])) ++j;
    return j - i;
  }
  // B: an optional character outside \r \n L P S, then letters and marks.
  if (!is_cr_lf(c0.cp) && (c0.cls & (kClassL | kPS)) == 0 && i1 < n && (char_at(text, i1).cls & kLM) != 0) {
    return run_end(text, i1, kLM) - i;
  }
  if ((c0.cls & kLM) != 0) return run_end(text, i, kLM) - i;
  // C: an optional space, punctuation and symbols, then \r and \n.
  const bool space_then_ps = c0.cp == ' ' && i1 < n && (char_at(text, i1).cls & kPS) != 0;
  if (space_then_ps || (c0.cls & kPS) != 0) {
    const size_t c_start = space_then_ps ? i1 : i;
    size_t j = run_end(text, c_start, kPS);
    while (j < n && is_cr_lf(static_cast<unsigned char>(text[j]))) ++j;
    return j - i;
  }
  if ((c0.cls & kClassSpace) == 0) return 0;
  // D, E, F over the whitespace run [i, j).
  size_t j = i, last_crlf = SIZE_MAX, last_start = i;
  while (j < n) {
    Char c = char_at(text, j);
    if ((c.cls & kClassSpace) == 0) break;
    if (is_cr_lf(c.cp)) last_crlf = j;
    last_start = j;
    j += c.len;
  }
  if (last_crlf != SIZE_MAX) return last_crlf + 1 - i;  // D: up to the last \r or \n of the run
  if (j == n || last_start == i) return j - i;         // E at the end of the text, or F for one character
  return last_start - i;                               // E: leave the last space for the next token
}

void find_main(std::string_view text, std::vector<Span>& out) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = main_match_at(text, i);
    if (len == 0) {
      i += char_at(text, i).len;
      continue;
    }
    out.push_back({i, i + len});
    i += len;
  }
}

void find_digits(std::string_view text, std::vector<Span>& out) {
  size_t i = 0;
  while (i < text.size()) {
    Char c = char_at(text, i);
    if ((c.cls & kClassN) == 0) {
      i += c.len;
      continue;
    }
    size_t j = i + c.len;
    for (int k = 1; k < 3 && j < text.size(); ++k) {
      Char d = char_at(text, j);
      if ((d.cls & kClassN) == 0) break;
      j += d.len;
    }
    out.push_back({i, j});
    i = j;
  }
}

inline bool is_cjk(char32_t c) { return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x30FF); }

void find_cjk(std::string_view text, std::vector<Span>& out) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    Utf8Char c = utf8_decode(text, i);
    if (!is_cjk(c.cp)) {
      i += c.len;
      continue;
    }
    size_t j = i + c.len;
    while (j < text.size() && static_cast<uint8_t>(text[j]) >= 0x80) {
      Utf8Char d = utf8_decode(text, j);
      if (!is_cjk(d.cp)) break;
      j += d.len;
    }
    out.push_back({i, j});
    i = j;
  }
}

}  // namespace

std::optional<DeepseekRule> match_deepseek_rule(std::string_view pattern) {
  if (pattern == kDigitsPattern) return DeepseekRule::kDigits;
  if (pattern == kCjkPattern) return DeepseekRule::kCjk;
  if (pattern == kMainPattern) return DeepseekRule::kMain;
  return std::nullopt;
}

void deepseek_find_all(DeepseekRule rule, std::string_view text, std::vector<Span>& out) {
  switch (rule) {
    case DeepseekRule::kDigits: find_digits(text, out); break;
    case DeepseekRule::kCjk: find_cjk(text, out); break;
    case DeepseekRule::kMain: find_main(text, out); break;
  }
}

}  // namespace dsv4::tokenizer
