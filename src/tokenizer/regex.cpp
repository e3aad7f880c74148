// PCRE2 wrapper and the Oniguruma -> PCRE2 pattern translation (see regex.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include <cstdio>

#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

void append_ranges(std::string& out, std::span<const CodepointRange> ranges) {
  char buf[40];
  for (const auto& r : ranges) {
    if (r.lo == r.hi) {
      std::snprintf(buf, sizeof buf, "\\x{%x}", static_cast<unsigned>(r.lo));
    } else {
      std::snprintf(buf, sizeof buf, "\\x{%x}-\\x{%x}", static_cast<unsigned>(r.lo), static_cast<unsigned>(r.hi));
    }
    out += buf;
  }
}

// Maps a \p{...} name to its class letter ('L', ...), or 0 when it is not one of ours.
char property_letter(std::string_view name) {
  if (name.size() == 1 && std::string_view("LMNPSZ").find(name[0]) != std::string_view::npos) return name[0];
  if (name == "Letter") return 'L';
  if (name == "Mark") return 'M';
  if (name == "Number") return 'N';
  if (name == "Punctuation") return 'P';
  if (name == "Symbol") return 'S';
  if (name == "Separator") return 'Z';
  return 0;
}

// Emits class `letter` (negated or not) in or outside brackets. Returns false when it cannot be expressed
// (a negated class inside brackets), in which case the caller keeps the original escape.
bool emit_class(std::string& out, char letter, bool negated, bool in_brackets) {
  auto ranges = class_ranges(letter);
  if (!ranges) return false;
  if (in_brackets) {
    if (negated) return false;
    append_ranges(out, *ranges);
    return true;
  }
  out += negated ? "[^" : "[";
  append_ranges(out, *ranges);
  out += "]";
  return true;
}

// Handles the escape at pattern[i] == '\\'; returns the index after it.
size_t translate_escape(std::string_view p, size_t i, bool in_brackets, std::string& out) {
  if (i + 1 >= p.size()) {
    out += p.substr(i);
    return p.size();
  }
  const char e = p[i + 1];
  if (e == 'p' || e == 'P') {
    size_t end = i + 2;
    std::string_view name;
    if (end < p.size() && p[end] == '{') {
      size_t close = p.find('}', end);
      if (close == std::string_view::npos) {
        out += p.substr(i, 2);
        return i + 2;
      }
      name = p.substr(end + 1, close - end - 1);
      end = close + 1;
    } else if (end < p.size()) {
      name = p.substr(end, 1);
      end += 1;
    }
    bool negated = e == 'P';
    if (!name.empty() && name[0] == '^') {
      negated = !negated;
      name.remove_prefix(1);
    }
    const char letter = property_letter(name);
    if (letter == 0 || !emit_class(out, letter, negated, in_brackets)) out += p.substr(i, end - i);
    return end;
  }
  if (std::string_view("sdwSDW").find(e) != std::string_view::npos) {
    const char letter = static_cast<char>(e | 0x20);  // lower case
    const bool negated = e < 'a';
    if (!emit_class(out, letter, negated, in_brackets)) out += p.substr(i, 2);
    return i + 2;
  }
  if (e == 'u' && i + 6 <= p.size()) {
    out += "\\x{";
    out += p.substr(i + 2, 4);
    out += "}";
    return i + 6;
  }
  out += p.substr(i, 2);
  return i + 2;
}

}  // namespace

std::string translate_onig_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() * 4);
  bool in_brackets = false;
  size_t i = 0;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      i = translate_escape(p, i, in_brackets, out);
      continue;
    }
    if (!in_brackets && c == '[') {
      in_brackets = true;
      out += c;
      ++i;
      if (i < p.size() && p[i] == '^') out += p[i++];
      if (i < p.size() && p[i] == ']') out += p[i++];  // a leading ']' is literal
      continue;
    }
    if (in_brackets && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      size_t close = p.find(":]", i + 2);
      size_t end = close == std::string_view::npos ? p.size() : close + 2;
      out += p.substr(i, end - i);
      i = end;
      continue;
    }
    if (in_brackets && c == ']') in_brackets = false;
    out += c;
    ++i;
  }
  return out;
}

struct Pcre2Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

Result<Pcre2Regex> Pcre2Regex::compile(std::string_view pattern) {
  Pcre2Regex re;
  re.translated_ = translate_onig_pattern(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.translated_.data()), re.translated_.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &err_off, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return make_error("cannot compile pre-tokenizer regex '" + std::string(pattern) + "': " +
                      reinterpret_cast<const char*>(msg) + " (at offset " + std::to_string(err_off) +
                      " of the translated pattern)");
  }
  auto holder = std::make_shared<Code>();
  holder->code = code;
  holder->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  re.code_ = std::move(holder);
  return re;
}

void Pcre2Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (start <= text.size()) {
    int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr)
                        : pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t s = ov[0], e = ov[1];
    if (s == e && have_last && e == last_end) {
      if (start >= text.size()) break;
      start += utf8_decode(text, start).len;  // skip an empty match right after the previous match
      continue;
    }
    out.push_back({s, e});
    have_last = true;
    last_end = e;
    start = e;
  }
  pcre2_match_data_free(md);
}

}  // namespace dsv4::tokenizer
