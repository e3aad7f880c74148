// Response-side translation of chat output: DSML tool calls become OpenAI tool_calls (whole message and
// streamed deltas, for every chunking of the text), reasoning goes to reasoning_content, special tokens are
// removed, finish_reason becomes tool_calls; and the special-token filter on its own.
#include <gtest/gtest.h>

#include "server/chat_choice.h"

namespace dsv4::server {
namespace {

using tokenizer::ThinkingMode;

const SpecialStrings& specials() {
  static const SpecialStrings s({"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
                                 "<think>", "</think>", "｜DSML｜"});
  return s;
}

std::function<std::string()> counter_ids() {
  return [n = 0]() mutable { return "call_" + std::to_string(n++); };
}

const std::string kToolText =
    "Let me check.\n\n<｜DSML｜tool_calls>\n"
    "<｜DSML｜invoke name=\"get_weather\">\n"
    "<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n"
    "<｜DSML｜parameter name=\"days\" string=\"false\">2</｜DSML｜parameter>\n"
    "</｜DSML｜invoke>\n"
    "<｜DSML｜invoke name=\"get_time\">\n"
    "</｜DSML｜invoke>\n"
    "</｜DSML｜tool_calls>";

// Runs `text` through a ChatChoice in pieces of `chunk` bytes; returns the deltas, sets `msg`.
std::vector<Json> run(const std::string& text, size_t chunk, ThinkingMode mode, Json& msg, ChatChoice** out = nullptr) {
  static std::unique_ptr<ChatChoice> keep;
  keep = std::make_unique<ChatChoice>(mode, &specials(), counter_ids());
  std::vector<Json> deltas;
  for (size_t i = 0; i < text.size(); i += chunk) keep->push(std::string_view(text).substr(i, chunk), deltas);
  keep->finish(deltas);
  msg = keep->message();
  if (out != nullptr) *out = keep.get();
  return deltas;
}

// Accumulates deltas the way the OpenAI SDKs do.
Json accumulate(const std::vector<Json>& deltas) {
  Json m = {{"content", ""}, {"reasoning_content", ""}, {"tool_calls", Json::array()}};
  for (const Json& d : deltas) {
    if (d.contains("content")) m["content"] = m["content"].get<std::string>() + d["content"].get<std::string>();
    if (d.contains("reasoning_content"))
      m["reasoning_content"] = m["reasoning_content"].get<std::string>() + d["reasoning_content"].get<std::string>();
    if (d.contains("tool_calls")) {
      for (const Json& tc : d["tool_calls"]) {
        const size_t k = tc["index"].get<size_t>();
        if (m["tool_calls"].size() <= k) m["tool_calls"].push_back(Json{{"id", tc["id"]}, {"function", {{"name", ""}, {"arguments", ""}}}});
        m["tool_calls"][k]["function"]["name"] =
            m["tool_calls"][k]["function"]["name"].get<std::string>() + tc["function"]["name"].get<std::string>();
        m["tool_calls"][k]["function"]["arguments"] =
            m["tool_calls"][k]["function"]["arguments"].get<std::string>() + tc["function"]["arguments"].get<std::string>();
      }
    }
  }
  return m;
}

TEST(ChatChoice, DsmlToolCallsBecomeOpenAiToolCalls) {
  Json msg;
  ChatChoice* c = nullptr;
  run(kToolText, kToolText.size(), ThinkingMode::kChat, msg, &c);
  EXPECT_EQ(msg["role"], "assistant");
  EXPECT_EQ(msg["content"], "Let me check.");
  ASSERT_EQ(msg["tool_calls"].size(), 2u);
  EXPECT_EQ(msg["tool_calls"][0]["id"], "call_0");
  EXPECT_EQ(msg["tool_calls"][0]["type"], "function");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(msg["tool_calls"][0]["function"]["arguments"].get<std::string>()), Json::parse(R"({"city": "Paris", "days": 2})"));
  EXPECT_EQ(msg["tool_calls"][1]["function"]["name"], "get_time");
  EXPECT_EQ(msg["tool_calls"][1]["function"]["arguments"], "{}");
  EXPECT_FALSE(msg["tool_calls"][0].contains("index"));
  EXPECT_EQ(c->finish_reason("stop"), "tool_calls");
  EXPECT_EQ(c->finish_reason("length"), "length");
}

TEST(ChatChoice, StreamedDeltasEqualTheMessageForEveryChunking) {
  for (ThinkingMode mode : {ThinkingMode::kChat, ThinkingMode::kThinking}) {
    const std::string text = (mode == ThinkingMode::kThinking ? "I should call a tool.</think>" : "") + kToolText;
    Json whole;
    run(text, text.size(), mode, whole);
    for (size_t chunk : {1, 2, 3, 5, 7, 16}) {
      Json msg;
      std::vector<Json> deltas = run(text, chunk, mode, msg);
      EXPECT_EQ(msg, whole) << chunk;
      Json acc = accumulate(deltas);
      EXPECT_EQ(acc["content"], whole["content"]) << chunk;
      ASSERT_EQ(acc["tool_calls"].size(), 2u) << chunk;
      for (size_t k = 0; k < 2; ++k) {
        EXPECT_EQ(acc["tool_calls"][k]["function"], whole["tool_calls"][k]["function"]);
        EXPECT_EQ(acc["tool_calls"][k]["id"], "call_" + std::to_string(k));
      }
      if (mode == ThinkingMode::kThinking) {
        EXPECT_EQ(acc["reasoning_content"], "I should call a tool.");
      }
    }
  }
}

TEST(ChatChoice, ThinkingSplitsReasoningAndContent) {
  Json msg;
  std::vector<Json> deltas = run("Step 1, step 2.</think>The answer is 4.", 3, ThinkingMode::kThinking, msg);
  EXPECT_EQ(msg["reasoning_content"], "Step 1, step 2.");
  EXPECT_EQ(msg["content"], "The answer is 4.");
  EXPECT_FALSE(msg.contains("tool_calls"));
  // Reasoning deltas all come before content deltas.
  bool seen_content = false;
  for (const Json& d : deltas) {
    if (d.contains("content")) seen_content = true;
    if (d.contains("reasoning_content")) {
      EXPECT_FALSE(seen_content);
    }
  }
  Json chat_msg;
  run("plain answer", 4, ThinkingMode::kChat, chat_msg);
  EXPECT_EQ(chat_msg["content"], "plain answer");
  EXPECT_FALSE(chat_msg.contains("reasoning_content"));
}

TEST(ChatChoice, SpecialTokensAreRemovedFromContent) {
  Json msg;
  std::vector<Json> deltas = run("a<｜User｜>b<｜Assistant｜>c<think>d", 2, ThinkingMode::kChat, msg);
  EXPECT_EQ(msg["content"], "abcd");
  EXPECT_EQ(accumulate(deltas)["content"], "abcd");
  ChatChoice keep(ThinkingMode::kChat, nullptr, counter_ids());
  std::vector<Json> d2;
  keep.push("a<｜User｜>b", d2);
  keep.finish(d2);
  EXPECT_EQ(keep.message()["content"], "a<｜User｜>b");
}

TEST(ChatChoice, MalformedDsmlStaysContent) {
  Json msg;
  ChatChoice* c = nullptr;
  run("x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke nam", 4, ThinkingMode::kChat, msg, &c);
  EXPECT_FALSE(msg.contains("tool_calls"));
  EXPECT_EQ(c->finish_reason("stop"), "stop");
  EXPECT_NE(msg["content"].get<std::string>().find("tool_calls"), std::string::npos);
}

TEST(SpecialTextFilter, HoldsBackPartialSpecialsAcrossDeltas) {
  SpecialTextFilter f(&specials());
  std::string out;
  out += f.push("ab<");
  EXPECT_EQ(out, "ab");
  out += f.push("｜Us");
  out += f.push("er｜>c<");
  out += f.push("x");
  out += f.finish();
  EXPECT_EQ(out, "abc<x");
  SpecialTextFilter g(&specials());
  std::string held = g.push("<thin");
  EXPECT_EQ(held, "");
  held += g.finish();
  EXPECT_EQ(held, "<thin");
  SpecialTextFilter none(nullptr);
  EXPECT_EQ(none.push("<think>"), "<think>");
}

}  // namespace
}  // namespace dsv4::server
