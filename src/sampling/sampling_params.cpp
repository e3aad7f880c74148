// Validation of SamplingParams: one rule per field, messages of the form
// "<parameter> = <value> is out of range <range>" so an API client can fix the request without reading code.
#include "sampling/sampling_params.h"

#include <cmath>
#include <random>
#include <sstream>

#include "core/check.h"

namespace dsv4::sampling {
namespace {

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

Error out_of_range(const std::string& name, double value, const std::string& range) {
  return make_error(name + " = " + num(value) + " is out of range " + range);
}

Status validate_floats(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    return out_of_range("temperature", p.temperature, "[0, inf) (0 = greedy)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return out_of_range("top_p", p.top_p, "(0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return out_of_range("min_p", p.min_p, "[0, 1]");
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
    return out_of_range("repetition_penalty", p.repetition_penalty, "(0, inf) (1 = off)");
  const float m = kMaxAbsPresenceFrequency;
  if (!(p.presence_penalty >= -m && p.presence_penalty <= m))
    return out_of_range("presence_penalty", p.presence_penalty, "[-2, 2]");
  if (!(p.frequency_penalty >= -m && p.frequency_penalty <= m))
    return out_of_range("frequency_penalty", p.frequency_penalty, "[-2, 2]");
  return Ok{};
}

std::string vocab_range(int64_t vocab_size) { return "[0, " + std::to_string(vocab_size) + ")"; }

Status validate_token_lists(const SamplingParams& p, int64_t vocab_size) {
  if (p.logit_bias.size() > kMaxLogitBiasEntries)
    return make_error("logit_bias has " + std::to_string(p.logit_bias.size()) + " entries, at most " +
                      std::to_string(kMaxLogitBiasEntries) + " are allowed");
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || id >= vocab_size)
      return make_error("logit_bias token id " + std::to_string(id) + " is out of range " + vocab_range(vocab_size));
    if (!(bias >= -kMaxAbsLogitBias && bias <= kMaxAbsLogitBias))
      return out_of_range("logit_bias[" + std::to_string(id) + "]", bias, "[-100, 100]");
  }
  if (p.stop_token_ids.size() > kMaxStopTokenIds)
    return make_error("stop_token_ids has " + std::to_string(p.stop_token_ids.size()) + " ids, at most " +
                      std::to_string(kMaxStopTokenIds) + " are allowed");
  for (size_t i = 0; i < p.stop_token_ids.size(); ++i) {
    const int32_t id = p.stop_token_ids[i];
    if (id < 0 || id >= vocab_size)
      return make_error("stop_token_ids[" + std::to_string(i) + "] = " + std::to_string(id) +
                        " is out of range " + vocab_range(vocab_size));
  }
  return Ok{};
}

Status validate_stop_strings(const SamplingParams& p) {
  if (p.stop.size() > kMaxStopStrings)
    return make_error("stop has " + std::to_string(p.stop.size()) + " strings, at most " +
                      std::to_string(kMaxStopStrings) + " are allowed");
  for (size_t i = 0; i < p.stop.size(); ++i) {
    const std::string where = "stop[" + std::to_string(i) + "]";
    if (p.stop[i].empty()) return make_error(where + " is empty; stop strings must have at least 1 byte");
    if (p.stop[i].size() > kMaxStopStringBytes)
      return make_error(where + " is " + std::to_string(p.stop[i].size()) + " bytes, at most " +
                        std::to_string(kMaxStopStringBytes) + " are allowed");
  }
  return Ok{};
}

}  // namespace

Status validate(const SamplingParams& p, int64_t vocab_size) {
  check(vocab_size > 0, "validate: vocab_size must be positive");
  DSV4_TRY_STATUS(validate_floats(p));
  if (p.top_k < -1) return out_of_range("top_k", p.top_k, "[-1, inf) (0 and -1 = off)");
  if (p.max_tokens < 1) return out_of_range("max_tokens", p.max_tokens, "[1, inf)");
  if (p.logprobs && (*p.logprobs < 0 || *p.logprobs > kMaxTopLogprobs))
    return out_of_range("logprobs", *p.logprobs, "[0, 20]");
  DSV4_TRY_STATUS(validate_token_lists(p, vocab_size));
  return validate_stop_strings(p);
}

uint64_t resolve_seed(const SamplingParams& p) {
  if (p.seed) return *p.seed;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace dsv4::sampling
