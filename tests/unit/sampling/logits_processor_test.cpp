// Steps 1-7 of logits processing on hand-worked rows: each penalty changes exactly the logits it should by the
// amount computed by hand, the steps run in vLLM's order, and top-k / top-p / min-p keep exactly the expected
// token sets with probabilities renormalized over the survivors (expected values written out in the tests).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/check.h"
#include "sampling/logits_processor.h"

namespace dsv4::sampling {
namespace {

SamplingState state_with(const SamplingParams& p, std::vector<int32_t> prompt, std::vector<int32_t> output) {
  SamplingState s(p, prompt, 0);
  for (int32_t t : output) s.append(t);
  return s;
}

// token -> probability of filter_candidates' output.
std::map<int32_t, double> filtered(std::vector<float> logits, const SamplingParams& p) {
  std::vector<Candidate> c;
  filter_candidates(logits, p, c);
  std::map<int32_t, double> m;
  for (const Candidate& x : c) m[x.token] = x.prob;
  EXPECT_EQ(m.size(), c.size()) << "duplicate candidates";
  return m;
}

void expect_dist(const std::map<int32_t, double>& got, const std::map<int32_t, double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [t, p] : want) {
    ASSERT_TRUE(got.count(t)) << "token " << t << " missing";
    EXPECT_NEAR(got.at(t), p, 1e-6) << "token " << t;
  }
}

// Logits whose softmax is exactly probs (up to f32 rounding of the logs).
std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

TEST(LogitsProcessor, LogitBiasAddsToRawLogits) {
  std::vector<float> l = {1, 2, 3, 4};
  apply_logit_bias(l, {{0, 5.0f}, {3, -100.0f}});
  EXPECT_EQ(l, (std::vector<float>{6, 2, 3, -96}));
}

TEST(LogitsProcessor, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  // Prompt {0, 2, 2}, output {3}: tokens 0, 2, 3 seen; 1 and 4 not.
  const SamplingState s = state_with(p, {0, 2, 2}, {3});
  std::vector<float> l = {2, -1, -3, 4, 5};
  apply_repetition_penalty(l, 2.0f, s);
  EXPECT_EQ(l, (std::vector<float>{1, -1, -6, 2, 5}));
}

TEST(LogitsProcessor, RepetitionPenaltyOncePerTokenSeenInPromptAndOutput) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  const SamplingState s = state_with(p, {0}, {0, 0});
  std::vector<float> l = {2, 3};
  apply_repetition_penalty(l, 2.0f, s);
  EXPECT_EQ(l, (std::vector<float>{1, 3}));
}

TEST(LogitsProcessor, PresenceAndFrequencyOnOutputCountsOnly) {
  SamplingParams p;
  // Prompt token 0 is not penalized by presence/frequency; output: token 1 three times, token 2 once.
  const SamplingState s = state_with(p, {0}, {1, 2, 1, 1});
  std::vector<float> l = {1, 1, 1, 1};
  apply_presence_frequency(l, 0.5f, 0.25f, s);
  // token 1: 1 - (3 * 0.25 + 0.5) = -0.25; token 2: 1 - (0.25 + 0.5) = 0.25.
  EXPECT_EQ(l, (std::vector<float>{1, -0.25f, 0.25f, 1}));
  std::vector<float> neg = {1, 1, 1, 1};
  apply_presence_frequency(neg, -1.0f, 0.0f, s);  // negative presence encourages repeats
  EXPECT_EQ(neg, (std::vector<float>{1, 2, 2, 1}));
}

TEST(LogitsProcessor, ProcessLogitsRunsBiasRepetitionPresenceTemperatureInOrder) {
  SamplingParams p;
  p.logit_bias = {{0, 1.0f}};
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.5f;
  p.temperature = 0.5f;
  const SamplingState s = state_with(p, {}, {0});
  std::vector<float> l = {1, -1};
  process_logits(l, p, s);
  // token 0: bias 1 + 1 = 2; repetition 2 / 2 = 1; presence+frequency 1 - 1 = 0; temperature 0 / 0.5 = 0.
  // (Repetition before the bias, or presence/frequency before repetition, would both give 1.)
  // token 1: unseen, -1 / 0.5 = -2.
  EXPECT_EQ(l, (std::vector<float>{0, -2}));
}

TEST(LogitsProcessor, GreedyKeepsTheLogitScale) {
  SamplingParams p;
  p.temperature = 0.0f;
  const SamplingState s = state_with(p, {}, {});
  std::vector<float> l = {1.5f, -2.0f};
  process_logits(l, p, s);
  EXPECT_EQ(l, (std::vector<float>{1.5f, -2.0f}));
  p.temperature = 0.25f;
  process_logits(l, p, s);
  EXPECT_EQ(l, (std::vector<float>{6.0f, -8.0f}));
}

TEST(FilterCandidates, NoFilterIsTheSoftmax) {
  SamplingParams p;
  // softmax({0, ln 2, ln 5}) = {1/8, 2/8, 5/8}
  expect_dist(filtered({0.0f, std::log(2.0f), std::log(5.0f)}, p), {{0, 0.125}, {1, 0.25}, {2, 0.625}});
}

TEST(FilterCandidates, TopKKeepsTheKHighestAndBreaksTiesByLowerId) {
  SamplingParams p;
  p.top_k = 2;
  const double e = std::exp(1.0);
  // logits {1, 3, 2, 3, 0}: the two 3s.
  expect_dist(filtered({1, 3, 2, 3, 0}, p), {{1, 0.5}, {3, 0.5}});
  p.top_k = 3;
  expect_dist(filtered({1, 3, 2, 3, 0}, p), {{1, e / (2 * e + 1)}, {3, e / (2 * e + 1)}, {2, 1 / (2 * e + 1)}});
  // {5, 4, 4, 1} with k = 2: the tie at 4 goes to token 1.
  p.top_k = 2;
  expect_dist(filtered({5, 4, 4, 1}, p), {{0, e / (e + 1)}, {1, 1 / (e + 1)}});
  for (int32_t off : {0, -1, 4, 100}) {
    p.top_k = off;
    EXPECT_EQ(filtered({5, 4, 4, 1}, p).size(), 4u) << "top_k " << off;
  }
}

TEST(FilterCandidates, TopPKeepsTheShortestPrefixReachingP) {
  SamplingParams p;
  const auto l = logits_of({0.5, 0.3, 0.15, 0.05});
  p.top_p = 0.4f;  // 0.5 alone reaches 0.4
  expect_dist(filtered(l, p), {{0, 1.0}});
  p.top_p = 0.7f;  // 0.5 < 0.7, 0.8 >= 0.7
  expect_dist(filtered(l, p), {{0, 0.5 / 0.8}, {1, 0.3 / 0.8}});
  p.top_p = 0.85f;  // 0.8 < 0.85, 0.95 >= 0.85
  expect_dist(filtered(l, p), {{0, 0.5 / 0.95}, {1, 0.3 / 0.95}, {2, 0.15 / 0.95}});
  p.top_p = 0.99f;
  expect_dist(filtered(l, p), {{0, 0.5}, {1, 0.3}, {2, 0.15}, {3, 0.05}});
  // Order of the input does not matter: the same distribution permuted.
  const auto perm = logits_of({0.15, 0.05, 0.5, 0.3});
  p.top_p = 0.7f;
  expect_dist(filtered(perm, p), {{2, 0.5 / 0.8}, {3, 0.3 / 0.8}});
}

TEST(FilterCandidates, TopPOnALargeVocabularyMatchesAFullSort) {
  // Nuclei of 2 to about 1700 tokens (the filter widens its sorted prefix 64, 256, ...); the expected
  // set comes from sorting all probabilities here and accumulating until the mass reaches top_p.
  const int n = 5000;
  std::vector<float> l(n);
  for (int i = 0; i < n; ++i)
    l[static_cast<size_t>(i)] = 0.004f * static_cast<float>((i * 7919) % n) + 0.3f * std::sin(0.1f * i);
  std::vector<std::pair<double, int32_t>> order;
  for (int i = 0; i < n; ++i) order.push_back({l[static_cast<size_t>(i)], i});
  std::sort(order.begin(), order.end(),
            [](auto a, auto b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (float top_p : {0.01f, 0.2f, 0.5f, 0.9f, 0.999f}) {
    double z = 0.0;
    for (const auto& [v, i] : order) z += std::exp(v);
    std::map<int32_t, double> want;
    double before = 0.0, kept = 0.0;
    for (const auto& [v, i] : order) {
      if (before >= top_p) break;
      before += std::exp(v) / z;
      want[i] = std::exp(v);
      kept += std::exp(v);
    }
    for (auto& [i, w] : want) w /= kept;
    SamplingParams p;
    p.top_p = top_p;
    const auto got = filtered(l, p);
    EXPECT_EQ(got.size(), want.size()) << "top_p " << top_p;
    expect_dist(got, want);
  }
}

TEST(FilterCandidates, TopPRunsOnTheTopKRenormalizedDistribution) {
  SamplingParams p;
  const auto l = logits_of({0.5, 0.3, 0.15, 0.05});
  p.top_p = 0.6f;
  expect_dist(filtered(l, p), {{0, 0.5 / 0.8}, {1, 0.3 / 0.8}});  // 0.5 < 0.6 without top-k
  p.top_k = 2;  // after top-k the probabilities are {0.625, 0.375}: 0.625 >= 0.6 already
  expect_dist(filtered(l, p), {{0, 1.0}});
}

TEST(FilterCandidates, MinPKeepsTokensAtLeastMinPTimesTheLargest) {
  SamplingParams p;
  const auto l = logits_of({0.5, 0.3, 0.15, 0.05});
  p.min_p = 0.2f;  // threshold 0.1
  expect_dist(filtered(l, p), {{0, 0.5 / 0.95}, {1, 0.3 / 0.95}, {2, 0.15 / 0.95}});
  p.min_p = 0.5f;  // threshold 0.25
  expect_dist(filtered(l, p), {{0, 0.5 / 0.8}, {1, 0.3 / 0.8}});
  p.min_p = 0.7f;  // threshold 0.35
  expect_dist(filtered(l, p), {{0, 1.0}});
  p.min_p = 1.0f;  // only the maximum
  expect_dist(filtered(l, p), {{0, 1.0}});
}

TEST(FilterCandidates, AllThreeFiltersCompose) {
  SamplingParams p;
  const auto l = logits_of({0.4, 0.25, 0.2, 0.1, 0.05});
  p.top_k = 4;      // {0.4, 0.25, 0.2, 0.1} / 0.95
  p.top_p = 0.9f;   // cumulative before: 0, .421, .684, .895 -> all four kept
  p.min_p = 0.3f;   // threshold 0.12 (ratio to the max): drops 0.1
  expect_dist(filtered(l, p), {{0, 0.4 / 0.85}, {1, 0.25 / 0.85}, {2, 0.2 / 0.85}});
}

TEST(FilterCandidates, ExactBoundaries) {
  // Equal logits give weights of exactly 1, so the boundaries are exact in floating point.
  const std::vector<float> flat = {0, 0, 0, 0};
  SamplingParams p;
  p.top_p = 0.5f;  // two tokens already hold 0.5: the set stops there (mass before the third is not < 0.5)
  expect_dist(filtered(flat, p), {{0, 0.5}, {1, 0.5}});
  p.top_p = 0.75f;
  expect_dist(filtered(flat, p), {{0, 1.0 / 3}, {1, 1.0 / 3}, {2, 1.0 / 3}});
  p = SamplingParams{};
  p.min_p = 1.0f;  // probability equal to min_p * max is kept
  expect_dist(filtered(flat, p), {{0, 0.25}, {1, 0.25}, {2, 0.25}, {3, 0.25}});
  p = SamplingParams{};
  p.top_k = 2;  // all tied: the lowest ids
  expect_dist(filtered(flat, p), {{0, 0.5}, {1, 0.5}});
}

TEST(FilterCandidates, NegativeInfinityNeverSurvives) {
  SamplingParams p;
  const float ninf = -std::numeric_limits<float>::infinity();
  expect_dist(filtered({ninf, 0.0f, ninf, 0.0f}, p), {{1, 0.5}, {3, 0.5}});
  p.top_k = 3;
  expect_dist(filtered({ninf, 0.0f, ninf, 0.0f}, p), {{1, 0.5}, {3, 0.5}});
  EXPECT_THROW(filtered({ninf, ninf}, p), InvariantError);
  EXPECT_THROW(filtered({0.0f, NAN}, SamplingParams{}), InvariantError);
}

TEST(PickCandidate, InverseCdf) {
  const std::vector<Candidate> c = {{4, 0, 0.2}, {9, 0, 0.5}, {1, 0, 0.3}};
  EXPECT_EQ(pick_candidate(c, 0.0), 4);
  EXPECT_EQ(pick_candidate(c, 0.19), 4);
  EXPECT_EQ(pick_candidate(c, 0.2), 9);
  EXPECT_EQ(pick_candidate(c, 0.69), 9);
  EXPECT_EQ(pick_candidate(c, 0.71), 1);
  EXPECT_EQ(pick_candidate(c, 0.999999), 1);
  // A probability-0 tail is never drawn, even when u exceeds the rounded total.
  const std::vector<Candidate> z = {{4, 0, 0.6}, {9, 0, 0.4 - 1e-12}, {1, 0, 0.0}};
  EXPECT_EQ(pick_candidate(z, 1.0 - 1e-13), 9);
}

TEST(Argmax, LowestIdAmongTies) {
  EXPECT_EQ(argmax(std::vector<float>{1, 5, 2, 5}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-3, -4}), 0);
}

}  // namespace
}  // namespace dsv4::sampling
