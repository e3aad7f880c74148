// StopChecker: stop strings matched across text deltas with the partial match held back, several stop strings
// (earliest wins), stop token ids, EOS and ignore_eos, max_tokens, precedence, and a randomized check of the
// emitted text against an independent whole-string search.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "sampling/stop_checker.h"

namespace dsv4::sampling {
namespace {

const std::vector<int32_t> kEos = {2};
constexpr int32_t kText = 10;  // an ordinary token id

SamplingParams with_stops(std::vector<std::string> stop, int32_t max_tokens = 100) {
  SamplingParams p;
  p.stop = std::move(stop);
  p.max_tokens = max_tokens;
  return p;
}

TEST(StopChecker, StopStringAcrossDeltas) {
  StopChecker sc(with_stops({"lo w"}), kEos);
  StopResult r = sc.on_token(kText, "Hel");
  EXPECT_EQ(r.text, "He");  // "l" might start "lo w"
  EXPECT_FALSE(r.finished());
  EXPECT_EQ(sc.held_text(), "l");
  r = sc.on_token(kText, "lo wor");
  EXPECT_EQ(r.text, "l");
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.stop_string, "lo w");
  EXPECT_FALSE(r.stop_token.has_value());
  EXPECT_TRUE(sc.finished());
  EXPECT_THROW(sc.on_token(kText, "ld"), InvariantError);
}

TEST(StopChecker, HeldPrefixIsReleasedWhenItStopsMatching) {
  StopChecker sc(with_stops({"END"}), kEos);
  EXPECT_EQ(sc.on_token(kText, "abcE").text, "abc");
  EXPECT_EQ(sc.on_token(kText, "N").text, "");
  EXPECT_EQ(sc.held_text(), "EN");
  const StopResult r = sc.on_token(kText, "x");
  EXPECT_EQ(r.text, "ENx");
  EXPECT_FALSE(r.finished());
  EXPECT_EQ(sc.on_token(kText, "").text, "");  // an empty delta (e.g. an incomplete UTF-8 sequence)
}

TEST(StopChecker, OverlappingPrefixHoldsTheLongestTail) {
  // Text "aaab", stop "aab": the match starts at 1, so only "a" is ever emitted.
  StopChecker sc(with_stops({"aab"}), kEos);
  std::string emitted;
  emitted += sc.on_token(kText, "a").text;
  emitted += sc.on_token(kText, "a").text;
  EXPECT_EQ(emitted, "");
  emitted += sc.on_token(kText, "a").text;
  EXPECT_EQ(emitted, "a");
  const StopResult r = sc.on_token(kText, "b");
  emitted += r.text;
  EXPECT_EQ(emitted, "a");
  EXPECT_EQ(r.finish, FinishReason::kStop);
}

TEST(StopChecker, EarliestOfSeveralStopStringsWins) {
  StopChecker one(with_stops({"world", "lo"}), kEos);
  const StopResult r = one.on_token(kText, "hello world");
  EXPECT_EQ(r.text, "hel");
  EXPECT_EQ(r.stop_string, "lo");

  StopChecker two(with_stops({"xyz", "abc"}), kEos);
  EXPECT_EQ(two.on_token(kText, "123ab").text, "123");
  const StopResult r2 = two.on_token(kText, "c456");
  EXPECT_EQ(r2.text, "");
  EXPECT_EQ(r2.stop_string, "abc");
}

TEST(StopChecker, MultiByteStopStringSplitInsideACharacter) {
  StopChecker sc(with_stops({"\xC3\xA9"}), kEos);  // "é"
  EXPECT_EQ(sc.on_token(kText, "caf\xC3").text, "caf");
  const StopResult r = sc.on_token(kText, "\xA9!");
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.finish, FinishReason::kStop);
}

TEST(StopChecker, StopTokenIdEndsWithoutItsTextAndFlushesHeldText) {
  SamplingParams p = with_stops({"END"});
  p.stop_token_ids = {7};
  StopChecker sc(p, kEos);
  EXPECT_EQ(sc.on_token(kText, "xE").text, "x");
  const StopResult r = sc.on_token(7, "<|stop|>");
  EXPECT_EQ(r.text, "E");
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.stop_token, 7);
  EXPECT_FALSE(r.stop_string.has_value());
}

TEST(StopChecker, EosStopsUnlessIgnoreEos) {
  SamplingParams p;
  p.stop_token_ids = {7};
  StopChecker stops(p, kEos);
  const StopResult r = stops.on_token(2, "</s>");
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.stop_token, 2);
  EXPECT_EQ(r.text, "");

  p.ignore_eos = true;
  StopChecker ignores(p, kEos);
  const StopResult r2 = ignores.on_token(2, "</s>");
  EXPECT_FALSE(r2.finished());
  EXPECT_EQ(r2.text, "</s>");
  const StopResult r3 = ignores.on_token(7, "x");  // explicit stop ids still apply
  EXPECT_EQ(r3.finish, FinishReason::kStop);
  EXPECT_EQ(r3.stop_token, 7);
}

TEST(StopChecker, SeveralEosIds) {
  const std::vector<int32_t> eos = {2, 5};
  StopChecker sc(SamplingParams{}, eos);
  EXPECT_FALSE(sc.on_token(3, "a").finished());
  EXPECT_EQ(sc.on_token(5, "").stop_token, 5);
}

TEST(StopChecker, MaxTokensFinishesWithLengthAndFlushesHeldText) {
  StopChecker sc(with_stops({"END"}, 3), kEos);
  EXPECT_FALSE(sc.on_token(kText, "a").finished());
  EXPECT_EQ(sc.on_token(kText, "bE").text, "b");
  const StopResult r = sc.on_token(kText, "N");
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.text, "EN");
  EXPECT_EQ(sc.n_tokens(), 3);
  EXPECT_THROW(sc.on_token(kText, "x"), InvariantError);
}

TEST(StopChecker, StopBeatsLengthOnTheLastToken) {
  StopChecker by_string(with_stops({"END"}, 2), kEos);
  by_string.on_token(kText, "EN");
  EXPECT_EQ(by_string.on_token(kText, "D").finish, FinishReason::kStop);
  SamplingParams p = with_stops({}, 1);
  StopChecker by_eos(p, kEos);
  EXPECT_EQ(by_eos.on_token(2, "").finish, FinishReason::kStop);
}

TEST(StopChecker, MaxTokensOneWithoutStops) {
  StopChecker sc(with_stops({}, 1), kEos);
  const StopResult r = sc.on_token(kText, "hi");
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.text, "hi");
}

// Random texts over {a, b} cut into random deltas: the concatenation of the emitted text must equal the
// prefix before the earliest stop-string occurrence in the whole text (std::string::find), and be emitted no
// later than the text can be known not to start a match.
TEST(StopChecker, RandomizedAgainstWholeStringSearch) {
  std::mt19937 rng(5);
  const std::vector<std::string> stops = {"aba", "bb", "baaab"};
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text;
    const int len = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < len; ++i) text += (rng() % 3 == 0) ? 'b' : 'a';
    size_t cut = std::string::npos;
    for (const auto& s : stops) cut = std::min(cut, text.find(s));
    StopChecker sc(with_stops(stops, 1000), kEos);
    std::string emitted;
    StopResult r;
    for (size_t pos = 0; pos < text.size() && !r.finished();) {
      const size_t n = std::min(text.size() - pos, static_cast<size_t>(1 + rng() % 4));
      r = sc.on_token(kText, std::string_view(text).substr(pos, n));
      emitted += r.text;
      pos += n;
      for (const auto& s : stops) ASSERT_EQ(emitted.find(s), std::string::npos) << text;
    }
    if (cut == std::string::npos) {
      EXPECT_FALSE(r.finished()) << text;
      EXPECT_EQ(emitted + sc.held_text(), text);
      EXPECT_LT(sc.held_text().size(), 5u) << text;  // at most the longest stop minus one
    } else {
      EXPECT_EQ(r.finish, FinishReason::kStop) << text;
      EXPECT_EQ(emitted, text.substr(0, cut)) << text;
    }
  }
}

}  // namespace
}  // namespace dsv4::sampling
