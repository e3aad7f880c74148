// `dsv4 serve [-m DIR]`: the OpenAI-compatible HTTP server (docs/server.md). Binds to 127.0.0.1 unless told
// otherwise, logs one line per request on stderr, prints "listening on http://HOST:PORT" on stdout once ready,
// and exits with 0 after SIGINT / SIGTERM: it stops accepting, lets requests in flight finish for
// --shutdown-timeout seconds, cancels the rest (a second signal cancels at once).
#include <filesystem>
#include <iostream>

#include "cli/common.h"
#include "cli/commands.h"
#include "server/api_server.h"
#include "server/shutdown_signals.h"

namespace dsv4::cli {
namespace {

struct ServeFlags {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  std::vector<std::string> model_names;
  int64_t max_queue = 256;
  std::string max_body = "8MiB";
  int max_connections = 1024;
  double shutdown_timeout = 10;
  double sse_keepalive = 15;
  bool no_access_log = false;
};

void add_serve_options(CLI::App* cmd, ServeFlags& f) {
  cmd->add_option("--host", f.host, "address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface)")
      ->capture_default_str();
  cmd->add_option("--port", f.port, "TCP port (0: any free port, printed at start)")->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", f.api_key, "require 'Authorization: Bearer KEY' (also from $DSV4_API_KEY)")
      ->envname("DSV4_API_KEY");
  cmd->add_option("--served-model-name", f.model_names, "model name(s) clients use (default: the model directory's name)");
  cmd->add_option("--max-queue", f.max_queue, "requests that may wait for a slot beyond --max-running; more get 429")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-body", f.max_body, "largest request body (e.g. 8MiB); larger ones get 413")->capture_default_str();
  cmd->add_option("--max-connections", f.max_connections, "open connections; more are answered 503")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--shutdown-timeout", f.shutdown_timeout, "seconds requests in flight may finish after SIGINT/SIGTERM")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--sse-keepalive", f.sse_keepalive,
                  "seconds a stream may be silent (a tool call is sent when it closes) before an SSE comment "
                  "line keeps proxies and clients from dropping it (0: never)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-access-log", f.no_access_log, "do not log one line per request");
}

std::string default_name(const std::string& dir) {
  std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().empty() ? "dsv4" : p.filename().string();
}

int serve(EngineFlags& ef, ServeFlags& sf) {
  auto body = parse_bytes(sf.max_body);
  if (!body.ok()) {
    std::cerr << "error: --max-body: " << body.message() << "\n";
    return 1;
  }
  server::block_shutdown_signals();  // before the engine starts its thread
  auto engine = create_engine_or_report(ef);
  if (!engine) return 1;
  if (engine->tokenizer() == nullptr)
    std::cerr << "warning: " << ef.model.model_dir << " has no tokenizer.json: only /v1/completions with token ids works\n";
  server::ServerOptions opts;
  opts.http.host = sf.host;
  opts.http.port = sf.port;
  opts.http.limits.max_body_bytes = static_cast<size_t>(*body);
  opts.http.max_connections = sf.max_connections;
  opts.http.access_log = !sf.no_access_log;
  opts.api_key = sf.api_key;
  opts.model_names = sf.model_names.empty() ? std::vector<std::string>{default_name(ef.model.model_dir)} : sf.model_names;
  opts.max_running = ef.max_running;
  opts.max_queue = sf.max_queue;
  opts.shutdown_grace = std::chrono::milliseconds(static_cast<int64_t>(sf.shutdown_timeout * 1000));
  opts.sse_keepalive = std::chrono::milliseconds(static_cast<int64_t>(sf.sse_keepalive * 1000));
  server::ApiServer srv(*engine, opts);
  if (auto s = srv.bind(); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 1;
  }
  server::SignalWatcher watcher([&srv](int) { srv.request_stop(); });
  std::cout << "dsv4 serve: listening on http://" << sf.host << ":" << srv.port() << " (model "
            << opts.model_names.front() << ", max model length " << engine->max_model_len() << ")" << std::endl;
  srv.run();
  std::cerr << "dsv4 serve: stopped\n";
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat, completions, models, metrics)");
  static EngineFlags ef;
  static ServeFlags sf;
  add_engine_options(cmd, ef);
  add_serve_options(cmd, sf);
  cmd->callback([&ctx] { ctx.exit_code = serve(ef, sf); });
}

}  // namespace dsv4::cli
