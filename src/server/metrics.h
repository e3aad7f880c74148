// Server metrics in the Prometheus text format (GET /metrics): HTTP requests by endpoint and status, finished
// choices by reason, prompt and generated tokens, time-to-first-token, time-per-output-token and end-to-end
// latency histograms, and at scrape time the engine's gauges (Engine::stats(): waiting and running requests,
// KV pages used and free, steps, preemptions), requests in flight in the server, open connections and the
// process's resident memory. Thread-safe; counters only grow.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/engine.h"

namespace dsv4::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of `name`.
  void render(const std::string& name, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct ServerGauges {
  runtime::EngineStats engine;
  int64_t inflight_requests = 0;  // choices submitted by the server and not finished
  int64_t open_connections = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();
  void on_http(const std::string& endpoint, int status);
  void on_finished(const std::string& reason, int64_t prompt_tokens, int64_t generated_tokens);
  void observe_ttft(double seconds);
  void observe_tpot(double seconds);
  void observe_e2e(double seconds);
  std::string render(const ServerGauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> http_;
  std::map<std::string, uint64_t> finished_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, tpot_, e2e_;
};

// Resident set size of this process in bytes (Linux /proc/self/statm; 0 when unavailable).
int64_t resident_memory_bytes();

}  // namespace dsv4::server
