// Logprobs: the chosen token's logprob and the top-n alternatives equal the log-softmax of the processed
// logits (bias, penalties, temperature applied; top-k / top-p / min-p not), computed here by hand. Also the
// batch-shape checks of Sampler::sample.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/check.h"
#include "sampling/logprobs.h"
#include "sampling/sampler.h"
#include "unit/sampling/sampler_test_util.h"

namespace dsv4::sampling {
namespace {

using sampling_test::sample_rows;

double lse_of(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += std::exp(x);
  return std::log(s);
}

TEST(Logprobs, LogSumExpAndTopN) {
  EXPECT_NEAR(log_sum_exp(std::vector<float>{0.0f, std::log(3.0f)}), std::log(4.0), 1e-7);
  EXPECT_NEAR(log_sum_exp(std::vector<float>{1000.0f, 1000.0f}), 1000.0 + std::log(2.0), 1e-9);  // no overflow
  const std::vector<float> l = {1, 3, 3, 0};
  const double lse = lse_of({1, 3, 3, 0});
  const auto top = top_logprobs(l, lse, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 1);  // tie at 3: lower id first
  EXPECT_EQ(top[1].token, 2);
  EXPECT_EQ(top[2].token, 0);
  EXPECT_NEAR(top[0].logprob, 3 - lse, 1e-6);
  EXPECT_NEAR(top[2].logprob, 1 - lse, 1e-6);
  EXPECT_TRUE(top_logprobs(l, lse, 0).empty());
  EXPECT_EQ(top_logprobs(l, lse, 20).size(), 4u);
}

TEST(Logprobs, SampledLogprobsAreLogSoftmaxOfTemperatureScaledLogits) {
  const Sampler sampler(4);
  SamplingParams p;
  p.temperature = 0.5f;
  p.logprobs = 2;
  SamplingState st(p, {}, 3);
  const auto r = sample_rows(sampler, {{1.0f, 2.0f, 3.0f, 0.5f}}, {{&p, &st}})[0];
  const std::vector<double> scaled = {2, 4, 6, 1};
  const double lse = lse_of(scaled);
  ASSERT_TRUE(r.has_logprobs);
  EXPECT_NEAR(r.logprob, scaled[static_cast<size_t>(r.token)] - lse, 1e-6);
  ASSERT_EQ(r.top_logprobs.size(), 2u);
  EXPECT_EQ(r.top_logprobs[0].token, 2);
  EXPECT_NEAR(r.top_logprobs[0].logprob, 6 - lse, 1e-6);
  EXPECT_EQ(r.top_logprobs[1].token, 1);
  EXPECT_NEAR(r.top_logprobs[1].logprob, 4 - lse, 1e-6);
}

TEST(Logprobs, GreedyLogprobsUseUnscaledLogits) {
  const Sampler sampler(4);
  SamplingParams p;
  p.temperature = 0.0f;
  p.logprobs = 3;
  SamplingState st(p, {}, 0);
  const auto r = sample_rows(sampler, {{1.0f, 2.0f, 3.0f, 0.5f}}, {{&p, &st}})[0];
  const double lse = lse_of({1, 2, 3, 0.5});
  EXPECT_EQ(r.token, 2);
  EXPECT_NEAR(r.logprob, 3 - lse, 1e-6);
  ASSERT_EQ(r.top_logprobs.size(), 3u);
  EXPECT_EQ(r.top_logprobs[2].token, 0);
  EXPECT_NEAR(r.top_logprobs[2].logprob, 1 - lse, 1e-6);
}

TEST(Logprobs, ReportedBeforeFilteringAndAfterBiasAndPenalties) {
  const Sampler sampler(4);
  SamplingParams p;
  p.top_k = 1;  // only token 2 can be drawn, yet all four keep finite logprobs
  p.logprobs = 4;
  p.logit_bias = {{3, 1.0f}};
  p.frequency_penalty = 1.0f;
  SamplingState st(p, {}, 0);
  st.append(1);
  st.append(1);
  const auto r = sample_rows(sampler, {{1.0f, 2.0f, 3.0f, 0.5f}}, {{&p, &st}})[0];
  // Processed: {1, 2 - 2 = 0, 3, 0.5 + 1 = 1.5}.
  const double lse = lse_of({1, 0, 3, 1.5});
  EXPECT_EQ(r.token, 2);
  EXPECT_NEAR(r.logprob, 3 - lse, 1e-6);
  ASSERT_EQ(r.top_logprobs.size(), 4u);
  const int32_t want_order[] = {2, 3, 0, 1};
  const double want_lp[] = {3 - lse, 1.5 - lse, 1 - lse, 0 - lse};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(r.top_logprobs[i].token, want_order[i]);
    EXPECT_NEAR(r.top_logprobs[i].logprob, want_lp[i], 1e-6);
  }
}

TEST(Logprobs, ZeroMeansChosenOnlyAndUnsetMeansNone) {
  const Sampler sampler(3);
  SamplingParams zero, none;
  zero.logprobs = 0;
  SamplingState s1(zero, {}, 0), s2(none, {}, 0);
  const auto r = sample_rows(sampler, {{0, 1, 2}, {0, 1, 2}}, {{&zero, &s1}, {&none, &s2}});
  EXPECT_TRUE(r[0].has_logprobs);
  EXPECT_TRUE(r[0].top_logprobs.empty());
  EXPECT_NEAR(r[0].logprob, static_cast<double>(r[0].token) - lse_of({0, 1, 2}), 1e-6);
  EXPECT_FALSE(r[1].has_logprobs);
  EXPECT_TRUE(r[1].top_logprobs.empty());
}

TEST(SamplerBatch, ShapeMismatchesAndBadRowsAreInvariantErrors) {
  const Sampler sampler(3);
  SamplingParams p;
  SamplingState st(p, {}, 0);
  std::vector<float> flat = {0, 1, 2, 3, 4, 5};
  const std::vector<SampleRow> one = {{&p, &st}};
  EXPECT_THROW(sampler.sample({TensorView{flat.data(), DType::F32, {2, 3}}, one}), InvariantError);  // 2 rows, 1 meta
  EXPECT_THROW(sampler.sample({TensorView{flat.data(), DType::F32, {1, 6}}, one}), InvariantError);  // vocab 6 != 3
  EXPECT_THROW(sampler.sample({TensorView{flat.data(), DType::BF16, {1, 3}}, one}), InvariantError);
  const std::vector<SampleRow> missing = {{&p, nullptr}};
  EXPECT_THROW(sampler.sample({TensorView{flat.data(), DType::F32, {1, 3}}, missing}), InvariantError);
  // A NaN row fails in a worker and is rethrown on the caller, for any row position.
  std::vector<float> bad(3 * 16, 0.0f);
  bad[46] = NAN;  // row 15, the others finite
  std::vector<SampleRow> rows(16, {&p, &st});
  EXPECT_THROW(sampler.sample({TensorView{bad.data(), DType::F32, {16, 3}}, rows}), InvariantError);
  bad[46] = INFINITY;
  EXPECT_THROW(sampler.sample({TensorView{bad.data(), DType::F32, {16, 3}}, rows}), InvariantError);
  EXPECT_TRUE(sampler.sample({TensorView{flat.data(), DType::F32, {0, 3}}, {}}).empty());
}

}  // namespace
}  // namespace dsv4::sampling
