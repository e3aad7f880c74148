// Scheduler: continuous batching under a per-step token budget, on top of a HybridKvManager that it
// borrows (the engine owns it; a unit test can build one alone). It emits plain-data StepPlans and takes
// StepResults; it never touches tensors or devices.
//
// One step (step_plan.h has the engine's side):
//   1. Running requests, oldest first: each gets min(left to compute, budget left, max_prefill_chunk) tokens,
//      shrunk to what the KV pools can hold. If not even one token fits, the newest running request is
//      preempted (KV freed, back to the queue with its prompt + generated tokens, recomputed later) until it
//      does; if the request itself is the newest, it is the one preempted. Older requests never lose their
//      KV to younger ones, so the oldest running request advances every step.
//   2. Admission (scheduler_config.h: StrictFcfs or FcfsWaitCap): a waiting request is admitted when
//      running < max_running, the budget is not spent and its first chunk fits in the KV pools. A request
//      preempted in this step is not readmitted in the same step.
//   With prefix caching on (the KV manager's switch): a request being admitted first attaches to its longest
//   cached whole-page prefix (at most n_known - 1 tokens) and starts computing after it; a chunk that reaches a
//   page boundary ends at the last one it reaches, and one ending at a boundary not cached with its state gets a
//   snapshot slot; commit() adds every boundary the chunk passed to the cache (the last with the snapshot).
//   3. commit(result): chunks become computed, windows are trimmed, sampled tokens appended; a request ends
//      with Stop (engine flag) or Length (max_new_tokens); its KV is freed at once.
// cancel(id) works at any time: the KV is freed immediately, or at commit() if the request is part of the
// step in flight (its result is then discarded). Ended requests are reported in the next plan's finished.
//
// Invariants (check_integrity): the KV manager is consistent (windows trimmed between steps); exactly the
// running requests hold KV, with n_tokens == n_computed (+ the in-flight chunk); queues are sorted by
// arrival and partition the live requests; running <= max_running.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "kv/hybrid_kv_manager.h"
#include "scheduler/request.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/step_plan.h"

namespace dsv4::scheduler {

class Scheduler {
 public:
  // The config must pass validate(); kv must outlive the scheduler and is not shared with another one.
  Scheduler(const SchedulerConfig& config, kv::HybridKvManager& kv);

  // Errors: id already live, empty prompt, max_new_tokens < 1, or a request that could not fit in the KV
  // cache even alone (prompt + max_new_tokens - 1 tokens of KV).
  Status add_request(RequestSpec spec);
  // Returns false when the id is not live.
  bool cancel(ReqId id);

  StepPlan step();                       // must be followed by commit() before the next step()
  void commit(const StepResult& result);

  const Request* find(ReqId id) const;   // live requests only
  int64_t n_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t n_running() const { return static_cast<int64_t>(running_.size()); }
  bool has_work() const { return !requests_.empty() || !ended_.empty(); }
  bool in_flight() const { return in_flight_; }
  int64_t step_index() const { return step_; }
  const SchedulerConfig& config() const { return config_; }
  const kv::HybridKvManager& kv() const { return *kv_; }

  Status check_integrity() const;

 private:
  Request& get(ReqId id);
  void schedule_running(StepPlan& plan, int64_t& budget);
  void admit_waiting(StepPlan& plan, int64_t& budget);
  bool is_overdue(const Request& r) const;
  bool admission_allowed(const Request& r, bool overdue, int64_t n_long) const;
  void schedule_chunk(Request& r, int64_t n, StepPlan& plan);
  // With prefix caching: n cut so that a chunk reaching a page boundary ends at the last one it reaches (the
  // compressor state there is seen after the step), and attaching a new request to its longest cached prefix
  // (the pinned snapshot slot to restore, or kNoPage).
  int64_t page_cap(const Request& r, int64_t n) const;
  kv::PageId attach_cached_prefix(Request& r);
  void preempt(ReqId id, StepPlan& plan);
  void commit_chunk(const ScheduledSeq& item, const SampledToken* sampled);
  void end_request(ReqId id, FinishReason reason);
  void insert_by_arrival(std::vector<ReqId>& queue, ReqId id);
  Status check_request(const Request& r, bool running) const;

  SchedulerConfig config_;
  kv::HybridKvManager* kv_;
  std::unordered_map<ReqId, Request> requests_;  // live requests
  std::vector<ReqId> running_;                   // by arrival
  std::vector<ReqId> waiting_;                   // by arrival (waiting and preempted)
  std::vector<ScheduledSeq> in_flight_seqs_;     // the chunks of the step between step() and commit()
  std::vector<Finished> ended_;                  // to report in the next plan
  int64_t step_ = 0;
  int64_t next_arrival_ = 0;
  bool in_flight_ = false;
};

}  // namespace dsv4::scheduler
