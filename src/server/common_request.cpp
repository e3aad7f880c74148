// Shared request fields and sampling parameters (see common_request.h).
#include "server/common_request.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace dsv4::server {
namespace {

ApiError out_of_range(const std::string& name, const std::string& value, const std::string& range) {
  return api_error(ApiErrorKind::kInvalidValue, "'" + name + "' = " + value + " is out of range " + range, name);
}

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// A float parameter with the inclusive/exclusive bounds written in `range`.
ApiStatus read_float(const Json& body, const char* name, double lo, double hi, bool lo_open, const char* range,
                     float& out) {
  DSV4_API_TRY(v, opt_number(body, name, name));
  if (!v) return Done{};
  if (*v > hi || *v < lo || (lo_open && *v == lo)) return out_of_range(name, num(*v), range);
  out = static_cast<float>(*v);
  return Done{};
}

ApiStatus read_model(const Json& body, const RequestLimits& lim, CommonRequest& out) {
  DSV4_API_TRY(model, opt_string(body, "model", "model"));
  out.model = lim.model_names.empty() ? "" : lim.model_names.front();
  if (!model) return Done{};
  if (std::find(lim.model_names.begin(), lim.model_names.end(), *model) == lim.model_names.end())
    return api_error(ApiErrorKind::kModelNotFound, "The model '" + *model + "' does not exist", "model");
  out.model = *model;
  return Done{};
}

ApiStatus read_stop(const Json& body, sampling::SamplingParams& p) {
  const Json* stop = field(body, "stop");
  if (stop == nullptr) return Done{};
  std::vector<std::string> stops;
  if (stop->is_string()) {
    stops.push_back(stop->get<std::string>());
  } else if (stop->is_array()) {
    for (size_t i = 0; i < stop->size(); ++i) {
      if (!(*stop)[i].is_string())
        return api_error(ApiErrorKind::kInvalidType, "'stop[" + std::to_string(i) + "]' must be a string", "stop");
      stops.push_back((*stop)[i].get<std::string>());
    }
  } else {
    return api_error(ApiErrorKind::kInvalidType, "'stop' must be a string or an array of strings", "stop");
  }
  std::erase_if(stops, [](const std::string& s) { return s.empty(); });
  if (stops.size() > sampling::kMaxStopStrings)
    return api_error(ApiErrorKind::kInvalidValue, "'stop' has more than " + std::to_string(sampling::kMaxStopStrings) + " strings", "stop");
  for (const std::string& s : stops) {
    if (s.size() > sampling::kMaxStopStringBytes)
      return api_error(ApiErrorKind::kInvalidValue, "a 'stop' string is longer than " + std::to_string(sampling::kMaxStopStringBytes) + " bytes", "stop");
  }
  p.stop = std::move(stops);
  return Done{};
}

ApiStatus read_token_lists(const Json& body, const RequestLimits& lim, sampling::SamplingParams& p) {
  if (const Json* bias = field(body, "logit_bias")) {
    if (!bias->is_object()) return api_error(ApiErrorKind::kInvalidType, "'logit_bias' must be an object", "logit_bias");
    if (bias->size() > sampling::kMaxLogitBiasEntries)
      return api_error(ApiErrorKind::kInvalidValue, "'logit_bias' has too many entries", "logit_bias");
    for (const auto& [key, value] : bias->items()) {
      char* end = nullptr;
      const long id = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id < 0 || id >= lim.vocab_size)
        return api_error(ApiErrorKind::kInvalidValue, "'logit_bias' key '" + key + "' is not a token id in [0, " +
                                                          std::to_string(lim.vocab_size) + ")", "logit_bias");
      if (!value.is_number() || !(std::fabs(value.get<double>()) <= sampling::kMaxAbsLogitBias))
        return api_error(ApiErrorKind::kInvalidValue, "'logit_bias' values must be numbers in [-100, 100]", "logit_bias");
      p.logit_bias[static_cast<int32_t>(id)] = value.get<float>();
    }
  }
  if (const Json* ids = field(body, "stop_token_ids")) {
    if (!ids->is_array() || ids->size() > sampling::kMaxStopTokenIds)
      return api_error(ApiErrorKind::kInvalidType, "'stop_token_ids' must be an array of at most 256 token ids", "stop_token_ids");
    for (const Json& id : *ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= lim.vocab_size)
        return api_error(ApiErrorKind::kInvalidValue, "'stop_token_ids' entries must be token ids in [0, " +
                                                          std::to_string(lim.vocab_size) + ")", "stop_token_ids");
      p.stop_token_ids.push_back(id.get<int32_t>());
    }
  }
  return Done{};
}

ApiStatus read_sampling(const Json& body, const RequestLimits& lim, sampling::SamplingParams& p) {
  DSV4_API_TRY_STATUS(read_float(body, "temperature", 0, 1e6, false, "[0, 1e6]", p.temperature));
  DSV4_API_TRY_STATUS(read_float(body, "top_p", 0, 1, true, "(0, 1]", p.top_p));
  DSV4_API_TRY_STATUS(read_float(body, "min_p", 0, 1, false, "[0, 1]", p.min_p));
  DSV4_API_TRY_STATUS(read_float(body, "presence_penalty", -2, 2, false, "[-2, 2]", p.presence_penalty));
  DSV4_API_TRY_STATUS(read_float(body, "frequency_penalty", -2, 2, false, "[-2, 2]", p.frequency_penalty));
  DSV4_API_TRY_STATUS(read_float(body, "repetition_penalty", 0, 1e6, true, "(0, 1e6]", p.repetition_penalty));
  DSV4_API_TRY(top_k, opt_int(body, "top_k", "top_k"));
  if (top_k) {
    if (*top_k < -1) return out_of_range("top_k", std::to_string(*top_k), "[-1, inf) (0 and -1 = off)");
    p.top_k = static_cast<int32_t>(std::min<int64_t>(*top_k, std::numeric_limits<int32_t>::max()));
  }
  DSV4_API_TRY(seed, opt_int(body, "seed", "seed"));
  if (seed) p.seed = static_cast<uint64_t>(*seed);
  DSV4_API_TRY(ignore_eos, opt_bool(body, "ignore_eos", "ignore_eos"));
  p.ignore_eos = ignore_eos.value_or(false);
  DSV4_API_TRY_STATUS(read_stop(body, p));
  return read_token_lists(body, lim, p);
}

}  // namespace

ApiStatus parse_common(const Json& body, const RequestLimits& lim, CommonRequest& out) {
  DSV4_API_TRY_STATUS(read_model(body, lim, out));
  DSV4_API_TRY(n, opt_int(body, "n", "n"));
  if (n && (*n < 1 || *n > lim.max_n)) return out_of_range("n", std::to_string(*n), "[1, " + std::to_string(lim.max_n) + "]");
  out.n = static_cast<int>(n.value_or(1));
  DSV4_API_TRY(stream, opt_bool(body, "stream", "stream"));
  out.stream = stream.value_or(false);
  if (const Json* so = field(body, "stream_options")) {
    if (!so->is_object()) return api_error(ApiErrorKind::kInvalidType, "'stream_options' must be an object", "stream_options");
    DSV4_API_TRY(usage, opt_bool(*so, "include_usage", "stream_options.include_usage"));
    out.include_usage = usage.value_or(false);
  }
  DSV4_API_TRY(mct, opt_int(body, "max_completion_tokens", "max_completion_tokens"));
  DSV4_API_TRY(mt, opt_int(body, "max_tokens", "max_tokens"));
  const char* mt_name = mct ? "max_completion_tokens" : "max_tokens";
  out.max_tokens = mct ? mct : mt;
  if (out.max_tokens && *out.max_tokens < 1)
    return out_of_range(mt_name, std::to_string(*out.max_tokens), "[1, context length]");
  DSV4_API_TRY(skip, opt_bool(body, "skip_special_tokens", "skip_special_tokens"));
  out.skip_special_tokens = skip.value_or(true);
  DSV4_API_TRY_STATUS(read_sampling(body, lim, out.params));
  sampling::SamplingParams check = out.params;
  check.max_tokens = 1;
  if (auto s = sampling::validate(check, lim.vocab_size); !s.ok())
    return api_error(ApiErrorKind::kInvalidValue, s.message());
  return Done{};
}

ApiResult<int32_t> resolve_max_tokens(const CommonRequest& r, const PromptBudget& b) {
  const int64_t prompt_len = b.prompt_len, max_model_len = b.max_model_len, fallback = b.fallback;
  if (prompt_len >= max_model_len)
    return api_error(ApiErrorKind::kContextLengthExceeded,
                     "This model's maximum context length is " + std::to_string(max_model_len) + " tokens. However, your "
                     "prompt has " + std::to_string(prompt_len) + " tokens, which leaves no room for a completion.",
                     b.prompt_param);
  const int64_t room = max_model_len - prompt_len;
  if (r.max_tokens && *r.max_tokens > room)
    return api_error(ApiErrorKind::kContextLengthExceeded,
                     "This model's maximum context length is " + std::to_string(max_model_len) + " tokens. However, you "
                     "requested " + std::to_string(prompt_len + *r.max_tokens) + " tokens (" + std::to_string(prompt_len) +
                     " in the prompt, " + std::to_string(*r.max_tokens) + " for the completion).",
                     "max_tokens");
  const int64_t n = r.max_tokens ? *r.max_tokens : (fallback > 0 ? std::min(fallback, room) : room);
  return static_cast<int32_t>(std::min<int64_t>(n, std::numeric_limits<int32_t>::max()));
}

}  // namespace dsv4::server
