// The public boundary of the engine (STYLE rule 6): a request goes in, events come out. Server and CLI see
// only these types and Engine, never tensors. RequestStream is a thread-safe queue of one request's events.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sampling/logprobs.h"
#include "sampling/sampling_params.h"

namespace dsv4::runtime {

using RequestId = int64_t;

struct GenerateRequest {
  std::vector<int32_t> prompt;        // token ids, non-empty
  sampling::SamplingParams params;    // validated by submit()
  bool skip_special_tokens = true;    // hide special tokens in text deltas
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct TokenLogprobs {
  int32_t token = 0;
  float logprob = 0.0f;
  std::vector<sampling::TokenLogprob> top;  // descending
};

enum class EventKind : uint8_t {
  Token,     // one generated token: ids, text delta (may be empty while held back for stop strings), logprobs
  Finished,  // the last event of a request: finish_reason and usage (text holds any released tail)
  Error,     // the request failed; error says why (also the last event)
  Progress,  // prefill progress of a long prompt: usage.prompt_tokens of prefilled tokens so far (informational)
};

struct Event {
  EventKind kind = EventKind::Token;
  RequestId id = 0;
  std::vector<int32_t> token_ids;
  std::string text;
  std::optional<TokenLogprobs> logprobs;
  std::string finish_reason;  // "stop", "length", "cancelled" (Finished only)
  Usage usage;
  std::string error;
  bool final() const { return kind == EventKind::Finished || kind == EventKind::Error; }
};

class RequestStream {
 public:
  void push(Event e) {
    {
      std::lock_guard lk(mu_);
      q_.push_back(std::move(e));
    }
    cv_.notify_all();
  }
  // Waits up to `timeout` for the next event; false on timeout.
  bool next(Event& out, std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) {
    std::unique_lock lk(mu_);
    auto ready = [&] { return !q_.empty(); };
    if (timeout == std::chrono::milliseconds::max())
      cv_.wait(lk, ready);
    else if (!cv_.wait_for(lk, timeout, ready))
      return false;
    out = std::move(q_.front());
    q_.pop_front();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> q_;
};

}  // namespace dsv4::runtime
