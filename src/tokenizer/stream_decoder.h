// Incremental detokenizer: fed token ids one at a time, it returns text deltas that never split a UTF-8 code
// point, and the concatenation of all deltas plus finish() equals Tokenizer::decode of the whole sequence
// (with the same skip_special_tokens choice). Bytes of a code point spread over several byte tokens are held
// back until the code point is complete; a sequence that can no longer become valid is emitted as U+FFFD
// exactly where the full decode puts it.
#pragma once
#include <cstdint>
#include <string>

#include "core/result.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::tokenizer {

class StreamDecoder {
 public:
  // `tok` must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tok, DecodeOptions opts = {}) : tok_(&tok), opts_(opts) {}

  // Text that became final with this id (possibly empty). Fails only for an id outside [0, vocab_size).
  Result<std::string> push(int32_t id);
  // Flushes bytes still held back (an incomplete code point at the end becomes U+FFFD) and resets.
  std::string finish();
  // Number of bytes held back.
  size_t pending() const { return pending_.size(); }

 private:
  const Tokenizer* tok_;
  DecodeOptions opts_;
  std::string pending_;
};

}  // namespace dsv4::tokenizer
