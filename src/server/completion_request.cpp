// Completion request parsing (see completion_request.h).
#include "server/completion_request.h"

#include <algorithm>

namespace dsv4::server {
namespace {

ApiError bad(ApiErrorKind kind, const std::string& msg) { return api_error(kind, msg, "prompt"); }

bool is_id_array(const Json& j) {
  return j.is_array() && !j.empty() && std::all_of(j.begin(), j.end(), [](const Json& e) { return e.is_number(); });
}

ApiResult<PromptInput> read_ids(const Json& arr, int32_t vocab, const std::string& path) {
  PromptInput p;
  for (size_t i = 0; i < arr.size(); ++i) {
    const Json& e = arr[i];
    if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() >= vocab)
      return bad(ApiErrorKind::kInvalidValue, "'" + path + "[" + std::to_string(i) + "]' is not a token id in [0, " +
                                                  std::to_string(vocab) + ")");
    p.ids.push_back(e.get<int32_t>());
  }
  return p;
}

ApiResult<PromptInput> read_text(const std::string& text, const tokenizer::Tokenizer* tok) {
  if (tok == nullptr) return bad(ApiErrorKind::kUnsupported, "this model has no tokenizer: send the prompt as token ids");
  PromptInput p;
  p.text = text;
  if (tok->add_bos() && tok->bos_id()) p.ids.push_back(*tok->bos_id());
  tok->encode(text, p.ids);
  if (p.ids.empty()) return bad(ApiErrorKind::kInvalidValue, "'prompt' must not be empty");
  return p;
}

ApiStatus read_prompts(const Json& body, const RequestLimits& lim, const tokenizer::Tokenizer* tok,
                       std::vector<PromptInput>& out) {
  const Json* prompt = field(body, "prompt");
  if (prompt == nullptr) return bad(ApiErrorKind::kMissingField, "'prompt' is required");
  if (prompt->is_string()) {
    DSV4_API_TRY(p, read_text(prompt->get<std::string>(), tok));
    out.push_back(std::move(p));
    return Done{};
  }
  if (!prompt->is_array())
    return bad(ApiErrorKind::kInvalidType, "'prompt' must be a string, an array of token ids, or an array of those");
  if (prompt->empty()) return bad(ApiErrorKind::kInvalidValue, "'prompt' must not be empty");
  if (is_id_array(*prompt)) {
    DSV4_API_TRY(p, read_ids(*prompt, lim.vocab_size, "prompt"));
    out.push_back(std::move(p));
    return Done{};
  }
  for (size_t i = 0; i < prompt->size(); ++i) {
    const Json& e = (*prompt)[i];
    const std::string path = "prompt[" + std::to_string(i) + "]";
    if (e.is_string()) {
      DSV4_API_TRY(p, read_text(e.get<std::string>(), tok));
      out.push_back(std::move(p));
    } else if (is_id_array(e)) {
      DSV4_API_TRY(p, read_ids(e, lim.vocab_size, path));
      out.push_back(std::move(p));
    } else {
      return bad(ApiErrorKind::kInvalidType, "'" + path + "' must be a string or a non-empty array of token ids");
    }
  }
  return Done{};
}

}  // namespace

ApiResult<CompletionRequest> parse_completion_request(const Json& body, const RequestLimits& lim,
                                                      const tokenizer::Tokenizer* tok) {
  CompletionRequest req;
  DSV4_API_TRY_STATUS(parse_common(body, lim, req.common));
  DSV4_API_TRY(suffix, opt_string(body, "suffix", "suffix"));
  if (suffix && !suffix->empty()) return api_error(ApiErrorKind::kUnsupported, "'suffix' is not supported", "suffix");
  DSV4_API_TRY(best_of, opt_int(body, "best_of", "best_of"));
  if (best_of && *best_of != req.common.n)
    return api_error(ApiErrorKind::kUnsupported, "'best_of' other than n is not supported", "best_of");
  DSV4_API_TRY(echo, opt_bool(body, "echo", "echo"));
  req.echo = echo.value_or(false);
  DSV4_API_TRY(lp, opt_int(body, "logprobs", "logprobs"));
  if (lp && (*lp < 0 || *lp > sampling::kMaxTopLogprobs))
    return api_error(ApiErrorKind::kInvalidValue, "'logprobs' = " + std::to_string(*lp) + " is out of range [0, 20]", "logprobs");
  if (lp) req.logprobs = static_cast<int32_t>(*lp);
  req.common.params.logprobs = req.logprobs;
  DSV4_API_TRY_STATUS(read_prompts(body, lim, tok, req.prompts));
  if (req.prompts.size() * static_cast<size_t>(req.common.n) > kMaxChoicesPerRequest)
    return bad(ApiErrorKind::kInvalidValue, "prompts x n must be at most " + std::to_string(kMaxChoicesPerRequest));
  return req;
}

}  // namespace dsv4::server
