// ApiServer: the OpenAI-compatible HTTP server of `dsv4 serve` over one Engine. Routes requests to the
// endpoint handlers, checks the API key (Authorization: Bearer KEY) on every endpoint except /health and
// /metrics, counts responses by endpoint and status, and shuts down in order: stop accepting, let requests in
// flight finish for the grace period, cancel the rest, wait for connections to close.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /v1/models/{id},
// GET /health, GET /metrics, POST /tokenize, POST /detokenize.
#pragma once
#include <memory>

#include "core/result.h"
#include "runtime/engine.h"
#include "server/http/http_server.h"
#include "server/server_context.h"

namespace dsv4::server {

class ApiServer {
 public:
  ApiServer(runtime::Engine& engine, ServerOptions opts);
  ~ApiServer();
  Status bind();
  int port() const { return http_->port(); }
  // Serves until request_stop(), then drains (see above) and returns.
  void run();
  void request_stop();  // thread-safe; a second call also cancels everything in flight at once

 private:
  void handle(const http::HttpRequest& req, http::ResponseWriter& w);
  void drain();

  ServerContext ctx_;
  std::unique_ptr<http::HttpServer> http_;
  std::atomic<int> stop_requests_{0};
};

}  // namespace dsv4::server
