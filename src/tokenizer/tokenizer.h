// The text <-> token-id boundary of dsv4: a byte-level BPE tokenizer read from a model directory
// (tokenizer.json, optional tokenizer_config.json and config.json), exact to HF tokenizers:
// encode(text) == Tokenizer.encode(text, add_special_tokens=False).ids and decode(ids) == Tokenizer.decode(ids).
//
// Id space: [0, n_tokens()) are the tokenizer's ids (model vocabulary and added tokens); the model's
// vocab_size (config.json, 129280 for DeepSeek-V4) may be larger, and ids in [n_tokens(), vocab_size()) are
// embedding rows without text: decode skips them, as HF does. Ids outside [0, vocab_size()) are an error.
// Special tokens are looked up by their text (token_to_id), never by a hard-coded id.
//
// Immutable after load; every method is const and safe to call from several threads.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pre_tokenizer.h"

namespace dsv4::tokenizer {

struct LoadOptions {
  RegexEngine regex_engine = RegexEngine::kAuto;
};

struct DecodeOptions {
  bool skip_special_tokens = false;
};

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json (required), DIR/tokenizer_config.json and DIR/config.json (optional).
  static Result<Tokenizer> load(const std::filesystem::path& model_dir, const LoadOptions& opts = {});
  // From file contents; empty config texts mean absent. `source` names the data in error messages.
  static Result<Tokenizer> from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json = {},
                                     std::string_view model_config_json = {}, const LoadOptions& opts = {},
                                     const std::string& source = "tokenizer.json");

  // Token ids of `text`; never fails (any byte string has an encoding, see pre_tokenizer.h).
  std::vector<int32_t> encode(std::string_view text) const;
  void encode(std::string_view text, std::vector<int32_t>& out) const;  // appends

  // Text of `ids`; invalid UTF-8 produced by partial byte tokens becomes U+FFFD (as HF).
  Result<std::string> decode(std::span<const int32_t> ids, const DecodeOptions& opts = {}) const;
  // Raw bytes `id` stands for ("" for ids without text, and for specials when skipped). Requires a valid id.
  std::string_view token_bytes(int32_t id) const;
  // Checks 0 <= id < vocab_size().
  Status check_id(int32_t id) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;  // added tokens and vocabulary entries
  std::optional<std::string> id_to_token(int32_t id) const;          // the token as written in tokenizer.json
  bool is_special(int32_t id) const;

  int32_t n_tokens() const { return n_tokens_; }
  int32_t vocab_size() const { return vocab_size_; }
  bool add_bos() const { return add_bos_; }  // tokenizer_config.json add_bos_token
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  int n_handwritten_splits() const { return pre_.n_handwritten(); }

 private:
  BpeModel bpe_;
  AddedVocab added_;
  PreTokenizer pre_;
  std::vector<std::string> bytes_;  // per id: decoder output
  std::vector<uint8_t> special_;    // per id
  int32_t n_tokens_ = 0;
  int32_t vocab_size_ = 0;
  bool add_bos_ = false;
  std::optional<int32_t> bos_id_, eos_id_;
};

}  // namespace dsv4::tokenizer
