// Reading HF tokenizer files into plain specs: tokenizer.json (model, pre_tokenizer, added tokens; normalizer
// and decoder validated), tokenizer_config.json (add_bos_token, bos/eos strings) and the vocab_size of a
// model's config.json. Anything dsv4 cannot reproduce exactly is an error that names the field.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pre_tokenizer.h"

namespace dsv4::tokenizer {

struct TokenizerSpec {
  BpeSpec bpe;
  std::vector<PreTokenizerStep> pre_tokenizer;
  std::vector<AddedToken> added_tokens;
};

struct TokenizerConfig {
  bool add_bos = false;
  bool add_eos = false;
  std::string bos_token;  // empty when not given
  std::string eos_token;
};

// `source` names the file in error messages.
Result<TokenizerSpec> parse_tokenizer_json(std::string_view text, const std::string& source);
Result<TokenizerConfig> parse_tokenizer_config(std::string_view text, const std::string& source);
// vocab_size from a model config.json; 0 when the field is absent.
Result<int64_t> parse_model_vocab_size(std::string_view text, const std::string& source);

}  // namespace dsv4::tokenizer
