// Scheduler: requests in and out (add_request, cancel, commit) and queue bookkeeping. The planning of a
// step is in scheduler_step.cpp, the integrity check in scheduler_integrity.cpp.
#include "scheduler/scheduler.h"

#include <algorithm>
#include <string>

#include "core/check.h"

namespace dsv4::scheduler {

Scheduler::Scheduler(const SchedulerConfig& config, kv::HybridKvManager& kv) : config_(config), kv_(&kv) {
  const Status s = validate(config);
  check(s.ok(), s.ok() ? "" : s.message());
}

Status Scheduler::add_request(RequestSpec spec) {
  const std::string name = "request " + std::to_string(spec.id);
  if (requests_.count(spec.id)) return make_error(name + ": id is already live");
  if (spec.prompt.empty()) return make_error(name + ": empty prompt");
  if (spec.max_new_tokens < 1)
    return make_error(name + ": max_new_tokens = " + std::to_string(spec.max_new_tokens) + ", expected >= 1");
  const int64_t n_prompt = static_cast<int64_t>(spec.prompt.size());
  const int64_t max_kv_tokens = n_prompt + spec.max_new_tokens - 1;  // the last sampled token is never fed
  if (!kv_->fits_alone(max_kv_tokens, config_.max_prefill_chunk))
    return make_error(name + ": prompt " + std::to_string(n_prompt) + " + max_new_tokens " +
                      std::to_string(spec.max_new_tokens) + " needs KV for " + std::to_string(max_kv_tokens) +
                      " tokens, more than the KV cache holds (" +
                      std::to_string(kv_->pool(kv::PoolKind::Compressed).n_pages()) + " compressed pages of " +
                      std::to_string(kv_->layout().page_tokens()) + " tokens)");
  Request r;
  r.id = spec.id;
  r.tokens = std::move(spec.prompt);
  r.n_prompt = n_prompt;
  r.max_new_tokens = spec.max_new_tokens;
  r.arrival = next_arrival_++;
  r.queued_step = step_;
  requests_.emplace(r.id, std::move(r));
  waiting_.push_back(spec.id);  // the newest arrival sorts last
  return Ok{};
}

bool Scheduler::cancel(ReqId id) {
  auto it = requests_.find(id);
  if (it == requests_.end() || it->second.cancel_requested) return false;
  if (it->second.in_flight)
    it->second.cancel_requested = true;  // the engine is using its pages: free them at commit()
  else
    end_request(id, FinishReason::Cancelled);
  return true;
}

const Request* Scheduler::find(ReqId id) const {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : &it->second;
}

Request& Scheduler::get(ReqId id) {
  auto it = requests_.find(id);
  check(it != requests_.end(), [&] { return "scheduler: unknown request " + std::to_string(id); });
  return it->second;
}

void Scheduler::insert_by_arrival(std::vector<ReqId>& queue, ReqId id) {
  const int64_t arrival = get(id).arrival;
  auto pos = std::lower_bound(queue.begin(), queue.end(), arrival,
                              [&](ReqId q, int64_t a) { return requests_.at(q).arrival < a; });
  queue.insert(pos, id);
}

void Scheduler::end_request(ReqId id, FinishReason reason) {
  const Request& r = get(id);
  ended_.push_back(Finished{.id = id, .reason = reason, .n_generated = r.n_generated()});
  kv_->free(id);  // no-op for a waiting or preempted request
  std::vector<ReqId>& queue = r.state == RequestState::Running ? running_ : waiting_;
  auto pos = std::find(queue.begin(), queue.end(), id);
  check(pos != queue.end(), [&] { return "scheduler: request " + std::to_string(id) + " missing from its queue"; });
  queue.erase(pos);
  requests_.erase(id);
}

void Scheduler::commit(const StepResult& result) {
  check(in_flight_, "Scheduler::commit without a step in flight");
  std::unordered_map<ReqId, const SampledToken*> sampled;
  for (const SampledToken& s : result.sampled)
    check(sampled.emplace(s.id, &s).second, [&] { return "Scheduler::commit: two tokens for request " + std::to_string(s.id); });
  for (const ScheduledSeq& item : in_flight_seqs_) {
    auto it = sampled.find(item.id);
    const SampledToken* token = it == sampled.end() ? nullptr : it->second;
    if (token) sampled.erase(it);
    commit_chunk(item, token);
  }
  check(sampled.empty(), "Scheduler::commit: token for a request without logits in this step");
  in_flight_seqs_.clear();
  in_flight_ = false;
}

void Scheduler::commit_chunk(const ScheduledSeq& item, const SampledToken* token) {
  Request& r = get(item.id);
  r.in_flight = false;
  if (item.restore_state != kv::kNoPage) kv_->unpin(item.restore_state);  // copied before the forward
  if (r.cancel_requested) {
    if (item.snapshot_state != kv::kNoPage) kv_->unpin(item.snapshot_state);
    end_request(r.id, FinishReason::Cancelled);
    return;
  }
  check(r.n_computed == item.start, [&] { return "Scheduler::commit: chunk does not continue request " + std::to_string(r.id); });
  r.n_computed = item.end;
  if (kv_->prefix_cache_enabled()) {
    // The boundaries the chunk passed become cache entries: state-less links inside it, the one it ends on with
    // the snapshot the engine took (a link too when no slot was free).
    const int64_t p = kv_->layout().page_tokens();
    for (int64_t b = (item.start / p + 1) * p; b <= item.end; b += p)
      kv_->add_prefix(r.id, std::span<const int32_t>(r.tokens.data(), static_cast<size_t>(b)),
                      b == item.end ? item.snapshot_state : kv::kNoPage);
  }
  kv_->trim_window(r.id);
  if (!item.needs_logits) {
    check(token == nullptr, [&] { return "Scheduler::commit: token for a chunk without logits, request " + std::to_string(r.id); });
    return;
  }
  check(token != nullptr, [&] { return "Scheduler::commit: missing token for request " + std::to_string(r.id); });
  r.tokens.push_back(token->token);
  if (token->stop)
    end_request(r.id, FinishReason::Stop);
  else if (r.n_generated() >= r.max_new_tokens)
    end_request(r.id, FinishReason::Length);
}

}  // namespace dsv4::scheduler
