// GPT-2 bytes_to_unicode() and its inverse (see byte_level.h).
#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {
namespace {

constexpr char32_t kAlphabetEnd = 0x100 + 68;  // the 68 non-printable bytes take U+0100..U+0143

struct Alphabet {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, kAlphabetEnd> to_byte{};  // -1: not in the alphabet
};

Alphabet build_alphabet() {
  Alphabet a;
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  char32_t next = 0x100;
  a.to_byte.fill(-1);
  for (int b = 0; b < 256; ++b) {
    a.to_char[b] = printable(b) ? static_cast<char32_t>(b) : next++;
    a.to_byte[a.to_char[b]] = static_cast<int16_t>(b);
  }
  return a;
}

const Alphabet& alphabet() {
  static const Alphabet a = build_alphabet();
  return a;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return alphabet().to_char[b]; }

std::optional<uint8_t> char_to_byte(char32_t c) {
  if (c >= kAlphabetEnd) return std::nullopt;
  const int16_t b = alphabet().to_byte[c];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    Utf8Char c = utf8_decode(token, i);
    if (!c.valid) return std::nullopt;
    auto b = char_to_byte(c.cp);
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
    i += c.len;
  }
  return out;
}

std::string byte_level_token_bytes(std::string_view token) {
  auto bytes = byte_level_to_bytes(token);
  return bytes ? *bytes : std::string(token);
}

}  // namespace dsv4::tokenizer
