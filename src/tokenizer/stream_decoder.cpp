// Streaming decode (see stream_decoder.h). decode() is utf8_lossy(concatenated bytes); lossy conversion
// restarts cleanly after any prefix that utf8_stable_prefix() accepts, so emitting lossy(stable prefix) and
// keeping the rest gives the same text as the one-shot decode.
#include "tokenizer/stream_decoder.h"

#include "tokenizer/utf8.h"

namespace dsv4::tokenizer {

Result<std::string> StreamDecoder::push(int32_t id) {
  DSV4_TRY_STATUS(tok_->check_id(id));
  if (opts_.skip_special_tokens && tok_->is_special(id)) return std::string();
  pending_ += tok_->token_bytes(id);
  const size_t stable = utf8_stable_prefix(pending_);
  if (stable == 0) return std::string();
  std::string delta = utf8_lossy(std::string_view(pending_).substr(0, stable));
  pending_.erase(0, stable);
  return delta;
}

std::string StreamDecoder::finish() {
  std::string rest = utf8_lossy(pending_);
  pending_.clear();
  return rest;
}

}  // namespace dsv4::tokenizer
