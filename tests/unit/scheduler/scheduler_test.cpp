// Scheduler behaviours one by one: request validation, prefill then decode, chunked prefill mixed with
// decodes under the token budget, max_running, admission only when pages are available, preemption of the
// newest request (and recompute with the generated tokens), cancellation in every state, stop, misuse.
// The harness (scheduler_harness.h) checks every plan's rows and the integrity after every step/commit.
#include <gtest/gtest.h>

#include "core/check.h"
#include "scheduler/scheduler.h"
#include "scheduler_harness.h"

namespace dsv4::scheduler {
namespace {

using test::find_seq;
using test::Harness;
using test::has_finished;

SchedulerConfig config(int64_t budget, int64_t chunk, int64_t max_running = 8) {
  return SchedulerConfig{.max_tokens_per_step = budget, .max_running = max_running, .max_prefill_chunk = chunk};
}

TEST(Scheduler, RejectsInvalidRequests) {
  Harness h(config(64, 64), 2);
  EXPECT_FALSE(h.sched.add_request(RequestSpec{.id = 1, .prompt = {}, .max_new_tokens = 1}).ok());
  EXPECT_FALSE(h.sched.add_request(RequestSpec{.id = 1, .prompt = {5}, .max_new_tokens = 0}).ok());
  // 2 compressed pages hold 515 tokens of KV: prompt 500 + 16 new needs 515.
  EXPECT_TRUE(h.sched.add_request(RequestSpec{.id = 1, .prompt = test::prompt_of(500), .max_new_tokens = 16}).ok());
  const Status too_big =
      h.sched.add_request(RequestSpec{.id = 2, .prompt = test::prompt_of(500), .max_new_tokens = 17});
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.message().find("516 tokens"), std::string::npos) << too_big.message();
  const Status dup = h.sched.add_request(RequestSpec{.id = 1, .prompt = {5}, .max_new_tokens = 1});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("already live"), std::string::npos);
}

TEST(Scheduler, PrefillThenDecodeThenLength) {
  Harness h(config(64, 64), 8);
  h.add(1, 10, 3);
  StepPlan p = h.run_step();
  ASSERT_EQ(p.seqs.size(), 1u);
  EXPECT_EQ(p.seqs[0].start, 0);
  EXPECT_EQ(p.seqs[0].end, 10);
  EXPECT_TRUE(p.seqs[0].needs_logits);
  EXPECT_TRUE(p.seqs[0].fresh);
  for (int i = 0; i < 2; ++i) {
    p = h.run_step();
    ASSERT_EQ(p.seqs.size(), 1u);
    EXPECT_EQ(p.seqs[0].start, 10 + i);
    EXPECT_EQ(p.seqs[0].n(), 1);
    EXPECT_FALSE(p.seqs[0].fresh);
  }
  EXPECT_EQ(h.sched.find(1), nullptr);  // ended at the last commit
  EXPECT_EQ(h.kv.n_seqs(), 0);
  EXPECT_TRUE(h.sched.has_work());  // the end is still to be reported
  p = h.run_step();
  EXPECT_TRUE(p.empty());
  ASSERT_EQ(p.finished.size(), 1u);
  EXPECT_EQ(p.finished[0].reason, FinishReason::Length);
  EXPECT_EQ(p.finished[0].n_generated, 3);
  EXPECT_FALSE(h.sched.has_work());
}

TEST(Scheduler, ChunkedPrefillMixedWithDecodes) {
  Harness h(config(64, 48), 8);
  h.add(1, 5, 20);
  h.run_step();  // request 1 prefilled, now decoding
  h.add(2, 200, 2);
  int64_t next = 0;
  for (int step = 0; next < 200; ++step) {
    StepPlan p = h.run_step();
    const ScheduledSeq* d = find_seq(p, 1);
    const ScheduledSeq* c = find_seq(p, 2);
    ASSERT_NE(d, nullptr);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(d->n(), 1);  // the decode runs in the same step as the chunk
    EXPECT_TRUE(d->needs_logits);
    EXPECT_EQ(p.seqs[0].id, 1);  // older request first
    EXPECT_EQ(c->start, next);
    EXPECT_EQ(c->n(), std::min<int64_t>(48, 200 - next));
    EXPECT_EQ(c->needs_logits, c->end == 200);
    next = c->end;
  }
  EXPECT_EQ(h.sched.find(2)->n_generated(), 1);
  EXPECT_EQ(h.sched.find(2)->phase(), Phase::Decode);
}

TEST(Scheduler, TokenBudgetIsSharedInArrivalOrder) {
  Harness h(config(16, 16), 8);
  h.add(1, 10, 5);
  h.add(2, 10, 5);
  StepPlan p = h.run_step();
  ASSERT_EQ(p.seqs.size(), 2u);
  EXPECT_EQ(p.seqs[0].n(), 10);
  EXPECT_EQ(p.seqs[1].n(), 6);  // the budget left
  EXPECT_FALSE(p.seqs[1].needs_logits);
  EXPECT_EQ(p.n_tokens(), 16);
  EXPECT_EQ(p.seqs[1].row_begin, 10);
}

TEST(Scheduler, MaxRunningLimitsAdmission) {
  Harness h(config(64, 64, /*max_running=*/2), 8);
  h.add(1, 4, 2);
  h.add(2, 4, 5);
  h.add(3, 4, 5);
  StepPlan p = h.run_step();
  EXPECT_EQ(p.seqs.size(), 2u);
  EXPECT_EQ(h.sched.find(3)->state, RequestState::Waiting);
  h.run_step();  // request 1 ends (2 tokens)
  p = h.run_step();
  const ScheduledSeq* s3 = find_seq(p, 3);
  ASSERT_NE(s3, nullptr);
  EXPECT_TRUE(s3->fresh);
}

TEST(Scheduler, AdmissionWaitsForPages) {
  Harness h(config(512, 512), 2);
  h.add(1, 300, 5);  // 2 compressed pages: the whole pool
  h.add(2, 10, 2);   // needs 1
  for (int i = 0; i < 4; ++i) {
    StepPlan p = h.run_step();
    EXPECT_EQ(find_seq(p, 2), nullptr) << "step " << p.step;
    EXPECT_EQ(h.sched.find(2)->state, RequestState::Waiting);
  }
  StepPlan p = h.run_step();  // request 1 generates its 5th token and ends
  EXPECT_EQ(find_seq(p, 2), nullptr);
  p = h.run_step();
  EXPECT_TRUE(has_finished(p, 1, FinishReason::Length));
  ASSERT_NE(find_seq(p, 2), nullptr);
}

TEST(Scheduler, PreemptsNewestAndRecomputesWithGeneratedTokens) {
  Harness h(config(512, 512), 2);
  h.add(1, 250, 20);  // 1 page now, a 2nd one at 260 tokens
  h.add(2, 10, 20);   // 1 page
  h.run_step();
  int64_t preempted_at = 0;
  for (int i = 0; i < 12 && preempted_at == 0; ++i) {
    StepPlan p = h.run_step();
    if (!p.preempted.empty()) {
      EXPECT_EQ(p.preempted, std::vector<ReqId>{2});
      ASSERT_NE(find_seq(p, 1), nullptr);
      EXPECT_EQ(find_seq(p, 1)->end, 260);
      EXPECT_EQ(find_seq(p, 2), nullptr);
      preempted_at = p.step;
    }
  }
  ASSERT_NE(preempted_at, 0);
  const Request* r2 = h.sched.find(2);
  EXPECT_EQ(r2->state, RequestState::Preempted);
  EXPECT_EQ(r2->n_computed, 0);
  EXPECT_EQ(r2->n_preemptions, 1);
  const int64_t known = r2->n_known();
  EXPECT_GT(known, 10);  // prompt + generated tokens are kept
  h.add(3, 10, 2);       // younger than 2: must not overtake it
  StepPlan p;
  do p = h.run_step();
  while (find_seq(p, 2) == nullptr && p.step < 100);
  const ScheduledSeq* s2 = find_seq(p, 2);
  ASSERT_NE(s2, nullptr);
  EXPECT_TRUE(s2->fresh);
  EXPECT_EQ(s2->end, known);  // the whole recompute in one chunk (harness checked the token ids)
  EXPECT_TRUE(s2->needs_logits);
  EXPECT_EQ(p.seqs[0].id, 2);
  while (h.sched.has_work()) h.run_step();
}

TEST(Scheduler, NewestRequestPreemptsItself) {
  Harness h(config(512, 512), 2);
  h.add(1, 10, 30);   // older, 1 page
  h.add(2, 250, 30);  // newer, needs a 2nd page at 260 tokens
  h.run_step();
  bool seen = false;
  for (int i = 0; i < 12; ++i) {
    StepPlan p = h.run_step();
    ASSERT_NE(find_seq(p, 1), nullptr) << "the older request must keep running";
    if (!p.preempted.empty()) {
      EXPECT_EQ(p.preempted, std::vector<ReqId>{2});
      EXPECT_EQ(find_seq(p, 2), nullptr);
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
}

TEST(Scheduler, CancelWaitingRunningAndInFlight) {
  Harness h(config(64, 64, /*max_running=*/2), 8);
  h.add(1, 10, 50);
  h.add(2, 10, 50);
  h.add(3, 10, 50);
  h.run_step();  // 1 and 2 running, 3 waiting
  EXPECT_TRUE(h.sched.cancel(3));
  EXPECT_FALSE(h.sched.cancel(3));
  EXPECT_FALSE(h.sched.cancel(99));
  EXPECT_TRUE(h.sched.cancel(1));  // between steps: KV freed at once
  EXPECT_FALSE(h.kv.contains(1));
  h.expect_integrity();
  StepPlan p = h.sched.step();
  EXPECT_TRUE(has_finished(p, 3, FinishReason::Cancelled));
  EXPECT_TRUE(has_finished(p, 1, FinishReason::Cancelled));
  ASSERT_NE(find_seq(p, 2), nullptr);
  EXPECT_TRUE(h.sched.cancel(2));  // in flight: the engine still uses its pages
  EXPECT_TRUE(h.kv.contains(2));
  EXPECT_FALSE(h.sched.cancel(2));
  h.expect_integrity();
  h.sched.commit(Harness::sample(p));  // its token is discarded
  EXPECT_FALSE(h.kv.contains(2));
  EXPECT_EQ(h.sched.find(2), nullptr);
  h.expect_integrity();
  p = h.run_step();
  EXPECT_TRUE(has_finished(p, 2, FinishReason::Cancelled));
  EXPECT_FALSE(h.sched.has_work());
}

TEST(Scheduler, CancelInFlightWithoutToken) {
  Harness h(config(64, 64), 8);
  h.add(1, 10, 5);
  StepPlan p = h.sched.step();
  EXPECT_TRUE(h.sched.cancel(1));
  h.sched.commit(StepResult{});
  h.expect_integrity();
  EXPECT_EQ(h.kv.n_seqs(), 0);
}

TEST(Scheduler, StopFlagEndsRequest) {
  Harness h(config(64, 64), 8);
  h.add(1, 10, 100);
  h.run_step();
  h.run_step({1});
  EXPECT_EQ(h.sched.find(1), nullptr);
  StepPlan p = h.run_step();
  ASSERT_EQ(p.finished.size(), 1u);
  EXPECT_EQ(p.finished[0].reason, FinishReason::Stop);
  EXPECT_EQ(p.finished[0].n_generated, 2);
}

TEST(Scheduler, MisuseIsAnInvariantError) {
  Harness h(config(64, 64), 8);
  h.add(1, 10, 5);
  h.add(2, 10, 5);
  EXPECT_THROW(h.sched.commit(StepResult{}), InvariantError);  // nothing in flight
  StepPlan p = h.sched.step();
  EXPECT_THROW((void)h.sched.step(), InvariantError);  // previous step not committed
  StepResult missing = Harness::sample(p);
  missing.sampled.pop_back();
  EXPECT_THROW(h.sched.commit(missing), InvariantError);
  EXPECT_THROW(Scheduler(SchedulerConfig{.max_tokens_per_step = 0}, h.kv), InvariantError);
}

TEST(Scheduler, IntegrityCatchesKvFreedBehindItsBack) {
  Harness h(config(64, 64), 8);
  h.add(1, 10, 5);
  h.run_step();
  h.kv.free(1);
  const Status s = h.sched.check_integrity();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("holds 0 sequences for 1 running"), std::string::npos) << s.message();
}

TEST(SchedulerConfig, Validation) {
  EXPECT_TRUE(validate(SchedulerConfig{}).ok());
  Status s = validate(SchedulerConfig{.max_running = 0});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("max_running = 0"), std::string::npos);
  EXPECT_FALSE(validate(SchedulerConfig{.max_prefill_chunk = 0}).ok());
  EXPECT_FALSE(validate(SchedulerConfig{.admission = FcfsWaitCap{.max_long_prefills = 0}}).ok());
  EXPECT_FALSE(validate(SchedulerConfig{.admission = FcfsWaitCap{.wait_cap_steps = -1}}).ok());
  EXPECT_TRUE(validate(SchedulerConfig{.admission = StrictFcfs{}}).ok());
}

}  // namespace
}  // namespace dsv4::scheduler
