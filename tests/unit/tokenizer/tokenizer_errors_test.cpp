// Bad input: corrupt or unsupported tokenizer files are errors naming the file and field, never crashes;
// out-of-range ids are errors; a tiny hand-made tokenizer checks BPE details (expected ids from HF 0.23.2).
#include <gtest/gtest.h>

#include <filesystem>

#include "tokenizer/ids_json.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::tokenizer {
namespace {

// Byte-level alphabet entries for "a", "b", "c", " " (Ġ) plus merges a b -> ab, ab c -> abc, Ġ a -> Ġa.
std::string tiny_json(const std::string& pre = R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})",
                      const std::string& extra_added = "") {
  return R"({"version": "1.0", "added_tokens": [{"id": 7, "content": "<s>", "special": true, "normalized": false,
  "lstrip": false, "rstrip": false, "single_word": false})" + extra_added + R"(],
  "normalizer": null, "pre_tokenizer": )" + pre + R"(, "post_processor": null,
  "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "dropout": null, "unk_token": null,
  "vocab": {"a": 0, "b": 1, "c": 2, "Ġ": 3, "ab": 4, "abc": 5, "Ġa": 6},
  "merges": ["a b", "ab c", "Ġ a"]}})";
}

TEST(TokenizerErrors, CorruptAndUnsupportedFiles) {
  auto bad = Tokenizer::from_json("{not json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("not valid JSON"), std::string::npos);
  auto pre = Tokenizer::from_json(tiny_json(R"({"type": "Whitespace"})"));
  ASSERT_FALSE(pre.ok());
  EXPECT_NE(pre.message().find("Whitespace"), std::string::npos);
  EXPECT_FALSE(Tokenizer::from_json(R"({"model": {"type": "WordPiece", "vocab": {}}})").ok());
  EXPECT_FALSE(Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a z"]},
                                        "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}})").ok());
  EXPECT_FALSE(Tokenizer::from_json(R"({"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}})").ok());
  EXPECT_FALSE(Tokenizer::from_json(tiny_json(R"({"type": "ByteLevel", "add_prefix_space": "yes"})")).ok());
  auto missing = Tokenizer::load("/nonexistent/model");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("tokenizer.json"), std::string::npos);
}

TEST(TokenizerErrors, TinyBpeMatchesHf) {
  auto tok = Tokenizer::from_json(tiny_json(), "", R"({"vocab_size": 16})");
  ASSERT_TRUE(tok.ok()) << tok.message();
  // HF 0.23.2: "abc ab a<s>cab" -> [5, 3, 4, 6, 7, 2, 4]
  EXPECT_EQ(tok->encode("abc ab a<s>cab"), (std::vector<int32_t>{5, 3, 4, 6, 7, 2, 4}));
  EXPECT_EQ(tok->encode("xyz"), std::vector<int32_t>{});  // bytes without tokens are dropped, as in HF
  EXPECT_EQ(tok->n_tokens(), 8);
  EXPECT_EQ(tok->vocab_size(), 16);
  EXPECT_EQ(tok->decode(std::vector<int32_t>{5, 7, 6, 12}).value(), "abc<s> a");  // 12: padding row, no text
  EXPECT_EQ(tok->decode(std::vector<int32_t>{5, 7, 6}, {.skip_special_tokens = true}).value(), "abc a");
  auto out_of_range = tok->decode(std::vector<int32_t>{5, 16});
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.message().find("16"), std::string::npos);
  EXPECT_FALSE(tok->decode(std::vector<int32_t>{-1}).ok());
  StreamDecoder dec(*tok);
  EXPECT_FALSE(dec.push(99).ok());
}

TEST(TokenizerErrors, AddedTokenIdsFollowHf) {
  // Declared ids are not authoritative: HF gives "<x>" the next id after the largest assigned (8 here).
  auto tok = Tokenizer::from_json(tiny_json(R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})",
                                            R"(, {"id": 100, "content": "<x>", "special": false, "normalized": true, "lstrip": false, "rstrip": false, "single_word": false})"));
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->token_to_id("<x>"), 8);
  EXPECT_EQ(tok->token_to_id("<s>"), 7);
}

TEST(IdsJson, ParseAndPrint) {
  EXPECT_EQ(parse_ids_json("[1, 2, 3]").value(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_ids_json(R"({"input_ids": [4]})").value(), std::vector<int32_t>{4});
  EXPECT_FALSE(parse_ids_json("[1, \"a\"]").ok());
  EXPECT_FALSE(parse_ids_json("[99999999999]").ok());
  EXPECT_FALSE(parse_ids_json("nope").ok());
  EXPECT_EQ(ids_to_json(std::vector<int32_t>{1, 2}), "[1, 2]");
}

}  // namespace
}  // namespace dsv4::tokenizer
