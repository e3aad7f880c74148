// fuzz-link: dsv4_tokenizer
// Fuzz target for the encoder and the streaming decoder: any byte string must encode without crashing, decode
// back to itself (to its lossy UTF-8 form when it is ill-formed), and stream-decode to the same text. Uses the
// DeepSeek tokenizer from <repo>/../shared when present, else a small built-in byte-level tokenizer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

const dsv4::tokenizer::Tokenizer& tokenizer() {
  static const std::unique_ptr<dsv4::tokenizer::Tokenizer> tok = [] {
    const auto dir = std::filesystem::path(DSV4_TEST_DATA) / ".." / ".." / ".." / "shared" / "tokenizers" / "deepseek-v3";
    auto t = std::filesystem::exists(dir / "tokenizer.json")
                 ? dsv4::tokenizer::Tokenizer::load(dir)
                 : dsv4::tokenizer::Tokenizer::from_json(
                       R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<": 3, ">": 4}, "merges": ["a b"]},
                           "added_tokens": [{"id": 5, "content": "<s>", "special": true}],
                           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                             {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false},
                             {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]},
                           "decoder": {"type": "ByteLevel"}})");
    if (!t.ok()) std::abort();
    return std::make_unique<dsv4::tokenizer::Tokenizer>(std::move(t).value());
  }();
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& tok = tokenizer();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto ids = tok.encode(text);
  auto decoded = tok.decode(ids);
  if (!decoded.ok()) std::abort();
  // The built-in tokenizer lacks most bytes (they are dropped), so only the real one round-trips.
  if (tok.n_tokens() > 1000 && *decoded != dsv4::tokenizer::utf8_lossy(text)) std::abort();
  dsv4::tokenizer::StreamDecoder dec(tok);
  std::string streamed;
  for (int32_t id : ids) {
    auto d = dec.push(id);
    if (!d.ok() || !dsv4::tokenizer::utf8_valid(*d)) std::abort();
    streamed += *d;
  }
  streamed += dec.finish();
  if (streamed != *decoded) std::abort();
  return 0;
}
