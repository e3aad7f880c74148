// POST /v1/completions: text completion of string or token-id prompts (batched prompts x n choices), with
// echo and legacy-format logprobs, streamed as text_completion chunks or answered at once.
#include "server/completion_request.h"
#include "server/endpoint_util.h"
#include "server/endpoints.h"

namespace dsv4::server {
namespace {

struct CompletionRun {
  const tokenizer::Tokenizer* tok = nullptr;
  std::string id, model;
  int64_t created = 0;
  bool stream = false, include_usage = false, logprobs = false;
  std::vector<std::string> text;      // per choice: all text so far (echo included)
  std::vector<size_t> sent;           // per choice: bytes of text already streamed
  std::vector<CompletionLogprobs> lps;
  std::vector<std::string> finish_reasons;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::optional<ApiError> failure;
};

Json chunk(const CompletionRun& run, size_t k, std::string text, Json logprobs, Json finish) {
  Json c = {{"id", run.id}, {"object", "text_completion"}, {"created", run.created}, {"model", run.model},
            {"choices", Json::array({Json{{"index", k}, {"text", std::move(text)}, {"logprobs", std::move(logprobs)},
                                          {"finish_reason", std::move(finish)}}})}};
  if (run.include_usage) c["usage"] = nullptr;
  return c;
}

bool on_event(CompletionRun& run, size_t k, const runtime::Event& ev, http::ResponseWriter& w) {
  if (ev.kind == runtime::EventKind::Progress) return true;
  if (ev.final() && (ev.kind == runtime::EventKind::Error || ev.finish_reason == "cancelled")) {
    if (!run.failure) run.failure = choice_failure(ev);
    return !run.stream || w.write(sse_data(Json::parse(error_body(*run.failure))));
  }
  if (ev.kind == runtime::EventKind::Token && ev.logprobs && run.logprobs)
    run.lps[k].add(run.tok, *ev.logprobs, run.text[k].size());
  run.text[k] += ev.text;
  if (ev.final()) {
    run.finish_reasons[k] = ev.finish_reason;
    run.completion_tokens += ev.usage.completion_tokens;
  }
  if (!run.stream) return true;
  std::string delta = run.text[k].substr(run.sent[k]);
  run.sent[k] = run.text[k].size();
  Json lp = run.logprobs ? run.lps[k].take() : Json(nullptr);
  if (delta.empty() && !ev.final() && (lp.is_null() || lp["tokens"].empty())) return true;
  return w.write(sse_data(chunk(run, k, std::move(delta), std::move(lp), ev.final() ? Json(ev.finish_reason) : Json(nullptr))));
}

Json final_response(const CompletionRun& run) {
  Json choices = Json::array();
  for (size_t k = 0; k < run.text.size(); ++k) {
    choices.push_back(Json{{"index", k}, {"text", run.text[k]},
                           {"logprobs", run.logprobs ? run.lps[k].json() : Json(nullptr)},
                           {"finish_reason", run.finish_reasons[k]}});
  }
  return Json{{"id", run.id}, {"object", "text_completion"}, {"created", run.created}, {"model", run.model},
              {"choices", std::move(choices)}, {"usage", usage_json(run.prompt_tokens, run.completion_tokens)}};
}

// Echo: the prompt text starts the choice's text (and, with logprobs, its tokens come first without logprobs).
void add_echo(CompletionRun& run, size_t k, const PromptInput& p) {
  if (run.logprobs) {
    size_t offset = 0;
    for (int32_t id : p.ids) {
      run.lps[k].add_prompt(run.tok, id, offset);
      if (run.tok == nullptr || !run.tok->is_special(id) || !p.text) offset += token_text(run.tok, id).size();
    }
  }
  if (p.text) {
    run.text[k] = *p.text;
  } else if (run.tok != nullptr) {
    auto t = run.tok->decode(p.ids);
    run.text[k] = t.ok() ? *t : "";
  }
}

ApiResult<CompletionRun> start(ServerContext& ctx, const http::HttpRequest& req, Generation& gen, http::ResponseWriter& w) {
  const tokenizer::Tokenizer* tok = ctx.engine.tokenizer();
  DSV4_API_TRY(body, parse_json_body(req.body));
  DSV4_API_TRY(creq, parse_completion_request(body, ctx.limits, tok));
  CompletionRun run{.tok = tok, .id = ctx.ids.next("cmpl-"), .model = creq.common.model, .created = unix_time_now(),
                    .stream = creq.common.stream, .include_usage = creq.common.include_usage,
                    .logprobs = creq.logprobs.has_value()};
  std::vector<ChoiceSpec> specs;
  int64_t n_prompt = 0;
  for (const PromptInput& p : creq.prompts) {
    const PromptBudget budget{.prompt_len = static_cast<int64_t>(p.ids.size()), .max_model_len = ctx.engine.max_model_len(),
                              .fallback = 16, .prompt_param = "prompt"};
    DSV4_API_TRY(max_tokens, resolve_max_tokens(creq.common, budget));
    n_prompt += static_cast<int64_t>(p.ids.size());
    for (int k = 0; k < creq.common.n; ++k) {
      sampling::SamplingParams params = choice_params(creq.common.params, specs.size());
      params.max_tokens = max_tokens;
      specs.push_back({.prompt = p.ids, .params = params, .skip_special_tokens = creq.common.skip_special_tokens});
      run.text.emplace_back();
      run.lps.emplace_back();
      if (creq.echo) add_echo(run, run.text.size() - 1, p);
    }
  }
  run.prompt_tokens = n_prompt;
  run.sent.assign(run.text.size(), 0);
  run.finish_reasons.assign(run.text.size(), "stop");
  DSV4_API_TRY_STATUS(gen.submit(std::move(specs)));
  w.annotate("prompt=" + std::to_string(n_prompt) + " choices=" + std::to_string(run.text.size()) +
             (run.stream ? " stream" : ""));
  return run;
}

}  // namespace

void handle_completions(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w) {
  Generation gen(ctx.engine, ctx.registry, ctx.metrics, Clock::now());
  auto started = start(ctx, req, gen, w);
  if (!started.ok()) return send_error(w, started.error());
  CompletionRun& run = *started;
  if (run.stream && !w.begin_stream(200, "text/event-stream")) return;
  const bool complete = pump_events(gen, w, run.stream ? ctx.opts.sse_keepalive : std::chrono::milliseconds(0), [&](size_t k, const runtime::Event& ev) { return on_event(run, k, ev, w); });
  w.annotate("completion=" + std::to_string(run.completion_tokens) + (complete ? "" : " aborted"));
  if (!complete) return;
  if (run.stream) {
    std::string tail;
    if (run.include_usage && !run.failure) {
      Json u = {{"id", run.id}, {"object", "text_completion"}, {"created", run.created}, {"model", run.model},
                {"choices", Json::array()}, {"usage", usage_json(run.prompt_tokens, run.completion_tokens)}};
      tail += sse_data(u);
    }
    w.write(tail + std::string(kSseDone));
    return;
  }
  if (run.failure) return send_error(w, *run.failure);
  send_json(w, 200, final_response(run));
}

}  // namespace dsv4::server
