// Helpers of the endpoint handlers: JSON and error responses, the event pump that reads a Generation while
// watching the client (a client that closed its connection cancels the request), and the per-choice seed.
#pragma once
#include <chrono>
#include <functional>

#include "server/api_error.h"
#include "server/generation.h"
#include "server/http/http_server.h"
#include "server/json_fields.h"

namespace dsv4::server {

void send_json(http::ResponseWriter& w, int status, const Json& body);
void send_error(http::ResponseWriter& w, const ApiError& e);

// Calls on_event(choice, event) for every event until all choices are final. Returns false, having cancelled
// the generation, when the client goes away or on_event returns false (a write failed). `keepalive` > 0 (an SSE
// stream): when nothing has been written for that long, an SSE comment line goes out, which clients ignore.
// A stream can be silent for minutes while the parser holds a tool call until it closes; without the comment,
// proxies and clients drop it (nginx after 60 s, Node's fetch after 300 s).
bool pump_events(Generation& gen, http::ResponseWriter& w, std::chrono::milliseconds keepalive,
                 const std::function<bool(size_t, const runtime::Event&)>& on_event);

// Choice k of a request samples with seed + k (wrapping), so n > 1 choices differ yet stay reproducible.
sampling::SamplingParams choice_params(const sampling::SamplingParams& p, size_t k);

// The error a choice that ended with `ev` (Error, or Finished "cancelled") reports to the client.
ApiError choice_failure(const runtime::Event& ev);

}  // namespace dsv4::server
