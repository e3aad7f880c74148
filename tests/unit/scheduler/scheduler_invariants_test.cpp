// Randomized scheduler + KV simulations (seeded, thousands of steps): random arrivals with short and long
// prompts, random cancels (also while a step is in flight), random stops, small KV pools. After every
// step and commit: check_integrity(), the token budget, and a mirror of each request's progress (every
// chunk continues where the last one ended, recomputes start at 0 after a preemption, rows hold the known
// tokens, logits exactly at the end of the known tokens). Progress: no step is idle while requests are
// live, and once arrivals stop every request ends, each exactly once, with the reason it was due, and every
// page is free. With prefix caching (prompts share prefixes, some diverge at a random point): an admitted
// request may start at a cached page boundary with a snapshot to restore, a chunk that reaches a page boundary
// ends at its last one, snapshots are taken only at boundaries, and the cache is hit (also with chunks of more
// than a page, whose inner boundaries become state-less link entries).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>

#include "scheduler/scheduler.h"
#include "scheduler_harness.h"

namespace dsv4::scheduler {
namespace {

struct SimParams {
  uint64_t seed = 1;
  SchedulerConfig config;
  int64_t compressed_pages = 8;
  int64_t window_pages = 24;
  int64_t state_slots = 8;
  int arrival_steps = 2000;   // arrivals stop after this step; then the queue drains
  int max_drain_steps = 100000;
  double busy_arrival = 0.6;  // chance of each of 0..2 arrivals per busy step
  bool prefix_caching = false;
};

struct Mirror {
  int64_t computed = 0;  // KV length the scheduler should assume
  int64_t known = 0;
  int64_t max_new = 0;
  int64_t generated = 0;
  bool cancelled = false;
  bool stopped = false;
};

class Sim {
 public:
  explicit Sim(const SimParams& p)
      : p_(p),
        h_(p.config, p.compressed_pages, p.window_pages, p.state_slots),
        rng_(p.seed) {
    const Status s = h_.kv.enable_prefix_cache(p.prefix_caching);
    EXPECT_TRUE(s.ok()) << s.message();
  }

  void run() {
    int t = 0;
    for (; t < p_.arrival_steps + p_.max_drain_steps && (t < p_.arrival_steps || h_.sched.has_work()); ++t) {
      if (t < p_.arrival_steps) arrivals(t);
      if (chance(0.03)) cancel_random();
      one_step();
      if (::testing::Test::HasFatalFailure()) return;
    }
    ASSERT_FALSE(h_.sched.has_work()) << "requests still live after " << t << " steps";
    std::printf("[ sim      ] seed %llu: %d steps, %lld requests ended, %lld preemptions, %lld tokens\n",
                static_cast<unsigned long long>(p_.seed), t, static_cast<long long>(n_ended_),
                static_cast<long long>(n_preempted_), static_cast<long long>(n_tokens_));
    for (const auto& [id, m] : live_) ADD_FAILURE() << "request " << id << " never ended";
    EXPECT_GT(n_ended_, 100);
    if (p_.prefix_caching) {
      std::printf("[ sim      ] prefix cache: %lld hits, %lld cached pages, %lld evictions\n",
                  static_cast<long long>(n_hits_), static_cast<long long>(h_.kv.prefix_stats().entries),
                  static_cast<long long>(h_.kv.prefix_stats().evictions));
      EXPECT_GT(n_hits_, 0) << "the prefix cache was never hit";
      h_.kv.clear_prefix_cache();
      EXPECT_EQ(h_.kv.prefix_stats().entries, 0);
    }
    for (kv::PoolKind k : {kv::PoolKind::Window, kv::PoolKind::Compressed, kv::PoolKind::State})
      EXPECT_EQ(h_.kv.pool(k).n_free(), h_.kv.pool(k).n_pages()) << to_string(k) << " pages still held";
    const Status s = h_.kv.check_integrity(true);
    EXPECT_TRUE(s.ok()) << s.message();
  }

  int64_t n_preempted() const { return n_preempted_; }
  int64_t n_hits() const { return n_hits_; }

 private:
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int64_t uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }

  // Bursts: 200 busy steps (more work than the token budget) alternate with 200 quiet ones.
  void arrivals(int t) {
    const double p = (t / 200) % 2 ? p_.busy_arrival : 0.1;
    for (int64_t k = uniform(0, 2); k > 0; --k) {
      if (!chance(p)) continue;
      const int64_t prompt = chance(0.15) ? uniform(200, 1700) : uniform(1, 64);
      const int64_t max_new = uniform(1, 40);
      const ReqId id = next_id_++;
      std::vector<int32_t> tokens = test::prompt_of(prompt);
      if (chance(0.5)) {  // a variant: diverges from the common chain at a random position
        const int64_t split = uniform(0, prompt);
        const auto variant = static_cast<int32_t>(100000 * uniform(1, 3));
        for (int64_t i = split; i < prompt; ++i) tokens[static_cast<size_t>(i)] += variant;
      }
      const Status s = h_.sched.add_request(RequestSpec{.id = id, .prompt = std::move(tokens), .max_new_tokens = max_new});
      if (!s.ok()) {
        ASSERT_FALSE(h_.kv.fits_alone(prompt + max_new - 1, p_.config.max_prefill_chunk)) << s.message();
        continue;
      }
      live_[id] = Mirror{.known = prompt, .max_new = max_new};
    }
  }

  void cancel_random() {
    if (live_.empty()) return;
    auto it = live_.begin();
    std::advance(it, uniform(0, static_cast<int64_t>(live_.size()) - 1));
    // A request that ended at the last commit stays in live_ until the next plan reports it.
    const bool cancellable = h_.sched.find(it->first) != nullptr && !it->second.cancelled;
    ASSERT_EQ(h_.sched.cancel(it->first), cancellable) << "request " << it->first;
    if (cancellable) it->second.cancelled = true;
  }

  void check_plan(const StepPlan& plan) {
    EXPECT_LE(plan.n_tokens(), p_.config.max_tokens_per_step);
    n_tokens_ += plan.n_tokens();
    std::set<ReqId> ids;
    for (ReqId id : plan.preempted) {
      ASSERT_TRUE(live_.count(id));
      live_[id].computed = 0;
      ++n_preempted_;
    }
    for (const ScheduledSeq& s : plan.seqs) {
      ASSERT_TRUE(ids.insert(s.id).second) << "two chunks for request " << s.id;
      ASSERT_TRUE(live_.count(s.id)) << "request " << s.id << " scheduled after it ended";
      const Mirror& m = live_[s.id];
      ASSERT_FALSE(m.cancelled) << "cancelled request " << s.id << " scheduled";
      const int64_t page = h_.kv.layout().page_tokens();
      if (p_.prefix_caching && m.computed == 0 && s.start > 0) {  // attached to a cached prefix
        ASSERT_EQ(s.start % page, 0) << "request " << s.id;
        ASSERT_NE(s.restore_state, kv::kNoPage) << "request " << s.id;
        ++n_hits_;
      } else {
        ASSERT_EQ(s.start, m.computed) << "request " << s.id;
        ASSERT_EQ(s.restore_state, kv::kNoPage) << "request " << s.id;
      }
      if (p_.prefix_caching) {
        if ((s.end - 1) / page > s.start / page) {
          ASSERT_EQ(s.end % page, 0) << "a chunk passes its last boundary";
        }
      } else {
        ASSERT_EQ(s.snapshot_state, kv::kNoPage);
      }
      if (s.snapshot_state != kv::kNoPage) {
        ASSERT_EQ(s.end % page, 0) << "snapshot off a page boundary";
      }
      ASSERT_GT(s.end, s.start);
      ASSERT_LE(s.end, m.known);
      ASSERT_EQ(s.needs_logits, s.end == m.known);
    }
    for (ReqId id : plan.preempted) ASSERT_FALSE(ids.count(id)) << "preempted request " << id << " scheduled";
  }

  void record_finished(const StepPlan& plan) {
    for (const Finished& f : plan.finished) {
      auto it = live_.find(f.id);
      ASSERT_NE(it, live_.end()) << "request " << f.id << " ended twice";
      const Mirror& m = it->second;
      EXPECT_EQ(f.n_generated, m.generated);
      switch (f.reason) {
        case FinishReason::Cancelled: EXPECT_TRUE(m.cancelled); break;
        case FinishReason::Stop: EXPECT_TRUE(m.stopped); break;
        case FinishReason::Length: EXPECT_EQ(m.generated, m.max_new); break;
      }
      live_.erase(it);
      ++n_ended_;
    }
  }

  void one_step() {
    const bool work = h_.sched.n_running() + h_.sched.n_waiting() > 0;
    StepPlan plan = h_.sched.step();
    h_.expect_integrity();
    record_finished(plan);
    check_plan(plan);
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_TRUE(!work || !plan.empty()) << "idle step " << plan.step << " with live requests";
    if (chance(0.02)) cancel_random();  // while the step is in flight
    h_.expect_integrity();
    std::set<ReqId> stop;
    for (const ScheduledSeq& s : plan.seqs)
      if (s.needs_logits && chance(0.02)) stop.insert(s.id);
    h_.sched.commit(test::Harness::sample(plan, stop));
    h_.expect_integrity();
    for (const ScheduledSeq& s : plan.seqs) {
      Mirror& m = live_[s.id];
      m.computed = s.end;
      if (s.needs_logits && !m.cancelled) {
        ++m.known;
        ++m.generated;
        m.stopped = stop.count(s.id) > 0;
      }
    }
  }

  SimParams p_;
  test::Harness h_;
  std::mt19937_64 rng_;
  std::map<ReqId, Mirror> live_;
  ReqId next_id_ = 0;
  int64_t n_ended_ = 0;
  int64_t n_preempted_ = 0;
  int64_t n_tokens_ = 0;
  int64_t n_hits_ = 0;
};

SchedulerConfig sim_config(AdmissionPolicy policy, int64_t max_running = 6) {
  return SchedulerConfig{.max_tokens_per_step = 256, .max_running = max_running, .max_prefill_chunk = 128,
                         .admission = policy};
}

TEST(SchedulerInvariants, WaitCapSmallMemory) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Sim sim(SimParams{.seed = seed,
                      .config = sim_config(FcfsWaitCap{.long_prompt_tokens = 300, .max_long_prefills = 1,
                                                       .wait_cap_steps = 20})});
    sim.run();
    if (HasFatalFailure()) return;
    EXPECT_GT(sim.n_preempted(), 0) << "memory was not tight enough to exercise preemption";
  }
}

TEST(SchedulerInvariants, StrictFcfsSmallMemory) {
  for (uint64_t seed = 11; seed <= 12; ++seed) {
    Sim sim(SimParams{.seed = seed, .config = sim_config(StrictFcfs{})});
    sim.run();
    if (HasFatalFailure()) return;
    EXPECT_GT(sim.n_preempted(), 0);
  }
}

TEST(SchedulerInvariants, FewStateSlotsAndWindowPages) {
  // Fewer state slots than max_running and a window pool below the sizing formula: other pools run out.
  Sim sim(SimParams{.seed = 21, .config = sim_config(FcfsWaitCap{.wait_cap_steps = 0}, 8), .compressed_pages = 10,
                    .window_pages = 6, .state_slots = 3});
  sim.run();
}

TEST(SchedulerInvariants, PrefixCachingSmallMemory) {
  // Cached pages compete with running requests for every pool: eviction, preemption and re-admission through
  // the cache all happen.
  for (uint64_t seed = 41; seed <= 43; ++seed) {
    Sim sim(SimParams{.seed = seed,
                      .config = sim_config(FcfsWaitCap{.long_prompt_tokens = 300, .max_long_prefills = 1,
                                                       .wait_cap_steps = 20}),
                      .compressed_pages = 12, .window_pages = 30, .state_slots = 12, .prefix_caching = true});
    sim.run();
    if (HasFatalFailure()) return;
  }
}

TEST(SchedulerInvariants, PrefixCachingLongChunks) {
  Sim sim(SimParams{.seed = 61,
                    .config = SchedulerConfig{.max_tokens_per_step = 900, .max_running = 6, .max_prefill_chunk = 700,
                                              .admission = FcfsWaitCap{}},
                    .compressed_pages = 16, .window_pages = 40, .state_slots = 12, .prefix_caching = true});
  sim.run();
}

TEST(SchedulerInvariants, PrefixCachingAmpleMemory) {
  Sim sim(SimParams{.seed = 51, .config = sim_config(StrictFcfs{}, 16), .compressed_pages = 200, .window_pages = 160,
                    .state_slots = 64, .arrival_steps = 3000, .prefix_caching = true});
  sim.run();
}

TEST(SchedulerInvariants, AmpleMemoryManyRunning) {
  Sim sim(SimParams{.seed = 31, .config = sim_config(FcfsWaitCap{}, 32), .compressed_pages = 200,
                    .window_pages = 128, .state_slots = 32, .arrival_steps = 3000});
  sim.run();
}

}  // namespace
}  // namespace dsv4::scheduler
