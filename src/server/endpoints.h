// The endpoint handlers of the OpenAI-compatible API. Each parses and validates its request (errors as
// OpenAI error JSON), talks to the engine only through Engine / GenerateRequest / Event, and answers.
#pragma once
#include "server/http/http_server.h"
#include "server/server_context.h"

namespace dsv4::server {

void handle_chat_completions(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w);  // POST /v1/chat/completions
void handle_completions(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w);       // POST /v1/completions
void handle_models(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w);            // GET /v1/models[/ID]
void handle_health(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w);            // GET /health
void handle_metrics(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w);           // GET /metrics
void handle_tokenize(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w);          // POST /tokenize
void handle_detokenize(ServerContext& ctx, const http::HttpRequest& req, http::ResponseWriter& w);        // POST /detokenize

}  // namespace dsv4::server
