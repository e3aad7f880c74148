// validate(): every rule rejects a request broken in exactly one field, and the message names the parameter,
// the offending value and the allowed range; the boundaries of each range are accepted.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "sampling/sampling_params.h"

namespace dsv4::sampling {
namespace {

constexpr int64_t kVocab = 1000;

struct RejectCase {
  const char* name;
  std::function<void(SamplingParams&)> mutate;
  std::vector<std::string> expect;  // substrings of the message
};

TEST(SamplingParamsValidate, DefaultsAreValid) {
  EXPECT_TRUE(validate(SamplingParams{}, kVocab).ok());
}

TEST(SamplingParamsValidate, RejectsEachBrokenField) {
  const std::vector<RejectCase> cases = {
      {"negative temperature", [](auto& p) { p.temperature = -0.5f; }, {"temperature", "-0.5", "[0, inf)"}},
      {"nan temperature", [](auto& p) { p.temperature = NAN; }, {"temperature", "nan"}},
      {"inf temperature", [](auto& p) { p.temperature = INFINITY; }, {"temperature", "inf"}},
      {"top_p zero", [](auto& p) { p.top_p = 0.0f; }, {"top_p", "= 0", "(0, 1]"}},
      {"top_p above one", [](auto& p) { p.top_p = 1.5f; }, {"top_p", "1.5", "(0, 1]"}},
      {"top_k below -1", [](auto& p) { p.top_k = -2; }, {"top_k", "-2", "[-1, inf)"}},
      {"min_p negative", [](auto& p) { p.min_p = -0.1f; }, {"min_p", "-0.1", "[0, 1]"}},
      {"min_p above one", [](auto& p) { p.min_p = 1.25f; }, {"min_p", "1.25", "[0, 1]"}},
      {"repetition zero", [](auto& p) { p.repetition_penalty = 0.0f; }, {"repetition_penalty", "= 0", "(0, inf)"}},
      {"presence high", [](auto& p) { p.presence_penalty = 2.5f; }, {"presence_penalty", "2.5", "[-2, 2]"}},
      {"frequency low", [](auto& p) { p.frequency_penalty = -3.0f; }, {"frequency_penalty", "-3", "[-2, 2]"}},
      {"max_tokens zero", [](auto& p) { p.max_tokens = 0; }, {"max_tokens", "= 0", "[1, inf)"}},
      {"logprobs high", [](auto& p) { p.logprobs = 21; }, {"logprobs", "21", "[0, 20]"}},
      {"logprobs negative", [](auto& p) { p.logprobs = -1; }, {"logprobs", "-1", "[0, 20]"}},
      {"bias id too big", [](auto& p) { p.logit_bias[1000] = 1.0f; }, {"logit_bias", "1000", "[0, 1000)"}},
      {"bias id negative", [](auto& p) { p.logit_bias[-3] = 1.0f; }, {"logit_bias", "-3", "[0, 1000)"}},
      {"bias value", [](auto& p) { p.logit_bias[7] = 100.5f; }, {"logit_bias[7]", "100.5", "[-100, 100]"}},
      {"bias nan", [](auto& p) { p.logit_bias[7] = NAN; }, {"logit_bias[7]", "nan"}},
      {"stop id", [](auto& p) { p.stop_token_ids = {3, 1000}; }, {"stop_token_ids[1]", "1000", "[0, 1000)"}},
      {"too many stop ids", [](auto& p) { p.stop_token_ids.assign(kMaxStopTokenIds + 1, 1); },
       {"stop_token_ids", "257", "256"}},
      {"empty stop", [](auto& p) { p.stop = {"a", ""}; }, {"stop[1]", "empty"}},
      {"long stop", [](auto& p) { p.stop = {std::string(kMaxStopStringBytes + 1, 'x')}; },
       {"stop[0]", "257 bytes", "256"}},
      {"too many stops", [](auto& p) { p.stop.assign(kMaxStopStrings + 1, "x"); }, {"stop", "17", "16"}},
  };
  for (const RejectCase& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const Status s = validate(p, kVocab);
    ASSERT_FALSE(s.ok()) << c.name;
    for (const std::string& e : c.expect)
      EXPECT_NE(s.message().find(e), std::string::npos) << c.name << ": '" << s.message() << "' lacks '" << e << "'";
  }
}

TEST(SamplingParamsValidate, AcceptsRangeBoundaries) {
  const std::vector<std::function<void(SamplingParams&)>> ok = {
      [](auto& p) { p.temperature = 0.0f; },       [](auto& p) { p.top_p = 1.0f; },
      [](auto& p) { p.top_p = 1e-6f; },            [](auto& p) { p.top_k = -1; },
      [](auto& p) { p.top_k = 5000; },             [](auto& p) { p.min_p = 1.0f; },
      [](auto& p) { p.min_p = 0.0f; },             [](auto& p) { p.presence_penalty = -2.0f; },
      [](auto& p) { p.frequency_penalty = 2.0f; }, [](auto& p) { p.repetition_penalty = 1e-3f; },
      [](auto& p) { p.logprobs = 0; },             [](auto& p) { p.logprobs = 20; },
      [](auto& p) { p.logit_bias = {{0, -100.0f}, {999, 100.0f}}; },
      [](auto& p) { p.stop_token_ids = {0, 999}; },
      [](auto& p) { p.stop.assign(kMaxStopStrings, std::string(kMaxStopStringBytes, 'x')); },
      [](auto& p) { p.max_tokens = 1; },
  };
  for (size_t i = 0; i < ok.size(); ++i) {
    SamplingParams p;
    ok[i](p);
    const Status s = validate(p, kVocab);
    EXPECT_TRUE(s.ok()) << "case " << i << ": " << (s.ok() ? "" : s.message());
  }
}

TEST(SamplingParamsValidate, GreedyBelowEpsilon) {
  SamplingParams p;
  p.temperature = 0.0f;
  EXPECT_TRUE(is_greedy(p));
  p.temperature = 1e-6f;
  EXPECT_TRUE(is_greedy(p));
  p.temperature = 1e-3f;
  EXPECT_FALSE(is_greedy(p));
}

TEST(SamplingParamsSeed, ExplicitSeedIsKeptAndMissingSeedIsRandom) {
  SamplingParams p;
  p.seed = 1234;
  EXPECT_EQ(resolve_seed(p), 1234u);
  p.seed.reset();
  // Two 64-bit draws from the OS entropy source agree with probability 2^-64.
  EXPECT_NE(resolve_seed(p), resolve_seed(p));
}

}  // namespace
}  // namespace dsv4::sampling
