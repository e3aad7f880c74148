// Admission order: StrictFcfs never lets a younger request overtake; FcfsWaitCap lets short requests pass a
// waiting one (pages or the long-prefill limit) until that one is overdue, after which nobody younger is
// admitted before it and the long-prefill limit no longer holds it back.
#include <gtest/gtest.h>

#include <map>

#include "scheduler/scheduler.h"
#include "scheduler_harness.h"

namespace dsv4::scheduler {
namespace {

using test::find_seq;
using test::Harness;

SchedulerConfig with_policy(AdmissionPolicy policy, int64_t budget, int64_t chunk) {
  return SchedulerConfig{.max_tokens_per_step = budget, .max_running = 16, .max_prefill_chunk = chunk,
                         .admission = policy};
}

// Request 1 holds 2 of 3 compressed pages while it decodes; request 2 (prompt 600) needs 2 pages for its
// first 511-token chunk; short requests (prompt 3) need no compressed page.
struct PageBlockedSetup {
  Harness h;
  explicit PageBlockedSetup(AdmissionPolicy policy) : h(with_policy(policy, 512, 512), 3) {
    h.add(1, 300, 50);
    h.run_step();
    h.add(2, 600, 1);
  }
};

// First step at which each request ran, until every request ended.
std::map<ReqId, int64_t> first_steps(Harness& h, ReqId next_short, int64_t short_until_step) {
  std::map<ReqId, int64_t> first;
  while (h.sched.has_work()) {
    if (h.sched.step_index() + 1 <= short_until_step) h.add(next_short++, 3, 1);
    const StepPlan p = h.run_step();
    for (const ScheduledSeq& s : p.seqs) first.emplace(s.id, p.step);
    if (p.step > 500) break;
  }
  return first;
}

TEST(AdmissionPolicy, StrictFcfsBlocksBehindTheHead) {
  PageBlockedSetup s(StrictFcfs{});
  s.h.add(3, 3, 1);
  auto first = first_steps(s.h, 100, 0);
  ASSERT_TRUE(first.count(2) && first.count(3));
  EXPECT_GT(first[2], 40);  // after request 1 ended
  EXPECT_GE(first[3], first[2]);
}

TEST(AdmissionPolicy, WaitCapLetsShortRequestsPass) {
  PageBlockedSetup s(FcfsWaitCap{.wait_cap_steps = 1000});
  s.h.add(3, 3, 1);
  auto first = first_steps(s.h, 100, 0);
  EXPECT_EQ(first[3], 2);  // admitted at once, ahead of request 2
  EXPECT_GT(first[2], 40);
}

TEST(AdmissionPolicy, OverdueRequestBlocksYoungerOnes) {
  PageBlockedSetup s(FcfsWaitCap{.wait_cap_steps = 3});
  // Request 2 entered the queue after step 1; it is overdue from step 5 on (5 - 1 > 3). A short request
  // arrives before each of the steps 2..8.
  auto first = first_steps(s.h, 100, 8);
  for (ReqId id = 100; id <= 102; ++id) EXPECT_EQ(first[id], id - 98) << "request " << id;  // steps 2, 3, 4
  ASSERT_TRUE(first.count(2));
  for (ReqId id = 103; id <= 106; ++id) {
    ASSERT_TRUE(first.count(id));
    EXPECT_GE(first[id], first[2]) << "request " << id << " overtook the overdue request";
  }
}

TEST(AdmissionPolicy, LongPrefillLimitUntilOverdue) {
  Harness h(with_policy(FcfsWaitCap{.long_prompt_tokens = 100, .max_long_prefills = 1, .wait_cap_steps = 5}, 64, 32),
            16);
  h.add(1, 1000, 2);
  h.add(2, 1000, 2);
  h.add(3, 10, 2);
  std::map<ReqId, int64_t> first;
  for (int i = 0; i < 6; ++i) {
    const StepPlan p = h.run_step();
    for (const ScheduledSeq& s : p.seqs) first.emplace(s.id, p.step);
  }
  EXPECT_EQ(first[1], 1);
  EXPECT_EQ(first[3], 1);   // the short request passes the long one
  EXPECT_EQ(first[2], 6);   // overdue at step 6 (6 - 0 > 5) although request 1 is still prefilling
  EXPECT_EQ(h.sched.find(1)->phase(), Phase::Prefill);
}

TEST(AdmissionPolicy, StrictFcfsHasNoLongPrefillLimit) {
  Harness h(with_policy(StrictFcfs{}, 64, 32), 16);
  h.add(1, 1000, 2);
  h.add(2, 1000, 2);
  h.add(3, 10, 2);
  const StepPlan p = h.run_step();
  ASSERT_EQ(p.seqs.size(), 2u);
  EXPECT_EQ(p.seqs[1].id, 2);
  EXPECT_EQ(find_seq(p, 3), nullptr);
}

}  // namespace
}  // namespace dsv4::scheduler
