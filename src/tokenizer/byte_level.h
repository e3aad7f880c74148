// The GPT-2 byte-level alphabet: each of the 256 byte values is shown as one printable code point (bytes that
// are printable Latin-1 map to themselves, the rest to U+0100 onwards). Vocabulary entries of a byte-level BPE
// are written in this alphabet; the tokenizer converts them to raw bytes once at load time.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsv4::tokenizer {

char32_t byte_to_char(uint8_t b);
std::optional<uint8_t> char_to_byte(char32_t c);

// HF's ByteLevel decoder on one token: the bytes its characters stand for when every character is in the
// alphabet, else the token's own UTF-8 text (e.g. "<｜User｜>").
std::string byte_level_token_bytes(std::string_view token);

// The inverse of the alphabet on a whole token; nullopt when a character is outside it.
std::optional<std::string> byte_level_to_bytes(std::string_view token);

}  // namespace dsv4::tokenizer
