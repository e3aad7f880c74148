// Strict UTF-8 decoding with the Unicode "maximal subpart" convention (also used by Rust and the WHATWG
// decoder): an ill-formed sequence is replaced by one U+FFFD per maximal prefix of a well-formed sequence.
#include "tokenizer/utf8.h"

#include <cstdint>

namespace dsv4::tokenizer {
namespace {

// Number of bytes of the sequence led by `b`, or 0 when `b` cannot start one.
int sequence_length(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

// Valid range of the second byte after lead byte `b` (Unicode Table 3-7).
bool second_byte_ok(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
  }
}

}  // namespace

Utf8Char utf8_decode(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t lead = p[i];
  const int n = sequence_length(lead);
  if (n == 1) return {lead, 1, true};
  if (n == 0) return {0xFFFD, 1, false};
  char32_t cp = lead & (0x7F >> n);
  for (int k = 1; k < n; ++k) {
    if (i + k >= s.size()) return {0xFFFD, k, false};
    const uint8_t b = p[i + k];
    const bool ok = (k == 1) ? second_byte_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {0xFFFD, k, false};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, n, true};
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    Utf8Char c = utf8_decode(s, i);
    if (!c.valid) return false;
    i += c.len;
  }
  return true;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t run = 0;  // start of the pending run of valid bytes
  size_t i = 0;
  while (i < bytes.size()) {
    if (static_cast<uint8_t>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    Utf8Char c = utf8_decode(bytes, i);
    if (c.valid) {
      i += c.len;
      continue;
    }
    out.append(bytes.substr(run, i - run));
    utf8_append(out, 0xFFFD);
    i += c.len;
    run = i;
  }
  out.append(bytes.substr(run));
  return out;
}

size_t utf8_stable_prefix(std::string_view s) {
  // Only the last 3 bytes can hold an incomplete sequence; look back for its lead byte.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t i = n - back;
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) return n;
    if (b >= 0xC0) {
      Utf8Char c = utf8_decode(s, i);
      // Incomplete but valid so far: the subpart ran into the end of the buffer.
      if (!c.valid && i + c.len == n && sequence_length(b) > static_cast<int>(back)) return i;
      return n;
    }
  }
  return n;
}

}  // namespace dsv4::tokenizer
