// End-to-end tests of `dsv4 serve` on the tiny golden model with the test tokenizer, over real HTTP:
// response shapes of every endpoint, streaming == non-streaming for the same seed (chat and completions,
// n > 1), SSE well-formedness, logprobs, the request-side tool-call round trip, and the error matrix (each
// case asserting status and error type).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "unit/server/server_process.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::http_request;
using testing::HttpResponse;
using testing::ServerProcess;
using testing::sse_payloads;

json post(const ServerProcess& s, const std::string& path, const json& body, int* status = nullptr) {
  HttpResponse r = http_request(s.port(), "POST", path, body.dump());
  if (status != nullptr) *status = r.status;
  return json::parse(r.body, nullptr, false);
}

// Parses an SSE body: every event is JSON except the final [DONE], which must be last.
std::vector<json> sse_events(const HttpResponse& r) {
  std::vector<json> out;
  std::vector<std::string> data = sse_payloads(r.body);
  EXPECT_FALSE(data.empty());
  if (data.empty()) return out;
  EXPECT_EQ(data.back(), "[DONE]");
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    json j = json::parse(data[i], nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << data[i];
    out.push_back(j);
  }
  return out;
}

struct StreamedChat {
  std::map<size_t, std::string> content;
  std::map<size_t, std::string> finish;
  json usage;
};

StreamedChat stream_chat(const ServerProcess& s, json body) {
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  HttpResponse r = http_request(s.port(), "POST", "/v1/chat/completions", body.dump());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  StreamedChat out;
  std::string id;
  for (const json& e : sse_events(r)) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    if (id.empty()) id = e["id"];
    EXPECT_EQ(e["id"], id);
    if (!e["usage"].is_null()) out.usage = e["usage"];
    for (const json& c : e["choices"]) {
      const size_t k = c["index"];
      EXPECT_TRUE(out.finish[k].empty()) << "a chunk after finish_reason";
      if (c["delta"].contains("content")) out.content[k] += c["delta"]["content"].get<std::string>();
      if (!c["finish_reason"].is_null()) out.finish[k] = c["finish_reason"];
    }
  }
  return out;
}

const json kHello = {{"role", "user"}, {"content", "Hello, what is the weather?"}};

TEST(ServerApi, ChatResponseShape) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  int status = 0;
  json r = post(s, "/v1/chat/completions", {{"model", "tiny-test"}, {"messages", {kHello}}, {"max_tokens", 8}, {"seed", 1}}, &status);
  ASSERT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["model"], "tiny-test");
  EXPECT_EQ(r["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(r["choices"].size(), 1u);
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(r["choices"][0]["message"]["content"].is_string());
  const std::string fr = r["choices"][0]["finish_reason"];
  EXPECT_TRUE(fr == "stop" || fr == "length") << fr;
  EXPECT_GT(r["usage"]["prompt_tokens"].get<int>(), 5);
  EXPECT_LE(r["usage"]["completion_tokens"].get<int>(), 8);
  EXPECT_EQ(r["usage"]["total_tokens"], r["usage"]["prompt_tokens"].get<int>() + r["usage"]["completion_tokens"].get<int>());
}

TEST(ServerApi, ChatStreamEqualsNonStreamForTheSameSeed) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  for (int seed : {1, 2, 3}) {
    json body = {{"messages", {kHello}}, {"max_tokens", 40}, {"seed", seed}, {"temperature", 1.0}, {"n", 2}};
    json whole = post(s, "/v1/chat/completions", body);
    StreamedChat st = stream_chat(s, body);
    ASSERT_EQ(whole["choices"].size(), 2u);
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(st.content[k], whole["choices"][k]["message"]["content"].get<std::string>()) << "seed " << seed << " choice " << k;
      EXPECT_EQ(st.finish[k], whole["choices"][k]["finish_reason"].get<std::string>());
    }
    EXPECT_EQ(st.usage, whole["usage"]);
    EXPECT_NE(whole["choices"][0]["message"]["content"], whole["choices"][1]["message"]["content"]) << "n choices differ";
  }
}

// Every token of this chat stream is forced (logit_bias) to open a DSML tool call, so after its first chunk the
// stream is silent until max_tokens (the parser holds the block). --sse-keepalive fills the silence with SSE
// comment lines; the events are the same with and without them, and equal the non-streamed answer.
TEST(ServerApi, SilentStreamGetsKeepAliveComments) {
  std::ifstream tf(fs::path(DSV4_TEST_DATA) / "server" / "tokenizer.json");
  const json vocab = json::parse(tf)["model"]["vocab"];
  ASSERT_TRUE(vocab.contains("\n\n<｜DSML｜tool_calls>\n"));
  const int open = vocab["\n\n<｜DSML｜tool_calls>\n"];
  json body = {{"messages", {kHello}}, {"max_tokens", 300}, {"ignore_eos", true}, {"seed", 1},
               {"logit_bias", {{std::to_string(open), 100}}}};
  std::string contents[2];
  size_t comments[2] = {0, 0};
  for (int with = 0; with < 2; ++with) {
    ServerProcess s({"--sse-keepalive", with ? "0.02" : "0"});
    ASSERT_GT(s.port(), 0) << s.log();
    json whole = post(s, "/v1/chat/completions", body);
    ASSERT_EQ(whole["choices"][0]["finish_reason"], "length") << whole.dump();
    json sbody = body;
    sbody["stream"] = true;
    HttpResponse r = http_request(s.port(), "POST", "/v1/chat/completions", sbody.dump());
    ASSERT_EQ(r.status, 200);
    for (size_t at = r.body.find(": keep-alive\n\n"); at != std::string::npos; at = r.body.find(": keep-alive\n\n", at + 1))
      ++comments[with];
    for (const json& e : sse_events(r)) {
      for (const json& c : e["choices"])
        if (c["delta"].contains("content")) contents[with] += c["delta"]["content"].get<std::string>();
    }
    EXPECT_EQ(contents[with], whole["choices"][0]["message"]["content"].get<std::string>());
    EXPECT_EQ(whole.dump().find("keep-alive"), std::string::npos);
  }
  EXPECT_EQ(comments[0], 0u) << "--sse-keepalive 0 sends none";
  EXPECT_GE(comments[1], 3u) << "300 silent tokens take far longer than 3 x 20 ms";
  EXPECT_EQ(contents[0], contents[1]);
}

// --enable-prefix-caching: a second request with the same long prompt reuses its cached pages (counted in
// /metrics) and answers exactly as a server without the cache does.
TEST(ServerApi, PrefixCachingReusesPagesAndKeepsTheAnswer) {
  std::string story;
  for (int i = 0; i < 30; ++i) story += "The weather in Paris is sunny today, and tomorrow it will rain. ";
  const json body = {{"messages", {{{"role", "user"}, {"content", story}}}}, {"max_tokens", 12}, {"seed", 5},
                     {"ignore_eos", true}};
  std::string plain;
  {
    ServerProcess s;
    ASSERT_GT(s.port(), 0) << s.log();
    json r = post(s, "/v1/chat/completions", body);
    ASSERT_GT(r["usage"]["prompt_tokens"].get<int>(), 300) << "the prompt must span a whole page";
    plain = r["choices"][0]["message"]["content"];
    EXPECT_EQ(s.metrics()["dsv4_prefix_cache_hit_tokens_total"], 0);
  }
  ServerProcess s({"--enable-prefix-caching"});
  ASSERT_GT(s.port(), 0) << s.log();
  for (int round = 0; round < 3; ++round) {
    json r = post(s, "/v1/chat/completions", body);
    EXPECT_EQ(r["choices"][0]["message"]["content"], plain) << "round " << round;
  }
  auto m = s.metrics();
  EXPECT_GE(m["dsv4_prefix_cache_hit_tokens_total"], 2 * 256);
  EXPECT_GE(m["dsv4_prefix_cache_pages"], 1);
  EXPECT_EQ(m["dsv4_kv_pages_used"], 0) << "cached pages count as free";
}

TEST(ServerApi, CompletionsStreamEqualsNonStreamWithLogprobsAndEcho) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  json body = {{"prompt", "The quick brown fox"}, {"max_tokens", 24}, {"seed", 7}, {"logprobs", 2}};
  json whole = post(s, "/v1/completions", body);
  ASSERT_EQ(whole["object"], "text_completion") << whole.dump();
  const json& lp = whole["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), whole["usage"]["completion_tokens"].get<size_t>());
  EXPECT_EQ(lp["token_logprobs"].size(), lp["tokens"].size());
  for (const json& top : lp["top_logprobs"]) EXPECT_LE(top.size(), 2u);
  for (const json& v : lp["token_logprobs"]) EXPECT_LE(v.get<double>(), 0.0);
  body["stream"] = true;
  HttpResponse r = http_request(s.port(), "POST", "/v1/completions", body.dump());
  std::string text;
  size_t n_tokens = 0;
  for (const json& e : sse_events(r)) {
    text += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["logprobs"].is_null()) n_tokens += e["choices"][0]["logprobs"]["tokens"].size();
  }
  EXPECT_EQ(text, whole["choices"][0]["text"].get<std::string>());
  EXPECT_EQ(n_tokens, lp["tokens"].size());
  json echo = post(s, "/v1/completions", {{"prompt", "The quick brown fox"}, {"max_tokens", 4}, {"seed", 7}, {"echo", true}});
  EXPECT_EQ(echo["choices"][0]["text"].get<std::string>().rfind("The quick brown fox", 0), 0u);
  json ids = post(s, "/v1/completions", {{"prompt", {10, 20, 30}}, {"max_tokens", 3}});
  EXPECT_EQ(ids["usage"]["prompt_tokens"], 3);
}

TEST(ServerApi, ChatLogprobs) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  json r = post(s, "/v1/chat/completions", {{"messages", {kHello}}, {"max_tokens", 6}, {"logprobs", true}, {"top_logprobs", 3}, {"seed", 5}});
  const json& content = r["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), r["usage"]["completion_tokens"].get<size_t>()) << r.dump();
  for (const json& t : content) {
    EXPECT_TRUE(t["token"].is_string());
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_TRUE(t["bytes"].is_array());
    EXPECT_EQ(t["top_logprobs"].size(), 3u);
  }
}

TEST(ServerApi, ToolCallRoundTripIsRenderedAndAccepted) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  const json tools = json::array({{{"type", "function"},
                                   {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}});
  const json messages = json::array(
      {kHello,
       {{"role", "assistant"}, {"content", nullptr},
        {"tool_calls", {{{"id", "call_9"}, {"type", "function"},
                         {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Paris\"}"}}}}}}},
       {{"role", "tool"}, {"tool_call_id", "call_9"}, {"content", "sunny"}}});
  json tok = post(s, "/tokenize", {{"messages", messages}, {"tools", tools}});
  const std::string text = tok["text"];
  EXPECT_NE(text.find("<｜DSML｜invoke name=\"get_weather\">"), std::string::npos) << text;
  EXPECT_NE(text.find("<tool_result>sunny</tool_result>"), std::string::npos) << text;
  EXPECT_EQ(tok["count"], tok["tokens"].size());
  int status = 0;
  json r = post(s, "/v1/chat/completions", {{"messages", messages}, {"tools", tools}, {"max_tokens", 4}}, &status);
  EXPECT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["usage"]["prompt_tokens"], tok["count"]);
  json detok = post(s, "/detokenize", {{"tokens", tok["tokens"]}});
  EXPECT_EQ(detok["prompt"], text);
}

TEST(ServerApi, ModelsHealthMetrics) {
  ServerProcess s({"--served-model-name", "tiny-a", "--served-model-name", "tiny-b"});
  ASSERT_GT(s.port(), 0) << s.log();
  json models = json::parse(http_request(s.port(), "GET", "/v1/models").body);
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][0]["id"], "tiny-a");
  EXPECT_EQ(http_request(s.port(), "GET", "/v1/models/tiny-b").status, 200);
  EXPECT_EQ(http_request(s.port(), "GET", "/health").status, 200);
  int status = 0;
  post(s, "/v1/chat/completions", {{"model", "tiny-b"}, {"messages", {kHello}}, {"max_tokens", 2}}, &status);
  EXPECT_EQ(status, 200);
  HttpResponse m = http_request(s.port(), "GET", "/metrics");
  EXPECT_EQ(m.headers["content-type"].rfind("text/plain", 0), 0u);
  auto mm = s.metrics();
  EXPECT_EQ(mm["dsv4_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}"], 1);
  EXPECT_EQ(mm["dsv4_time_to_first_token_seconds_count"], 1);
  EXPECT_GT(mm["dsv4_prompt_tokens_total"], 0);
  EXPECT_GT(mm["dsv4_kv_pages_free"], 0);
  EXPECT_GT(mm["process_resident_memory_bytes"], 0);
}

struct ErrorCase {
  std::string path;
  std::string body;
  int status;
  std::string type;
};

void expect_errors(const ServerProcess& s, const std::vector<ErrorCase>& cases, const std::string& headers = "") {
  for (const ErrorCase& c : cases) {
    HttpResponse r = http_request(s.port(), "POST", c.path, c.body, headers);
    EXPECT_EQ(r.status, c.status) << c.path << " " << c.body.substr(0, 200) << "\n" << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["type"], c.type) << c.body.substr(0, 200);
    EXPECT_TRUE(j["error"]["message"].is_string());
  }
}

TEST(ServerApi, ErrorMatrix) {
  ServerProcess s({"--max-model-len", "64", "--max-body", "4096"});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string chat = "/v1/chat/completions";
  const std::string user = R"("messages": [{"role": "user", "content": "hi"}])";
  const std::string ire = "invalid_request_error";
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "weather ";
  expect_errors(s, {
      {chat, "{not json", 400, ire},
      {chat, "[]", 400, ire},
      {chat, R"({"messages": "hi"})", 400, ire},
      {chat, R"({"messages": [{"role": "user", "content": 5}]})", 400, ire},
      {chat, R"({"max_tokens": 5})", 400, ire},
      {chat, R"({"messages": []})", 400, ire},
      {chat, R"({"messages": [{"role": "user", "content": ""}]})", 400, ire},
      {chat, "{" + user + R"(, "model": "gpt-4o"})", 404, ire},
      {chat, R"({"messages": [{"role": "user", "content": ")" + long_prompt + R"("}]})", 400, ire},
      {chat, "{" + user + R"(, "max_tokens": 60})", 400, ire},
      {chat, "{" + user + R"(, "max_tokens": 0})", 400, ire},
      {chat, "{" + user + R"(, "temperature": -1})", 400, ire},
      {chat, "{" + user + R"(, "top_p": 2})", 400, ire},
      {chat, "{" + user + R"(, "top_k": -5})", 400, ire},
      {chat, "{" + user + R"(, "presence_penalty": 9})", 400, ire},
      {chat, "{" + user + R"(, "n": 100})", 400, ire},
      {chat, "{" + user + R"(, "logprobs": true, "top_logprobs": 50})", 400, ire},
      {chat, "{" + user + R"(, "stream": 1})", 400, ire},
      {chat, "{" + user + ", \"pad\": \"" + std::string(5000, 'x') + "\"}", 413, ire},
      {"/v1/completions", R"({"prompt": [1, 2, 99999]})", 400, ire},
      {"/v1/completions", R"({"prompt": ")" + long_prompt + R"("})", 400, ire},
      {"/v1/nope", "{}", 404, "not_found_error"},
  });
  HttpResponse ctx = http_request(s.port(), "POST", chat, R"({"messages": [{"role": "user", "content": ")" + long_prompt + R"("}]})");
  EXPECT_NE(ctx.body.find("context_length_exceeded"), std::string::npos) << ctx.body;
  HttpResponse get = http_request(s.port(), "GET", chat);
  EXPECT_EQ(get.status, 405);
  int status = 0;
  post(s, chat, json::parse("{" + user + R"(, "max_tokens": 2, "unknown_field": {"x": [1]}, "user": "me"})"), &status);
  EXPECT_EQ(status, 200) << "unknown fields are ignored";
  EXPECT_TRUE(s.alive());
}

TEST(ServerApi, ApiKey) {
  ServerProcess s({"--api-key", "sekret"});
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string body = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})";
  expect_errors(s, {{"/v1/chat/completions", body, 401, "authentication_error"}});
  expect_errors(s, {{"/v1/chat/completions", body, 401, "authentication_error"}}, "Authorization: Bearer wrong\r\n");
  EXPECT_EQ(http_request(s.port(), "POST", "/v1/chat/completions", body, "Authorization: Bearer sekret\r\n").status, 200);
  EXPECT_EQ(http_request(s.port(), "GET", "/v1/models").status, 401);
  EXPECT_EQ(http_request(s.port(), "GET", "/health").status, 200);
  EXPECT_EQ(http_request(s.port(), "GET", "/metrics").status, 200);
}

std::string run_cli(const std::string& args, int& code) {
  std::string out;
  FILE* p = popen((std::string(DSV4_BINARY) + " " + args + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while (p != nullptr && (n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int st = p != nullptr ? pclose(p) : -1;
  code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST(ServerCli, HelpAndBindFailure) {
  int code = -1;
  const std::string help = run_cli("serve --help", code);
  EXPECT_EQ(code, 0);
  for (const char* flag : {"--host", "--port", "--api-key", "--served-model-name", "--max-model-len", "--kv-memory", "--max-queue"})
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string out = run_cli("serve -m " + testing::server_model_dir().string() + " --port " + std::to_string(s.port()), code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("cannot listen on 127.0.0.1:" + std::to_string(s.port())), std::string::npos) << out;
}

}  // namespace
}  // namespace dsv4
