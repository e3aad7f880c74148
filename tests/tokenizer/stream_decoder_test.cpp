// Streaming detokenizer: deltas never split a code point (each is valid UTF-8) and their concatenation is the
// one-shot decode, on every golden case and on random id sequences (which produce ill-formed byte runs).
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_support.h"

namespace dsv4::tokenizer::testing {
namespace {

void check_stream(const Tokenizer& tok, const std::vector<int32_t>& ids, DecodeOptions opts, const std::string& name) {
  StreamDecoder dec(tok, opts);
  std::string joined;
  for (int32_t id : ids) {
    auto delta = dec.push(id);
    ASSERT_TRUE(delta.ok()) << delta.message();
    ASSERT_TRUE(utf8_valid(*delta)) << name;
    joined += *delta;
  }
  joined += dec.finish();
  EXPECT_EQ(joined, tok.decode(ids, opts).value()) << name;
}

TEST(StreamDecoder, GoldenCasesEqualOneShotDecode) {
  DSV4_REQUIRE_DEEPSEEK_TOKENIZER();
  const Tokenizer* tok = deepseek_v3();
  ASSERT_NE(tok, nullptr);
  for (const GoldenCase& c : load_golden(data_dir() / "golden.jsonl")) {
    check_stream(*tok, c.ids, {}, c.name);
    check_stream(*tok, c.ids, {.skip_special_tokens = true}, c.name);
  }
}

TEST(StreamDecoder, RandomIdsEqualOneShotDecode) {
  DSV4_REQUIRE_DEEPSEEK_TOKENIZER();
  const Tokenizer* tok = deepseek_v3();
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(7);
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<int32_t> ids(1 + rng() % 12);
    for (auto& id : ids) {
      // Mostly single-byte tokens (ids below ~300 hold the byte alphabet) to split code points often.
      id = rng() % 3 == 0 ? static_cast<int32_t>(rng() % tok->n_tokens()) : static_cast<int32_t>(rng() % 300);
    }
    check_stream(*tok, ids, {}, "random " + std::to_string(iter));
  }
}

TEST(StreamDecoder, HoldsBackPartialCodePoints) {
  DSV4_REQUIRE_DEEPSEEK_TOKENIZER();
  const Tokenizer* tok = deepseek_v3();
  ASSERT_NE(tok, nullptr);
  // "😀" is four byte tokens; nothing may come out before the last one.
  auto ids = tok->encode("😀");
  ASSERT_GT(ids.size(), 1u);
  StreamDecoder dec(*tok);
  for (size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ(dec.push(ids[i]).value(), "");
  EXPECT_EQ(dec.push(ids.back()).value(), "😀");
  EXPECT_EQ(dec.finish(), "");
}

}  // namespace
}  // namespace dsv4::tokenizer::testing
