// Chat encoding against DeepSeek's reference: the four official golden tests of encoding/ (inputs and outputs
// committed under tests/data/tokenizer/chat/official) and tests/data/tokenizer/chat/vectors.jsonl, whose
// expected prompts and parses were produced by running the reference encoding_dsv4.py
// (tools/gen_tokenizer_goldens.py --chat-vectors). One vector per rule: roles, modes, effort, the drop rule,
// tools, tool-result merging and ordering, response_format, tasks, wo_eos, context.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tokenizer/chat_encoding.h"
#include "tokenizer/chat_parser.h"
#include "tokenizer_test_support.h"

namespace dsv4::tokenizer::testing {
namespace {

using Json = nlohmann::ordered_json;

std::filesystem::path chat_dir() { return data_dir() / "chat"; }

std::vector<Json> load_vectors(const std::string& kind) {
  std::vector<Json> out;
  std::ifstream f(chat_dir() / "vectors.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    Json j = Json::parse(line);
    if (j["kind"] == kind) out.push_back(std::move(j));
  }
  return out;
}

ChatEncodeOptions options_from(const Json& o) {
  ChatEncodeOptions opts;
  opts.thinking_mode = o.value("thinking_mode", "chat") == "thinking" ? ThinkingMode::kThinking : ThinkingMode::kChat;
  const std::string effort = o.contains("reasoning_effort") && o["reasoning_effort"].is_string()
                                 ? o["reasoning_effort"].get<std::string>() : "";
  opts.reasoning_effort = effort == "max" ? ReasoningEffort::kMax : effort == "high" ? ReasoningEffort::kHigh
                                                                                      : ReasoningEffort::kDefault;
  opts.drop_thinking = o.value("drop_thinking", true);
  opts.add_bos = o.value("add_default_bos_token", true);
  return opts;
}

TEST(ChatEncoding, OfficialGoldenTests) {
  const char* modes[] = {"thinking", "thinking", "thinking", "chat"};
  for (int i = 1; i <= 4; ++i) {
    Json input = Json::parse(read_text(chat_dir() / "official" / ("test_input_" + std::to_string(i) + ".json")));
    Json messages = input;
    if (input.is_object()) {
      messages = input["messages"];
      messages[0]["tools"] = input["tools"];
    }
    ChatEncodeOptions opts;
    opts.thinking_mode = std::string(modes[i - 1]) == "thinking" ? ThinkingMode::kThinking : ThinkingMode::kChat;
    auto prompt = encode_messages(messages, opts);
    ASSERT_TRUE(prompt.ok()) << prompt.message();
    EXPECT_EQ(*prompt, read_text(chat_dir() / "official" / ("test_output_" + std::to_string(i) + ".txt"))) << "case " << i;
  }
}

TEST(ChatEncoding, ReferenceVectors) {
  auto vectors = load_vectors("encode");
  ASSERT_GE(vectors.size(), 30u);
  for (const Json& v : vectors) {
    auto prompt = encode_messages(v["messages"], options_from(v["options"]), v.contains("context") ? v["context"] : Json());
    ASSERT_TRUE(prompt.ok()) << v["name"] << ": " << prompt.message();
    EXPECT_EQ(*prompt, v["prompt"].get<std::string>()) << v["name"];
  }
}

TEST(ChatEncoding, ReadmeExample) {
  Json messages = Json::parse(R"([{"role": "system", "content": "You are a helpful assistant."},
                                  {"role": "user", "content": "What is 2+2?"}])");
  auto prompt = encode_messages(messages, {.thinking_mode = ThinkingMode::kThinking});
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(*prompt, "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 2+2?<｜Assistant｜><think>");
}

TEST(ChatEncoding, ErrorsNameTheMessage) {
  auto r = encode_messages(Json::parse(R"([{"role": "wizard", "content": "x"}])"), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("message 0"), std::string::npos);
  EXPECT_NE(r.message().find("wizard"), std::string::npos);
  EXPECT_FALSE(encode_messages(Json::parse(R"([{"role": "user", "content": "x", "task": "dance"}])"), {}).ok());
  EXPECT_FALSE(encode_messages(Json::parse(R"([{"role": "developer", "content": ""}])"), {}).ok());
  EXPECT_FALSE(encode_messages(Json::parse(R"({"role": "user"})"), {}).ok());
  EXPECT_FALSE(encode_messages(Json::parse(R"([{"role": "user", "content": 5}])"), {}).ok());
}

ThinkingMode mode_of(const Json& v) {
  return v["thinking_mode"] == "thinking" ? ThinkingMode::kThinking : ThinkingMode::kChat;
}

void expect_matches_reference(const ParsedMessage& m, const Json& v) {
  const std::string name = v["name"];
  if (v.contains("error")) {
    EXPECT_EQ(m.error, v["error"].get<std::string>()) << name;
    return;
  }
  const Json& r = v["result"];
  EXPECT_EQ(m.error, "") << name;
  EXPECT_TRUE(m.finished) << name;
  EXPECT_EQ(m.content, r["content"].get<std::string>()) << name;
  EXPECT_EQ(m.reasoning_content, r["reasoning_content"].get<std::string>()) << name;
  ASSERT_EQ(m.tool_calls.size(), r["tool_calls"].size()) << name;
  for (size_t k = 0; k < m.tool_calls.size(); ++k) {
    EXPECT_EQ(m.tool_calls[k].name, r["tool_calls"][k]["function"]["name"].get<std::string>()) << name;
    EXPECT_EQ(m.tool_calls[k].arguments, r["tool_calls"][k]["function"]["arguments"].get<std::string>()) << name;
  }
}

TEST(ChatParse, ReferenceVectors) {
  auto vectors = load_vectors("parse");
  ASSERT_GE(vectors.size(), 10u);
  for (const Json& v : vectors) expect_matches_reference(parse_completion(v["text"].get<std::string>(), mode_of(v)), v);
}

TEST(ChatParse, MalformedKeepsContent) {
  const std::string text = "ok\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\"";
  ParsedMessage m = parse_completion(text, ThinkingMode::kChat);
  EXPECT_FALSE(m.error.empty());
  EXPECT_EQ(m.content, text);
  EXPECT_TRUE(m.tool_calls.empty());
  EXPECT_FALSE(m.finished);
  ParsedMessage t = parse_completion("still thinking", ThinkingMode::kThinking);
  EXPECT_EQ(t.reasoning_content, "still thinking");
  EXPECT_EQ(t.error, "Invalid thinking format: missing </think>");
}

// Streams `text` in chunks of `chunk` bytes and checks the deltas against the one-shot parse.
void check_stream(const std::string& text, ThinkingMode mode, size_t chunk, const std::string& name) {
  CompletionStream stream(mode);
  std::vector<ChatDelta> deltas;
  for (size_t i = 0; i < text.size(); i += chunk) stream.push(std::string_view(text).substr(i, chunk), deltas);
  ParsedMessage final_parse = stream.finish(deltas);
  ParsedMessage batch = parse_completion(text, mode);
  std::string reasoning, content;
  std::vector<ToolCall> calls;
  for (const ChatDelta& d : deltas) {
    if (d.kind == ChatDelta::Kind::kReasoning) reasoning += d.text;
    if (d.kind == ChatDelta::Kind::kContent) content += d.text;
    if (d.kind == ChatDelta::Kind::kToolCall) calls.push_back(d.tool_call);
  }
  EXPECT_EQ(final_parse.content, batch.content) << name;
  EXPECT_EQ(reasoning, batch.reasoning_content) << name << " chunk " << chunk;
  EXPECT_EQ(content, batch.content) << name << " chunk " << chunk;
  ASSERT_EQ(calls.size(), batch.tool_calls.size()) << name;
  for (size_t k = 0; k < calls.size(); ++k) EXPECT_EQ(calls[k].arguments, batch.tool_calls[k].arguments) << name;
}

TEST(ChatParse, StreamingEqualsOneShot) {
  for (const Json& v : load_vectors("parse")) {
    const std::string text = v["text"];
    for (size_t chunk : {1, 2, 3, 5, 7, 16, 1000}) check_stream(text, mode_of(v), chunk, v["name"]);
  }
}

// A closing tag inside an attribute value: the reference parser rejects the block once the rest of the text
// is there; the stream must not emit a call from the partial text (found by the server's tests).
TEST(ChatParse, StreamingToolBlockWaitsForTheEnd) {
  const std::string text = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f</｜DSML｜tool_calls>\">\nrest";
  ParsedMessage batch = parse_completion(text, ThinkingMode::kChat);
  EXPECT_TRUE(batch.tool_calls.empty());
  EXPECT_FALSE(batch.error.empty());
  for (size_t chunk : {1u, 7u, 64u, 1000u}) check_stream(text, ThinkingMode::kChat, chunk, "closing tag in name");
}

// An EOS inside a parameter value is data to the reference parser, which then finds the closing tags after it
// (found by libFuzzer: the stream had parsed the block at that EOS, failed, and emitted it as content).
TEST(ChatParse, StreamingToolBlockWithEosInsideAValue) {
  const std::string text =
      "x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">\n"
      "<｜end▁of▁sentence｜></｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>";
  ParsedMessage batch = parse_completion(text, ThinkingMode::kChat);
  EXPECT_TRUE(batch.error.empty()) << batch.error;
  EXPECT_EQ(batch.tool_calls.size(), 1u);
  for (size_t chunk : {1u, 7u, 14u, 64u, 1000u}) check_stream(text, ThinkingMode::kChat, chunk, "EOS in a value");
}

TEST(ChatParse, StreamingEmitsEarly) {
  CompletionStream s(ThinkingMode::kThinking);
  std::vector<ChatDelta> out;
  s.push("abc</thi", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "abc");  // "</thi" is held back: it may be the start of </think>
  s.push("nk>Hi", out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].kind, ChatDelta::Kind::kContent);
  EXPECT_EQ(out[1].text, "Hi");
}

TEST(ChatEncoding, PromptTokensExistInV4Fixture) {
  DSV4_REQUIRE_DEEPSEEK_TOKENIZER();
  const Tokenizer* tok = deepseek_v4_fixture();
  ASSERT_NE(tok, nullptr);
  for (const Json& v : load_vectors("encode")) {
    for (const std::string& t : special_tokens_used(v["prompt"].get<std::string>())) {
      EXPECT_TRUE(tok->token_to_id(t).has_value()) << t;
    }
  }
  EXPECT_EQ(tok->token_to_id("<think>"), 128821);
  EXPECT_EQ(tok->token_to_id("｜DSML｜"), 128825);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_EQ(tok->vocab_size(), 129280);
  EXPECT_FALSE(tok->add_bos());
}

}  // namespace
}  // namespace dsv4::tokenizer::testing
