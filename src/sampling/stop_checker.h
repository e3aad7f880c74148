// StopChecker: decides when one request stops and how much of its detokenized text may be streamed.
// Fed once per generated token with the text that token added to the stream, it checks, in this order:
//   1 stop token: the token is in stop_token_ids, or is an EOS id and ignore_eos is off -> finish "stop";
//     the stop token's own text is not emitted;
//   2 stop strings, matched on the text stream across token boundaries -> finish "stop"; the text before the
//     earliest match is emitted, the stop string and anything after it are not (OpenAI);
//   3 max_tokens generated -> finish "length".
// While running it holds back the longest tail of the text that is a proper prefix of some stop string (it
// might still become a match) and emits the rest. When it finishes without a stop-string match, the held
// text is emitted. Invariant: emitted text never contains a stop string.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/sampling_params.h"

namespace dsv4::sampling {

enum class FinishReason { kNone, kStop, kLength };

struct StopResult {
  std::string text;                        // safe to emit now (may be empty)
  FinishReason finish = FinishReason::kNone;
  std::optional<int32_t> stop_token;       // set when a stop token id or an EOS id finished the request
  std::optional<std::string> stop_string;  // set when a stop string finished it
  bool finished() const { return finish != FinishReason::kNone; }
};

class StopChecker {
 public:
  // p validated; eos_token_ids: the model's EOS ids (ignored when p.ignore_eos).
  StopChecker(const SamplingParams& p, std::span<const int32_t> eos_token_ids);

  // One generated token and its text delta (possibly empty). Must not be called after finishing.
  StopResult on_token(int32_t token, std::string_view text_delta);

  int64_t n_tokens() const { return n_tokens_; }
  bool finished() const { return finished_; }
  const std::string& held_text() const { return pending_; }  // text held back as a possible stop prefix

 private:
  StopResult finish(FinishReason reason, size_t n_emit);
  size_t held_suffix() const;

  std::vector<int32_t> stop_ids_;  // sorted
  std::vector<std::string> stop_strings_;
  int64_t max_tokens_;
  int64_t n_tokens_ = 0;
  bool finished_ = false;
  std::string pending_;  // received but not emitted
};

}  // namespace dsv4::sampling
