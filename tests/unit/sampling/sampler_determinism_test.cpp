// Per-request determinism: a seeded request draws the same tokens (and logprobs) alone, at any row of any
// batch, next to greedy, unseeded and differently-configured requests, and next to its own twin; different
// seeds give different tokens; unseeded requests get distinct random seeds.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "sampling/sampler.h"
#include "unit/sampling/sampler_test_util.h"

namespace dsv4::sampling {
namespace {

using sampling_test::Req;
using sampling_test::run;

constexpr int64_t kVocab = 64;
constexpr int kSteps = 40;

SamplingParams seeded_params() {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_p = 0.95f;
  p.top_k = 40;
  p.presence_penalty = 0.3f;
  p.repetition_penalty = 1.1f;
  p.seed = 42;
  return p;
}

TEST(SamplerDeterminism, SameSeedSameTokensWhateverTheBatch) {
  Req alone(seeded_params(), 42, 5);
  const auto ref = run({&alone}, kVocab, kSteps)[0];

  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SamplingParams hot;
  hot.temperature = 1.5f;
  hot.min_p = 0.05f;
  SamplingParams same_seed_other_params = seeded_params();
  same_seed_other_params.temperature = 0.3f;
  Req a(seeded_params(), 42, 5), b(greedy, 1, 6), c(hot, resolve_seed(hot), 7), d(same_seed_other_params, 42, 8);
  const auto batch4 = run({&b, &c, &a, &d}, kVocab, kSteps);
  EXPECT_EQ(batch4[2], ref);

  Req a2(seeded_params(), 42, 5), twin(seeded_params(), 42, 5), e(hot, 3, 9), f(greedy, 4, 10);
  Req g(hot, 5, 11), h(hot, 6, 12);
  const auto batch6 = run({&a2, &e, &f, &g, &h, &twin}, kVocab, kSteps);
  EXPECT_EQ(batch6[0], ref);
  EXPECT_EQ(batch6[5], ref);
  // The fake model and the seeds are such that the stream is not trivial.
  EXPECT_GT(std::set<int32_t>(ref.begin(), ref.end()).size(), 5u);
}

TEST(SamplerDeterminism, SameSeedSameLogprobsInABatch) {
  SamplingParams p = seeded_params();
  p.logprobs = 5;
  SamplingParams other;
  other.temperature = 2.0f;
  const Sampler sampler(kVocab);
  SamplingState s1(p, {}, 42), s2(p, {}, 42), s3(other, {}, 9);
  const auto row = sampling_test::fake_logits(3, 0, kVocab);
  const auto noise = sampling_test::fake_logits(4, 0, kVocab);
  const auto alone = sampling_test::sample_rows(sampler, {row}, {{&p, &s1}})[0];
  const auto batched = sampling_test::sample_rows(sampler, {noise, row}, {{&other, &s3}, {&p, &s2}})[1];
  EXPECT_EQ(alone.token, batched.token);
  EXPECT_EQ(alone.logprob, batched.logprob);
  ASSERT_EQ(alone.top_logprobs.size(), batched.top_logprobs.size());
  for (size_t i = 0; i < alone.top_logprobs.size(); ++i) {
    EXPECT_EQ(alone.top_logprobs[i].token, batched.top_logprobs[i].token);
    EXPECT_EQ(alone.top_logprobs[i].logprob, batched.top_logprobs[i].logprob);
  }
}

TEST(SamplerDeterminism, DifferentSeedsDiffer) {
  SamplingParams p;
  p.temperature = 1.0f;
  std::vector<Req> reqs;
  reqs.reserve(5);
  for (uint64_t seed = 1; seed <= 5; ++seed) reqs.emplace_back(p, seed, 0);  // same fake logits for all
  const auto out = run({&reqs[0], &reqs[1], &reqs[2], &reqs[3], &reqs[4]}, kVocab, kSteps);
  for (size_t i = 0; i < out.size(); ++i)
    for (size_t j = i + 1; j < out.size(); ++j) EXPECT_NE(out[i], out[j]) << "seeds " << i + 1 << ", " << j + 1;
}

TEST(SamplerDeterminism, UnseededRequestsGetDifferentStreams) {
  SamplingParams p;
  Req a(p, resolve_seed(p), 0), b(p, resolve_seed(p), 0);
  EXPECT_NE(a.state.seed(), b.state.seed());
  const auto out = run({&a, &b}, kVocab, kSteps);
  EXPECT_NE(out[0], out[1]);
}

TEST(SamplerDeterminism, ReplayingAStepRedrawsTheSameToken) {
  // The RNG step is the number of committed tokens, so sampling again before append() repeats the draw
  // (a preempted and recomputed request continues identically).
  SamplingParams p;
  const Sampler sampler(kVocab);
  SamplingState st(p, {}, 7);
  const auto row = sampling_test::fake_logits(1, 0, kVocab);
  const int32_t first = sampling_test::sample_rows(sampler, {row}, {{&p, &st}})[0].token;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sampling_test::sample_rows(sampler, {row}, {{&p, &st}})[0].token, first);
}

}  // namespace
}  // namespace dsv4::sampling
