// Engine requests of one API request (see generation.h).
#include "server/generation.h"

#include <algorithm>

namespace dsv4::server {

bool GenerationRegistry::try_admit(int64_t n) {
  std::lock_guard lk(mu_);
  if (inflight_ + n > capacity_) return false;
  inflight_ += n;
  return true;
}

void GenerationRegistry::release(int64_t n) {
  std::lock_guard lk(mu_);
  inflight_ -= n;
}

void GenerationRegistry::add(Generation* g) {
  std::lock_guard lk(mu_);
  active_.insert(g);
}

void GenerationRegistry::remove(Generation* g) {
  {
    std::lock_guard lk(mu_);
    active_.erase(g);
  }
  cv_.notify_all();
}

void GenerationRegistry::cancel_all() {
  std::lock_guard lk(mu_);
  for (Generation* g : active_) g->cancel();
}

int64_t GenerationRegistry::inflight() const {
  std::lock_guard lk(mu_);
  return inflight_;
}

size_t GenerationRegistry::active() const {
  std::lock_guard lk(mu_);
  return active_.size();
}

bool GenerationRegistry::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return active_.empty(); });
}

Generation::Generation(runtime::Engine& engine, GenerationRegistry& registry, ServerMetrics& metrics,
                       Clock::time_point arrival)
    : engine_(engine), registry_(registry), metrics_(metrics), arrival_(arrival) {
  registry_.add(this);
}

Generation::~Generation() {
  registry_.remove(this);
  cancel();
  std::lock_guard lk(mu_);
  for (const ChoiceStats& s : stats_) {
    if (!s.final) metrics_.on_finished("cancelled", s.prompt_len, s.n_tokens);
  }
  registry_.release(admitted_);
}

ApiStatus Generation::submit(std::vector<ChoiceSpec> choices) {
  const auto n = static_cast<int64_t>(choices.size());
  if (!registry_.try_admit(n))
    return api_error(ApiErrorKind::kTooManyRequests, "too many requests are waiting; retry later");
  admitted_ = n;
  for (ChoiceSpec& c : choices) {
    const auto prompt_len = static_cast<int64_t>(c.prompt.size());
    auto id = engine_.submit({.prompt = std::move(c.prompt), .params = c.params, .skip_special_tokens = c.skip_special_tokens},
                             stream_);
    if (!id.ok()) {
      cancel();
      std::lock_guard lk(mu_);
      for (ChoiceStats& s : stats_) s.final = true;  // cancelled; their events are not awaited
      n_final_ = stats_.size();
      const bool context = id.message().find("maximum context") != std::string::npos;
      return api_error(context ? ApiErrorKind::kContextLengthExceeded : ApiErrorKind::kInvalidValue, id.message());
    }
    std::lock_guard lk(mu_);
    ids_.push_back(*id);
    stats_.push_back({.prompt_len = prompt_len});
  }
  return Done{};
}

bool Generation::next(runtime::Event& ev, size_t& choice, std::chrono::milliseconds wait) {
  for (;;) {
    if (done()) return false;
    if (!stream_->next(ev, wait)) return false;
    std::lock_guard lk(mu_);
    auto it = std::find(ids_.begin(), ids_.end(), ev.id);
    if (it == ids_.end()) continue;
    choice = static_cast<size_t>(it - ids_.begin());
    if (stats_[choice].final) continue;
    record(choice, ev);
    return true;
  }
}

void Generation::record(size_t choice, const runtime::Event& ev) {
  ChoiceStats& s = stats_[choice];
  const auto now = Clock::now();
  if (ev.kind == runtime::EventKind::Token) {
    if (s.n_tokens++ == 0) {
      s.first_token = now;
      metrics_.observe_ttft(std::chrono::duration<double>(now - arrival_).count());
    }
    return;
  }
  if (!ev.final()) return;
  s.final = true;
  ++n_final_;
  if (s.n_tokens > 1)
    metrics_.observe_tpot(std::chrono::duration<double>(now - s.first_token).count() / static_cast<double>(s.n_tokens - 1));
  metrics_.observe_e2e(std::chrono::duration<double>(now - arrival_).count());
  const std::string reason = ev.kind == runtime::EventKind::Error ? "error" : ev.finish_reason;
  metrics_.on_finished(reason, ev.usage.prompt_tokens, ev.usage.completion_tokens);
}

void Generation::cancel() {
  std::lock_guard lk(mu_);
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (!stats_[i].final) engine_.cancel(ids_[i]);
  }
}

bool Generation::done() const {
  std::lock_guard lk(mu_);
  return n_final_ == stats_.size();
}

}  // namespace dsv4::server
