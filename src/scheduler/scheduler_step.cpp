// Scheduler::step(): serve the running requests (with preemption when the KV pools are full), then admit
// waiting requests under the admission policy, then lay out the plan's input rows.
#include <algorithm>
#include <string>

#include "core/check.h"
#include "scheduler/scheduler.h"

namespace dsv4::scheduler {

StepPlan Scheduler::step() {
  check(!in_flight_, "Scheduler::step: the previous step was not committed");
  ++step_;
  StepPlan plan;
  plan.step = step_;
  plan.finished = std::move(ended_);
  ended_.clear();
  int64_t budget = config_.max_tokens_per_step;
  schedule_running(plan, budget);
  admit_waiting(plan, budget);
  for (ScheduledSeq& item : plan.seqs) {
    const Request& r = get(item.id);
    item.row_begin = plan.n_tokens();
    plan.input_ids.insert(plan.input_ids.end(), r.tokens.begin() + item.start, r.tokens.begin() + item.end);
  }
  check(plan.n_tokens() <= config_.max_tokens_per_step, "Scheduler::step: token budget exceeded");
  in_flight_seqs_ = plan.seqs;
  in_flight_ = true;
  return plan;
}

void Scheduler::schedule_running(StepPlan& plan, int64_t& budget) {
  // running_ is sorted by arrival and preemption takes from its back (the newest), which is never a request
  // already served in this pass.
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Request& r = get(running_[i]);
    const int64_t want = page_cap(r, std::min({r.n_remaining(), budget, config_.max_prefill_chunk}));
    int64_t n = kv_->max_allocatable(r.id, want);
    while (n == 0) {
      const ReqId victim = running_.back();
      preempt(victim, plan);
      if (victim == r.id) break;
      n = kv_->max_allocatable(r.id, want);
    }
    if (n == 0) break;  // r was the newest and preempted itself
    schedule_chunk(r, n, plan);
    budget -= n;
  }
}

bool Scheduler::is_overdue(const Request& r) const {
  const auto* p = std::get_if<FcfsWaitCap>(&config_.admission);
  return p != nullptr && step_ - r.queued_step > p->wait_cap_steps;
}

bool Scheduler::admission_allowed(const Request& r, bool overdue, int64_t n_long) const {
  if (r.preempted_step == step_) return false;  // recompute later, not in the step that preempted it
  const auto* p = std::get_if<FcfsWaitCap>(&config_.admission);
  if (p == nullptr || overdue) return true;
  return r.n_remaining() <= p->long_prompt_tokens || n_long < p->max_long_prefills;
}

void Scheduler::admit_waiting(StepPlan& plan, int64_t& budget) {
  const auto* cap = std::get_if<FcfsWaitCap>(&config_.admission);
  int64_t n_long = 0;
  for (ReqId id : running_) {
    const Request& r = get(id);
    n_long += r.long_prefill && r.phase() == Phase::Prefill;
  }
  size_t i = 0;
  while (i < waiting_.size() && budget > 0 && n_running() < config_.max_running) {
    Request& r = get(waiting_[i]);
    const bool overdue = is_overdue(r);
    bool admit = admission_allowed(r, overdue, n_long);
    kv::PageId restore = admit ? attach_cached_prefix(r) : kv::kNoPage;
    const int64_t n = page_cap(r, std::min({r.n_remaining(), budget, config_.max_prefill_chunk}));
    admit = admit && kv_->can_allocate(r.id, n);
    if (!admit && restore != kv::kNoPage) {  // the prefix is cached but the chunk after it does not fit
      kv_->free(r.id);
      kv_->unpin(restore);
      restore = kv::kNoPage;
      r.n_computed = 0;
    }
    if (admit) {
      waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
      insert_by_arrival(running_, r.id);
      r.state = RequestState::Running;
      r.long_prefill = cap != nullptr && r.n_remaining() > cap->long_prompt_tokens;
      n_long += r.long_prefill;
      if (kv_->prefix_cache_enabled()) kv_->count_prefix_query(r.n_known() - 1, r.n_computed);
      schedule_chunk(r, n, plan);
      plan.seqs.back().restore_state = restore;
      budget -= n;
      continue;
    }
    if (cap == nullptr || overdue) break;  // nobody overtakes this request
    ++i;
  }
}

void Scheduler::schedule_chunk(Request& r, int64_t n, StepPlan& plan) {
  const Status s = kv_->allocate(r.id, n);
  check(s.ok(), s.ok() ? "" : s.message());
  ScheduledSeq item;
  item.id = r.id;
  item.start = r.n_computed;
  item.end = r.n_computed + n;
  item.needs_logits = item.end == r.n_known();
  item.fresh = item.start == 0;
  const int64_t p = kv_->layout().page_tokens();
  if (kv_->prefix_cache_enabled() && item.end % p == 0 &&
      !kv_->is_cached(std::span<const int32_t>(r.tokens.data(), static_cast<size_t>(item.end))))
    item.snapshot_state = kv_->take_snapshot_slot();
  plan.seqs.push_back(item);
  r.in_flight = true;
}

int64_t Scheduler::page_cap(const Request& r, int64_t n) const {
  if (!kv_->prefix_cache_enabled()) return n;
  const int64_t p = kv_->layout().page_tokens();
  const int64_t last = (r.n_computed + n) / p * p;  // a chunk that reaches a page boundary ends at its last one
  return last > r.n_computed ? last - r.n_computed : n;
}

kv::PageId Scheduler::attach_cached_prefix(Request& r) {
  if (!kv_->prefix_cache_enabled() || r.n_computed != 0 || kv_->contains(r.id)) return kv::kNoPage;
  const int64_t hit = kv_->cached_prefix(r.tokens, r.n_known() - 1);  // one token at least is computed
  if (hit == 0) return kv::kNoPage;
  auto slot = kv_->attach_prefix(r.id, r.tokens, hit);
  if (!slot.ok()) return kv::kNoPage;
  r.n_computed = hit;
  return *slot;
}

void Scheduler::preempt(ReqId id, StepPlan& plan) {
  Request& r = get(id);
  check(r.state == RequestState::Running && !r.in_flight, "Scheduler::preempt: request not preemptible");
  kv_->free(id);
  r.state = RequestState::Preempted;
  r.n_computed = 0;
  r.long_prefill = false;
  r.queued_step = step_;
  r.preempted_step = step_;
  ++r.n_preemptions;
  running_.erase(std::find(running_.begin(), running_.end(), id));
  insert_by_arrival(waiting_, id);
  plan.preempted.push_back(id);
}

}  // namespace dsv4::scheduler
