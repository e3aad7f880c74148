// POST /v1/chat/completions: render the messages with the V4 chat encoding, submit n choices, and translate
// their text (special tokens kept for the parser) into chat.completion or chat.completion.chunk objects.
#include "server/chat_choice.h"
#include "server/chat_request.h"
#include "server/endpoint_util.h"
#include "server/endpoints.h"

namespace dsv4::server {
namespace {

struct ChatRun {
  const tokenizer::Tokenizer* tok = nullptr;
  std::string id, model;
  int64_t created = 0;
  bool stream = false, include_usage = false, logprobs = false;
  std::vector<ChatChoice> choices;
  std::vector<Json> logprobs_content;  // per choice: the entries not yet sent (stream) or all of them
  std::vector<std::string> finish_reasons;
  std::vector<bool> started;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::optional<ApiError> failure;
};

Json chunk(const ChatRun& run, Json choices) {
  Json c = {{"id", run.id}, {"object", "chat.completion.chunk"}, {"created", run.created}, {"model", run.model},
            {"choices", std::move(choices)}};
  if (run.include_usage) c["usage"] = nullptr;
  return c;
}

Json choice_delta(size_t index, Json delta, Json logprobs, Json finish) {
  return Json{{"index", index}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)}, {"finish_reason", std::move(finish)}};
}

// Writes the chunks of one event of choice `k`; false when the client is gone.
bool stream_event(ChatRun& run, size_t k, std::vector<Json>& deltas, bool final, http::ResponseWriter& w) {
  std::string out;
  if (!run.started[k]) {
    run.started[k] = true;
    out += sse_data(chunk(run, Json::array({choice_delta(k, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)})));
  }
  Json lp = run.logprobs && !run.logprobs_content[k].empty() ? Json{{"content", run.logprobs_content[k]}} : Json(nullptr);
  if (!lp.is_null()) run.logprobs_content[k] = Json::array();
  if (deltas.empty() && !lp.is_null()) deltas.push_back(Json::object());
  for (Json& d : deltas) {
    out += sse_data(chunk(run, Json::array({choice_delta(k, std::move(d), std::move(lp), nullptr)})));
    lp = nullptr;
  }
  if (final) out += sse_data(chunk(run, Json::array({choice_delta(k, Json::object(), nullptr, run.finish_reasons[k])})));
  return out.empty() || w.write(out);
}

bool on_event(ChatRun& run, size_t k, const runtime::Event& ev, http::ResponseWriter& w) {
  if (ev.kind == runtime::EventKind::Progress) return true;
  std::vector<Json> deltas;
  if (ev.kind == runtime::EventKind::Token && ev.logprobs && run.logprobs)
    run.logprobs_content[k].push_back(chat_logprob(run.tok, *ev.logprobs));
  if (ev.final() && (ev.kind == runtime::EventKind::Error || ev.finish_reason == "cancelled")) {
    if (!run.failure) run.failure = choice_failure(ev);
    return !run.stream || w.write(sse_data(Json::parse(error_body(*run.failure))));
  }
  run.choices[k].push(ev.text, deltas);
  if (ev.final()) {
    run.choices[k].finish(deltas);
    run.finish_reasons[k] = run.choices[k].finish_reason(ev.finish_reason);
    run.prompt_tokens = ev.usage.prompt_tokens;
    run.completion_tokens += ev.usage.completion_tokens;
  }
  return !run.stream || stream_event(run, k, deltas, ev.final(), w);
}

Json final_response(ChatRun& run) {
  Json choices = Json::array();
  for (size_t k = 0; k < run.choices.size(); ++k) {
    Json lp = run.logprobs ? Json{{"content", run.logprobs_content[k]}} : Json(nullptr);
    choices.push_back(Json{{"index", k}, {"message", run.choices[k].message()}, {"logprobs", std::move(lp)},
                           {"finish_reason", run.finish_reasons[k]}});
  }
  return Json{{"id", run.id}, {"object", "chat.completion"}, {"created", run.created}, {"model", run.model},
              {"choices", std::move(choices)}, {"usage", usage_json(run.prompt_tokens, run.completion_tokens)}};
}

// Parses, renders and submits; the choices' ChatRun on success.
ApiResult<ChatRun> start(ServerContext& ctx, const http::HttpRequest& req, Generation& gen, http::ResponseWriter& w) {
  const tokenizer::Tokenizer* tok = ctx.engine.tokenizer();
  if (tok == nullptr)
    return api_error(ApiErrorKind::kUnsupported, "this model has no tokenizer.json: use /v1/completions with token ids");
  DSV4_API_TRY(body, parse_json_body(req.body));
  DSV4_API_TRY(chat, parse_chat_request(body, ctx.limits));
  DSV4_API_TRY(prompt, render_chat_prompt(chat, *tok));
  const PromptBudget budget{.prompt_len = static_cast<int64_t>(prompt.size()), .max_model_len = ctx.engine.max_model_len()};
  DSV4_API_TRY(max_tokens, resolve_max_tokens(chat.common, budget));
  chat.common.params.max_tokens = max_tokens;
  std::vector<ChoiceSpec> specs;
  for (int k = 0; k < chat.common.n; ++k)
    specs.push_back({.prompt = prompt, .params = choice_params(chat.common.params, k), .skip_special_tokens = false});
  DSV4_API_TRY_STATUS(gen.submit(std::move(specs)));
  w.annotate("prompt=" + std::to_string(prompt.size()) + " max_tokens=" + std::to_string(max_tokens) +
             " n=" + std::to_string(chat.common.n) + (chat.common.stream ? " stream" : ""));
  ChatRun run{.tok = tok, .id = ctx.ids.next("chatcmpl-"), .model = chat.common.model, .created = unix_time_now(),
              .stream = chat.common.stream, .include_usage = chat.common.include_usage, .logprobs = chat.logprobs};
  const SpecialStrings* specials = chat.common.skip_special_tokens ? &ctx.specials : nullptr;
  for (int k = 0; k < chat.common.n; ++k)
    run.choices.emplace_back(chat.encode.thinking_mode, specials, [&ids = ctx.ids] { return ids.next("call_"); });
  run.logprobs_content.assign(run.choices.size(), Json::array());
  run.finish_reasons.assign(run.choices.size(), "stop");
  run.started.assign(run.choices.size(), false);
  return run;
}

}  // namespace

void handle_chat_completions(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w) {
  Generation gen(ctx.engine, ctx.registry, ctx.metrics, Clock::now());
  auto started = start(ctx, req, gen, w);
  if (!started.ok()) return send_error(w, started.error());
  ChatRun& run = *started;
  if (run.stream && !w.begin_stream(200, "text/event-stream")) return;
  const bool complete = pump_events(gen, w, run.stream ? ctx.opts.sse_keepalive : std::chrono::milliseconds(0), [&](size_t k, const runtime::Event& ev) { return on_event(run, k, ev, w); });
  w.annotate("completion=" + std::to_string(run.completion_tokens) + (complete ? "" : " aborted"));
  if (!complete) return;
  if (run.stream) {
    std::string tail;
    if (run.include_usage && !run.failure) {
      Json u = chunk(run, Json::array());
      u["usage"] = usage_json(run.prompt_tokens, run.completion_tokens);
      tail += sse_data(u);
    }
    w.write(tail + std::string(kSseDone));
    return;
  }
  if (run.failure) return send_error(w, *run.failure);
  send_json(w, 200, final_response(run));
}

}  // namespace dsv4::server
