// Endpoint helpers (see endpoint_util.h).
#include "server/endpoint_util.h"

#include "server/openai_json.h"

namespace dsv4::server {

void send_json(http::ResponseWriter& w, int status, const Json& body) { w.send(status, "application/json", dump(body)); }

void send_error(http::ResponseWriter& w, const ApiError& e) {
  w.send(http_status(e.kind), "application/json", error_body(e));
}

bool pump_events(Generation& gen, http::ResponseWriter& w, std::chrono::milliseconds keepalive,
                 const std::function<bool(size_t, const runtime::Event&)>& on_event) {
  constexpr auto kPoll = std::chrono::milliseconds(50);
  constexpr int kEventsPerCheck = 32;
  runtime::Event ev;
  size_t choice = 0;
  int since_check = 0;
  while (!gen.done()) {
    if (keepalive.count() > 0 && Clock::now() - w.last_write() >= keepalive && !w.write(kSseKeepAlive)) {
      gen.cancel();
      return false;
    }
    if (!gen.next(ev, choice, kPoll)) {
      if (!gen.done() && w.client_gone()) {
        gen.cancel();
        return false;
      }
      continue;
    }
    if (++since_check >= kEventsPerCheck) {
      since_check = 0;
      if (w.client_gone()) {
        gen.cancel();
        return false;
      }
    }
    if (!on_event(choice, ev)) {
      gen.cancel();
      return false;
    }
  }
  return true;
}

sampling::SamplingParams choice_params(const sampling::SamplingParams& p, size_t k) {
  sampling::SamplingParams out = p;
  if (out.seed) out.seed = *out.seed + k;
  return out;
}

ApiError choice_failure(const runtime::Event& ev) {
  if (ev.kind == runtime::EventKind::Error) return api_error(ApiErrorKind::kInternal, "generation failed: " + ev.error);
  return api_error(ApiErrorKind::kUnavailable, "the request was cancelled (the server is shutting down)");
}

}  // namespace dsv4::server
