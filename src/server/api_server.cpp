// Routing, authentication and shutdown of the API server (see api_server.h).
#include "server/api_server.h"

#include "core/log.h"
#include "server/endpoint_util.h"
#include "server/endpoints.h"

namespace dsv4::server {
namespace {

using HandlerFn = void (*)(ServerContext&, const http::HttpRequest&, http::ResponseWriter&);

struct Route {
  const char* path;  // exact, or a prefix when it ends in '/'
  const char* method;
  HandlerFn fn;
  bool needs_key;
};

constexpr Route kRoutes[] = {
    {"/v1/chat/completions", "POST", handle_chat_completions, true},
    {"/v1/completions", "POST", handle_completions, true},
    {"/v1/models", "GET", handle_models, true},
    {"/v1/models/", "GET", handle_models, true},
    {"/health", "GET", handle_health, false},
    {"/metrics", "GET", handle_metrics, false},
    {"/tokenize", "POST", handle_tokenize, true},
    {"/detokenize", "POST", handle_detokenize, true},
};

bool matches(const Route& r, const std::string& path) {
  const std::string_view p(r.path);
  return p.back() == '/' ? path.size() > p.size() && path.compare(0, p.size(), p) == 0 : path == p;
}

// Constant-time comparison, so response timing does not reveal how much of a key was right.
bool same_key(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  return diff == 0;
}

// Counts the response that passes through it by endpoint and status, before the first byte goes out (so a
// client that reads /metrics after its answer always sees it counted).
class StatusRecorder final : public http::ResponseWriter {
 public:
  StatusRecorder(http::ResponseWriter& w, ServerMetrics& metrics, std::string endpoint)
      : w_(w), metrics_(metrics), endpoint_(std::move(endpoint)) {}
  void send(int status, std::string_view type, std::string_view body) override {
    metrics_.on_http(endpoint_, status);
    w_.send(status, type, body);
  }
  bool begin_stream(int status, std::string_view type) override {
    metrics_.on_http(endpoint_, status);
    return w_.begin_stream(status, type);
  }
  bool write(std::string_view data) override { return w_.write(data); }
  void end_stream() override { w_.end_stream(); }
  bool client_gone() override { return w_.client_gone(); }
  Clock::time_point last_write() const override { return w_.last_write(); }
  void annotate(std::string note) override { w_.annotate(std::move(note)); }

 private:
  http::ResponseWriter& w_;
  ServerMetrics& metrics_;
  std::string endpoint_;
};

}  // namespace

ServerContext::ServerContext(runtime::Engine& e, ServerOptions o)
    : engine(e), opts(std::move(o)), registry(opts.max_running + opts.max_queue), created(unix_time_now()) {
  limits = RequestLimits{.model_names = opts.model_names, .vocab_size = static_cast<int32_t>(e.config().vocab_size),
                         .max_n = opts.max_n};
  if (const tokenizer::Tokenizer* tok = e.tokenizer()) {
    std::vector<std::string> specials;
    for (int32_t id = 0; id < tok->n_tokens(); ++id) {
      if (!tok->is_special(id)) continue;
      if (auto t = tok->id_to_token(id)) specials.push_back(*t);
    }
    this->specials = SpecialStrings(std::move(specials));
  }
}

ApiServer::ApiServer(runtime::Engine& engine, ServerOptions opts) : ctx_(engine, std::move(opts)) {
  http_ = std::make_unique<http::HttpServer>(ctx_.opts.http,
                                             [this](const http::HttpRequest& r, http::ResponseWriter& w) { handle(r, w); });
  ctx_.http = http_.get();
}

ApiServer::~ApiServer() {
  ctx_.registry.cancel_all();
  http_.reset();  // waits for the connection threads
}

Status ApiServer::bind() { return http_->bind(); }

void ApiServer::handle(const http::HttpRequest& req, http::ResponseWriter& w) {
  const Route* route = nullptr;
  bool path_known = false;
  for (const Route& r : kRoutes) {
    if (!matches(r, req.path)) continue;
    path_known = true;
    if (req.method == r.method) route = &r;
  }
  StatusRecorder rec(w, ctx_.metrics, route != nullptr ? route->path : "other");
  if (route == nullptr) {
    return send_error(rec, path_known ? api_error(ApiErrorKind::kMethodNotAllowed, req.method + " is not allowed on " + req.path)
                                      : api_error(ApiErrorKind::kNotFound, "no endpoint " + req.path));
  }
  if (ctx_.stopping.load() && route->fn != handle_health && route->fn != handle_metrics)
    return send_error(rec, api_error(ApiErrorKind::kUnavailable, "the server is shutting down"));
  if (route->needs_key && !ctx_.opts.api_key.empty()) {
    const std::string* auth = req.header("authorization");
    if (auth == nullptr || !same_key(*auth, "Bearer " + ctx_.opts.api_key)) {
      return send_error(rec, api_error(ApiErrorKind::kUnauthorized, auth == nullptr ? "missing API key (Authorization: Bearer KEY)"
                                                                                    : "incorrect API key"));
    }
  }
  route->fn(ctx_, req, rec);
}

void ApiServer::run() {
  http_->serve();
  drain();
}

void ApiServer::request_stop() {
  const int n = ++stop_requests_;
  ctx_.stopping.store(true);
  http_->stop();
  if (n > 1) ctx_.registry.cancel_all();
}

void ApiServer::drain() {
  const size_t active = ctx_.registry.active();
  if (active > 0) log::info("shutting down: waiting for " + std::to_string(active) + " request(s) in flight");
  if (!ctx_.registry.wait_idle(ctx_.opts.shutdown_grace)) {
    log::info("shutting down: cancelling " + std::to_string(ctx_.registry.active()) + " request(s)");
    ctx_.registry.cancel_all();
  }
  if (http_->wait_connections(std::chrono::seconds(5)) > 0)
    log::warn("shutting down: connections still open after 5 s");
}

}  // namespace dsv4::server
