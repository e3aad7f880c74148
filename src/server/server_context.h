// What every endpoint handler shares: the engine (through its public API only), the options, request limits,
// metrics, the registry of requests in flight, id generation and the special-token strings. Owned by ApiServer.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/common_request.h"
#include "server/generation.h"
#include "server/http/http_server.h"
#include "server/metrics.h"
#include "server/openai_json.h"
#include "server/special_filter.h"

namespace dsv4::server {

struct ServerOptions {
  http::HttpServerOptions http;
  std::string api_key;                   // empty: no authentication
  std::vector<std::string> model_names;  // served model names; the first is reported (required)
  int64_t max_running = 16;              // the engine's sequence slots
  int64_t max_queue = 256;               // choices that may wait beyond the running ones; more -> 429
  int max_n = 16;                        // `n` limit
  std::chrono::milliseconds shutdown_grace{10000};  // how long requests in flight may finish on shutdown
  std::chrono::milliseconds sse_keepalive{15000};   // an SSE comment after this long without output (0: never)
};

struct ServerContext {
  ServerContext(runtime::Engine& e, ServerOptions o);
  runtime::Engine& engine;
  ServerOptions opts;
  RequestLimits limits;
  ServerMetrics metrics;
  GenerationRegistry registry;
  IdGenerator ids;
  SpecialStrings specials;  // the tokenizer's special tokens (empty without a tokenizer)
  int64_t created = 0;      // server start, unix seconds
  std::atomic<bool> stopping{false};
  const http::HttpServer* http = nullptr;  // for the open-connections gauge
};

}  // namespace dsv4::server
