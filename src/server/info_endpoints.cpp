// The endpoints that do not generate: GET /v1/models, GET /health, GET /metrics, POST /tokenize and
// POST /detokenize (vLLM's shapes; /tokenize also renders chat messages, and then returns the rendered
// prompt as "text" so a client can see exactly what the model is given).
#include "server/chat_request.h"
#include "server/endpoint_util.h"
#include "server/endpoints.h"

namespace dsv4::server {
namespace {

Json model_card(const ServerContext& ctx, const std::string& name) {
  return Json{{"id", name}, {"object", "model"}, {"created", ctx.created}, {"owned_by", "dsv4"},
              {"max_model_len", ctx.engine.max_model_len()}};
}

ApiResult<Json> tokenize(const ServerContext& ctx, const Json& body) {
  const tokenizer::Tokenizer* tok = ctx.engine.tokenizer();
  if (tok == nullptr) return api_error(ApiErrorKind::kUnsupported, "this model has no tokenizer.json");
  Json out = Json::object();
  std::vector<int32_t> ids;
  if (field(body, "messages") != nullptr) {
    DSV4_API_TRY(chat, parse_chat_request(body, ctx.limits));
    std::string text;
    DSV4_API_TRY(rendered, render_chat_prompt(chat, *tok, &text));
    ids = std::move(rendered);
    out["text"] = text;
  } else {
    DSV4_API_TRY(prompt, opt_string(body, "prompt", "prompt"));
    if (!prompt) return api_error(ApiErrorKind::kMissingField, "'prompt' or 'messages' is required", "prompt");
    DSV4_API_TRY(special, opt_bool(body, "add_special_tokens", "add_special_tokens"));
    if (special.value_or(true) && tok->add_bos() && tok->bos_id()) ids.push_back(*tok->bos_id());
    tok->encode(*prompt, ids);
  }
  out["count"] = ids.size();
  out["max_model_len"] = ctx.engine.max_model_len();
  out["tokens"] = ids;
  return out;
}

ApiResult<Json> detokenize(const ServerContext& ctx, const Json& body) {
  const tokenizer::Tokenizer* tok = ctx.engine.tokenizer();
  if (tok == nullptr) return api_error(ApiErrorKind::kUnsupported, "this model has no tokenizer.json");
  const Json* tokens = field(body, "tokens");
  if (tokens == nullptr) return api_error(ApiErrorKind::kMissingField, "'tokens' is required", "tokens");
  if (!tokens->is_array()) return api_error(ApiErrorKind::kInvalidType, "'tokens' must be an array of token ids", "tokens");
  std::vector<int32_t> ids;
  for (const Json& t : *tokens) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok->vocab_size())
      return api_error(ApiErrorKind::kInvalidValue, "'tokens' entries must be token ids in [0, " +
                                                        std::to_string(tok->vocab_size()) + ")", "tokens");
    ids.push_back(t.get<int32_t>());
  }
  auto text = tok->decode(ids);
  if (!text.ok()) return api_error(ApiErrorKind::kInvalidValue, text.message(), "tokens");
  return Json{{"prompt", *text}};
}

}  // namespace

void handle_models(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w) {
  const std::string prefix = "/v1/models/";
  if (req.path.rfind(prefix, 0) == 0) {
    const std::string name = req.path.substr(prefix.size());
    for (const std::string& m : ctx.opts.model_names) {
      if (m == name) return send_json(w, 200, model_card(ctx, m));
    }
    return send_error(w, api_error(ApiErrorKind::kModelNotFound, "The model '" + name + "' does not exist", "model"));
  }
  Json data = Json::array();
  for (const std::string& m : ctx.opts.model_names) data.push_back(model_card(ctx, m));
  send_json(w, 200, Json{{"object", "list"}, {"data", std::move(data)}});
}

void handle_health(ServerContext& ctx, const http::HttpRequest&, http::ResponseWriter& w) {
  if (ctx.stopping.load()) return send_error(w, api_error(ApiErrorKind::kUnavailable, "the server is shutting down"));
  send_json(w, 200, Json{{"status", "ok"}});
}

void handle_metrics(ServerContext& ctx, const http::HttpRequest&, http::ResponseWriter& w) {
  const ServerGauges g{.engine = ctx.engine.stats(), .inflight_requests = ctx.registry.inflight(),
                       .open_connections = ctx.http != nullptr ? ctx.http->open_connections() : 0};
  w.send(200, "text/plain; version=0.0.4; charset=utf-8", ctx.metrics.render(g));
}

void handle_tokenize(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w) {
  auto body = parse_json_body(req.body);
  if (!body.ok()) return send_error(w, body.error());
  auto out = tokenize(ctx, *body);
  if (!out.ok()) return send_error(w, out.error());
  send_json(w, 200, *out);
}

void handle_detokenize(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w) {
  auto body = parse_json_body(req.body);
  if (!body.ok()) return send_error(w, body.error());
  auto out = detokenize(ctx, *body);
  if (!out.ok()) return send_error(w, out.error());
  send_json(w, 200, *out);
}

}  // namespace dsv4::server
