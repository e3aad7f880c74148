// Generation: the engine requests of one API request (its n choices, or prompts x n), submitted to the one
// Engine through its public API with a shared RequestStream, and their events read back in order. It records
// the per-choice metrics (time to first token, time per output token, latency, tokens, finish reasons), and
// its destructor cancels choices that have not finished, so a handler that returns early (client gone,
// write failed) frees their KV pages at the engine's next step.
// GenerationRegistry admits requests (at most `capacity` choices in flight, else 429) and lets shutdown
// cancel everything still running.
#pragma once
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "runtime/engine.h"
#include "server/api_error.h"
#include "server/metrics.h"

namespace dsv4::server {

using Clock = std::chrono::steady_clock;

struct ChoiceSpec {
  std::vector<int32_t> prompt;
  sampling::SamplingParams params;
  bool skip_special_tokens = true;
};

class Generation;

class GenerationRegistry {
 public:
  explicit GenerationRegistry(int64_t capacity) : capacity_(capacity) {}
  bool try_admit(int64_t n_choices);  // reserves; false when over capacity
  void release(int64_t n_choices);
  void add(Generation* g);
  void remove(Generation* g);
  void cancel_all();
  int64_t inflight() const;
  size_t active() const;
  // Waits up to `timeout` until no Generation is active; true when none is.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  int64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t inflight_ = 0;
  std::set<Generation*> active_;
};

class Generation {
 public:
  Generation(runtime::Engine& engine, GenerationRegistry& registry, ServerMetrics& metrics, Clock::time_point arrival);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Submits every choice, or none: on failure the ones already submitted are cancelled. 429 when the
  // registry has no room.
  ApiStatus submit(std::vector<ChoiceSpec> choices);
  // The next event of any choice (`choice` = its index), waiting up to `wait`; false on timeout.
  bool next(runtime::Event& ev, size_t& choice, std::chrono::milliseconds wait);
  void cancel();  // thread-safe
  bool done() const;
  size_t n_choices() const { return ids_.size(); }

 private:
  struct ChoiceStats {
    bool final = false;
    int64_t prompt_len = 0;
    int64_t n_tokens = 0;
    Clock::time_point first_token;
  };
  void record(size_t choice, const runtime::Event& ev);

  runtime::Engine& engine_;
  GenerationRegistry& registry_;
  ServerMetrics& metrics_;
  Clock::time_point arrival_;
  std::shared_ptr<runtime::RequestStream> stream_ = std::make_shared<runtime::RequestStream>();
  mutable std::mutex mu_;  // ids_ / stats_ against cancel() from the shutdown thread
  std::vector<runtime::RequestId> ids_;
  std::vector<ChoiceStats> stats_;
  size_t n_final_ = 0;
  int64_t admitted_ = 0;
};

}  // namespace dsv4::server
