// Test harness for the scheduler: a small KV manager (pages of 256 tokens, window 128, one CSA layer so a
// compressed page is needed from token 4 on and then every 256 tokens) and a fake engine that checks each
// plan against the scheduler's view and "samples" token 1000 + position.
#pragma once
#include <gtest/gtest.h>

#include <set>

#include "kv/hybrid_kv_manager.h"
#include "scheduler/scheduler.h"

namespace dsv4::scheduler::test {

inline kv::CacheLayout small_layout() {
  auto r = kv::make_layout(kv::CacheShape{.n_window_layers = 2, .n_csa_layers = 1, .n_hca_layers = 1,
                                          .window = 128, .kv_row_bytes = 16, .indexer_row_bytes = 8,
                                          .state_bytes = 64});
  EXPECT_TRUE(r.ok());
  return r.value();
}

inline int32_t token_at(int64_t pos) { return static_cast<int32_t>(1000 + pos); }

inline std::vector<int32_t> prompt_of(int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = token_at(i);
  return p;
}

struct Harness {
  kv::HybridKvManager kv;
  Scheduler sched;

  Harness(const SchedulerConfig& c, int64_t compressed_pages, int64_t window_pages = 64, int64_t slots = 16)
      : kv(small_layout(), kv::PoolSizes{.n_window_pages = window_pages, .n_compressed_pages = compressed_pages,
                                         .n_state_slots = slots}),
        sched(c, kv) {}

  void add(ReqId id, int64_t prompt_len, int64_t max_new) {
    const Status s =
        sched.add_request(RequestSpec{.id = id, .prompt = prompt_of(prompt_len), .max_new_tokens = max_new});
    ASSERT_TRUE(s.ok()) << s.message();
  }

  void expect_integrity() {
    const Status s = sched.check_integrity();
    ASSERT_TRUE(s.ok()) << s.message();
  }

  // Tokens for every chunk with logits; `stop` ids report a stop.
  static StepResult sample(const StepPlan& plan, const std::set<ReqId>& stop = {}) {
    StepResult r;
    for (const ScheduledSeq& s : plan.seqs)
      if (s.needs_logits)
        r.sampled.push_back(SampledToken{.id = s.id, .token = token_at(s.end), .stop = stop.count(s.id) > 0});
    return r;
  }

  // One step through the fake engine; checks the plan's rows against the known tokens.
  StepPlan run_step(const std::set<ReqId>& stop = {}) {
    StepPlan plan = sched.step();
    expect_integrity();
    EXPECT_LE(plan.n_tokens(), sched.config().max_tokens_per_step);
    for (const ScheduledSeq& s : plan.seqs) {
      const Request* r = sched.find(s.id);
      EXPECT_NE(r, nullptr);
      if (r == nullptr) continue;
      EXPECT_EQ(s.needs_logits, s.end == r->n_known());
      EXPECT_EQ(s.fresh, s.start == 0);
      for (int64_t p = s.start; p < s.end; ++p)
        EXPECT_EQ(plan.input_ids[static_cast<size_t>(s.row_begin + p - s.start)], token_at(p)) << "request " << s.id;
    }
    sched.commit(sample(plan, stop));
    expect_integrity();
    return plan;
  }
};

inline const ScheduledSeq* find_seq(const StepPlan& plan, ReqId id) {
  for (const ScheduledSeq& s : plan.seqs)
    if (s.id == id) return &s;
  return nullptr;
}

inline bool has_finished(const StepPlan& plan, ReqId id, FinishReason reason) {
  for (const Finished& f : plan.finished)
    if (f.id == id) return f.reason == reason;
  return false;
}

}  // namespace dsv4::scheduler::test
