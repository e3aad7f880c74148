// Prometheus metrics (see metrics.h).
#include "server/metrics.h"

#include <cstdio>
#include <fstream>
#include <unistd.h>

namespace dsv4::server {
namespace {

std::string fmt(double v) {
  char b[64];
  std::snprintf(b, sizeof(b), "%.9g", v);
  return b;
}

void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void scalar(std::string& out, const std::string& name, const char* type, const char* help, double v) {
  header(out, name, type, help);
  out += name + " " + fmt(v) + "\n";
}

}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, std::string& out) const {
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + fmt(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + fmt(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

ServerMetrics::ServerMetrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}),
      tpot_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5}),
      e2e_({0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240}) {}

void ServerMetrics::on_http(const std::string& endpoint, int status) {
  std::lock_guard lk(mu_);
  ++http_[{endpoint, status}];
}

void ServerMetrics::on_finished(const std::string& reason, int64_t prompt_tokens, int64_t generated_tokens) {
  std::lock_guard lk(mu_);
  ++finished_[reason];
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generated_tokens_ += static_cast<uint64_t>(generated_tokens);
}

void ServerMetrics::observe_ttft(double s) {
  std::lock_guard lk(mu_);
  ttft_.observe(s);
}

void ServerMetrics::observe_tpot(double s) {
  std::lock_guard lk(mu_);
  tpot_.observe(s);
}

void ServerMetrics::observe_e2e(double s) {
  std::lock_guard lk(mu_);
  e2e_.observe(s);
}

std::string ServerMetrics::render(const ServerGauges& g) const {
  std::string out;
  std::lock_guard lk(mu_);
  header(out, "dsv4_http_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
  for (const auto& [key, n] : http_)
    out += "dsv4_http_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  header(out, "dsv4_request_finished_total", "counter", "Generated choices finished, by finish reason.");
  for (const auto& [reason, n] : finished_)
    out += "dsv4_request_finished_total{reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  scalar(out, "dsv4_prompt_tokens_total", "counter", "Prompt tokens of finished choices.", static_cast<double>(prompt_tokens_));
  scalar(out, "dsv4_generation_tokens_total", "counter", "Generated tokens of finished choices.", static_cast<double>(generated_tokens_));
  header(out, "dsv4_time_to_first_token_seconds", "histogram", "From request arrival to the first generated token.");
  ttft_.render("dsv4_time_to_first_token_seconds", out);
  header(out, "dsv4_time_per_output_token_seconds", "histogram", "Mean time between tokens after the first, per choice.");
  tpot_.render("dsv4_time_per_output_token_seconds", out);
  header(out, "dsv4_e2e_request_latency_seconds", "histogram", "From request arrival to the last token, per choice.");
  e2e_.render("dsv4_e2e_request_latency_seconds", out);
  scalar(out, "dsv4_num_requests_waiting", "gauge", "Requests queued in the engine.", static_cast<double>(g.engine.waiting));
  scalar(out, "dsv4_num_requests_running", "gauge", "Requests holding KV in the engine.", static_cast<double>(g.engine.running));
  scalar(out, "dsv4_kv_pages_used", "gauge", "KV cache pages in use (compressed pool).", static_cast<double>(g.engine.kv_pages_used));
  scalar(out, "dsv4_kv_pages_free", "gauge", "KV cache pages free (compressed pool).", static_cast<double>(g.engine.kv_pages_free));
  scalar(out, "dsv4_prefix_cache_pages", "gauge", "Pages in the prefix cache (0 without --enable-prefix-caching).",
         static_cast<double>(g.engine.prefix_cache_pages));
  scalar(out, "dsv4_prefix_cache_queried_tokens_total", "counter", "Prompt tokens looked up in the prefix cache at admission.",
         static_cast<double>(g.engine.prefix_queried_tokens));
  scalar(out, "dsv4_prefix_cache_hit_tokens_total", "counter", "Prompt tokens served from the prefix cache.",
         static_cast<double>(g.engine.prefix_hit_tokens));
  scalar(out, "dsv4_engine_steps_total", "counter", "Engine steps run.", static_cast<double>(g.engine.steps));
  scalar(out, "dsv4_preemptions_total", "counter", "Requests preempted and recomputed.", static_cast<double>(g.engine.preemptions));
  scalar(out, "dsv4_server_inflight_requests", "gauge", "Choices submitted by the server and not finished.", static_cast<double>(g.inflight_requests));
  scalar(out, "dsv4_http_open_connections", "gauge", "Open client connections.", static_cast<double>(g.open_connections));
  scalar(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", static_cast<double>(resident_memory_bytes()));
  return out;
}

int64_t resident_memory_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace dsv4::server
