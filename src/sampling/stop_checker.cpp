// StopChecker (stop_checker.h). The pending text is at most the longest stop string plus one delta, so the
// per-token searches are over a short buffer, independent of the length of the whole output.
#include "sampling/stop_checker.h"

#include <algorithm>

#include "core/check.h"

namespace dsv4::sampling {

StopChecker::StopChecker(const SamplingParams& p, std::span<const int32_t> eos_token_ids)
    : stop_ids_(p.stop_token_ids.begin(), p.stop_token_ids.end()), stop_strings_(p.stop),
      max_tokens_(p.max_tokens) {
  if (!p.ignore_eos) stop_ids_.insert(stop_ids_.end(), eos_token_ids.begin(), eos_token_ids.end());
  std::sort(stop_ids_.begin(), stop_ids_.end());
  check(max_tokens_ >= 1, "StopChecker: max_tokens must be >= 1 (validate the params first)");
  for (const auto& s : stop_strings_) check(!s.empty(), "StopChecker: empty stop string");
}

StopResult StopChecker::on_token(int32_t token, std::string_view text_delta) {
  check(!finished_, "StopChecker::on_token after the request finished");
  ++n_tokens_;
  if (std::binary_search(stop_ids_.begin(), stop_ids_.end(), token)) {
    StopResult r = finish(FinishReason::kStop, pending_.size());
    r.stop_token = token;
    return r;
  }
  pending_.append(text_delta);
  size_t first = std::string::npos;
  const std::string* matched = nullptr;
  for (const std::string& s : stop_strings_) {
    const size_t at = pending_.find(s);
    if (at < first) {
      first = at;
      matched = &s;
    }
  }
  if (matched) {
    StopResult r = finish(FinishReason::kStop, first);
    r.stop_string = *matched;
    return r;
  }
  if (n_tokens_ >= max_tokens_) return finish(FinishReason::kLength, pending_.size());
  const size_t n_emit = pending_.size() - held_suffix();
  StopResult r;
  r.text = pending_.substr(0, n_emit);
  pending_.erase(0, n_emit);
  return r;
}

StopResult StopChecker::finish(FinishReason reason, size_t n_emit) {
  finished_ = true;
  StopResult r;
  r.finish = reason;
  r.text = pending_.substr(0, n_emit);
  pending_.clear();
  return r;
}

// Length of the longest tail of pending_ that is a proper prefix of a stop string.
size_t StopChecker::held_suffix() const {
  size_t best = 0;
  for (const std::string& s : stop_strings_) {
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > best; --len) {
      if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(s).substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

}  // namespace dsv4::sampling
