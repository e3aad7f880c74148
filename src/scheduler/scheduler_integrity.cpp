// Scheduler::check_integrity: the invariants listed in scheduler.h, checked from scratch (tests and the
// randomized simulations call it after every step and commit).
#include <algorithm>
#include <string>
#include <unordered_set>

#include "scheduler/scheduler.h"

namespace dsv4::scheduler {
namespace {

std::string req_name(const Request& r) { return "request " + std::to_string(r.id); }

}  // namespace

Status Scheduler::check_request(const Request& r, bool running) const {
  const bool holds_kv = kv_->contains(r.id);
  // A live request has generated fewer than max_new_tokens (it ends at commit when it reaches it).
  if (r.n_prompt < 1 || r.n_generated() < 0 || r.n_generated() >= r.max_new_tokens)
    return make_error(req_name(r) + " has " + std::to_string(r.n_generated()) + " generated tokens, max_new_tokens " +
                      std::to_string(r.max_new_tokens));
  if (!running) {
    if (r.state == RequestState::Running) return make_error(req_name(r) + " is running but in the waiting queue");
    if (holds_kv || r.n_computed != 0) return make_error(req_name(r) + " is waiting but holds KV");
    if (r.in_flight) return make_error(req_name(r) + " is waiting but in flight");
    return Ok{};
  }
  if (r.state != RequestState::Running) return make_error(req_name(r) + " is in the running queue but " +
                                                          to_string(r.state));
  int64_t expected = r.n_computed;
  if (r.in_flight) {
    auto it = std::find_if(in_flight_seqs_.begin(), in_flight_seqs_.end(),
                           [&](const ScheduledSeq& s) { return s.id == r.id; });
    if (it == in_flight_seqs_.end()) return make_error(req_name(r) + " is marked in flight but not in the step");
    expected = it->end;
  }
  if (kv_->n_tokens(r.id) != expected)
    return make_error(req_name(r) + " holds KV for " + std::to_string(kv_->n_tokens(r.id)) + " tokens, expected " +
                      std::to_string(expected));
  if (!r.in_flight && r.n_remaining() < 1)
    return make_error(req_name(r) + " is running with no token left to compute");
  return Ok{};
}

Status Scheduler::check_integrity() const {
  DSV4_TRY_STATUS(kv_->check_integrity(/*require_trimmed=*/!in_flight_));
  if (n_running() > config_.max_running)
    return make_error(std::to_string(n_running()) + " running requests, max_running " +
                      std::to_string(config_.max_running));
  if (kv_->n_seqs() != n_running())
    return make_error("the KV manager holds " + std::to_string(kv_->n_seqs()) + " sequences for " +
                      std::to_string(n_running()) + " running requests");
  std::unordered_set<ReqId> seen;
  for (const std::vector<ReqId>* queue : {&running_, &waiting_}) {
    int64_t last_arrival = -1;
    for (ReqId id : *queue) {
      const Request* r = find(id);
      if (r == nullptr) return make_error("queued request " + std::to_string(id) + " is not live");
      if (!seen.insert(id).second) return make_error(req_name(*r) + " is queued twice");
      if (r->arrival <= last_arrival) return make_error("queue not in arrival order at " + req_name(*r));
      last_arrival = r->arrival;
      DSV4_TRY_STATUS(check_request(*r, queue == &running_));
    }
  }
  if (seen.size() != requests_.size()) return make_error("a live request is in no queue");
  if (!in_flight_ && !in_flight_seqs_.empty()) return make_error("chunks in flight without a step in flight");
  if (!in_flight_ && kv_->n_pins() != 0)
    return make_error(std::to_string(kv_->n_pins()) + " prefix-cache state slots still pinned between steps");
  return Ok{};
}

}  // namespace dsv4::scheduler
