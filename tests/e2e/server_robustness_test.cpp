// End-to-end robustness of `dsv4 serve`: a client that disconnects mid-stream cancels its request and the
// engine frees its KV pages (seen in /metrics); the wait queue answers 429 when full; garbage bytes, truncated
// requests and abrupt disconnects never crash or hang the server; a client that stops reading does not stall
// others; SIGTERM and SIGINT end the process with exit code 0 after the requests in flight are done.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "unit/server/server_process.h"

namespace dsv4 {
namespace {

using nlohmann::json;
using testing::http_request;
using testing::request_bytes;
using testing::ServerProcess;
using testing::sse_payloads;
using testing::TestConnection;
using namespace std::chrono_literals;

const std::string kLongStream =
    R"({"messages": [{"role": "user", "content": "tell me a story"}], "max_tokens": 100000, "ignore_eos": true, "stream": true})";

// Polls /metrics until `pred` holds or 10 s pass.
bool wait_metrics(const ServerProcess& s, const std::function<bool(std::map<std::string, double>&)>& pred) {
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end) {
    auto m = s.metrics();
    if (pred(m)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(ServerRobustness, DisconnectMidStreamFreesTheRequest) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  // One request first: the engine publishes its KV gauges after its first step.
  ASSERT_EQ(http_request(s.port(), "POST", "/v1/completions", R"({"prompt": "a", "max_tokens": 1})").status, 200);
  auto base = s.metrics();
  ASSERT_EQ(base["dsv4_kv_pages_used"], 0);
  ASSERT_GT(base["dsv4_kv_pages_free"], 0);
  for (int round = 0; round < 3; ++round) {
    {
      TestConnection c(s.port());
      ASSERT_TRUE(c.send(request_bytes("POST", "/v1/chat/completions", kLongStream)));
      std::string seen = c.read_until("\"content\":\" ", 30s);
      ASSERT_NE(seen.find("chat.completion.chunk"), std::string::npos) << seen.substr(0, 500);
      ASSERT_TRUE(wait_metrics(s, [](auto& m) { return m["dsv4_num_requests_running"] == 1 && m["dsv4_kv_pages_used"] > 0; }));
    }  // closes the connection mid-stream
    EXPECT_TRUE(wait_metrics(s, [&](auto& m) {
      return m["dsv4_num_requests_running"] == 0 && m["dsv4_kv_pages_used"] == 0 &&
             m["dsv4_kv_pages_free"] == base["dsv4_kv_pages_free"] && m["dsv4_server_inflight_requests"] == 0;
    })) << s.log();
  }
  EXPECT_EQ(s.metrics()["dsv4_request_finished_total{reason=\"cancelled\"}"], 3);
  EXPECT_NE(s.log().find("client-gone"), std::string::npos);
}

TEST(ServerRobustness, NonStreamingDisconnectAlsoCancels) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  {
    TestConnection c(s.port());
    json body = json::parse(kLongStream);
    body["stream"] = false;
    ASSERT_TRUE(c.send(request_bytes("POST", "/v1/chat/completions", body.dump())));
    ASSERT_TRUE(wait_metrics(s, [](auto& m) { return m["dsv4_num_requests_running"] == 1; }));
  }
  EXPECT_TRUE(wait_metrics(s, [](auto& m) { return m["dsv4_num_requests_running"] == 0 && m["dsv4_kv_pages_used"] == 0; }));
}

TEST(ServerRobustness, FullQueueAnswers429) {
  ServerProcess s({"--max-running", "1", "--max-queue", "1"});
  ASSERT_GT(s.port(), 0) << s.log();
  TestConnection a(s.port()), b(s.port());
  ASSERT_TRUE(a.send(request_bytes("POST", "/v1/chat/completions", kLongStream)));
  ASSERT_TRUE(b.send(request_bytes("POST", "/v1/chat/completions", kLongStream)));
  // One runs, one waits (the engine publishes its gauges after a step, so wait for them too).
  ASSERT_TRUE(wait_metrics(s, [](auto& m) {
    return m["dsv4_server_inflight_requests"] == 2 && m["dsv4_num_requests_running"] == 1 && m["dsv4_num_requests_waiting"] == 1;
  }));
  testing::HttpResponse r = http_request(s.port(), "POST", "/v1/chat/completions",
                                         R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(json::parse(r.body)["error"]["type"], "rate_limit_error");
  a.close();
  b.close();
  EXPECT_TRUE(wait_metrics(s, [](auto& m) { return m["dsv4_server_inflight_requests"] == 0; }));
  EXPECT_EQ(http_request(s.port(), "POST", "/v1/chat/completions",
                         R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})").status, 200);
}

TEST(ServerRobustness, GarbageNeverCrashesOrHangs) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  std::mt19937 rng(42);
  const std::vector<std::string> seeds = {
      request_bytes("POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})"),
      request_bytes("POST", "/v1/completions", R"({"prompt": [1, 2, 3], "max_tokens": 3, "stream": true})"),
      "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"pro\r\n0\r\n\r\n",
      "GET /metrics HTTP/1.1\r\n\r\n"};
  for (int i = 0; i < 200; ++i) {
    std::string msg = seeds[rng() % seeds.size()];
    const int mode = static_cast<int>(rng() % 4);
    if (mode == 0) {
      for (int k = 0; k < 4; ++k) msg[rng() % msg.size()] = static_cast<char>(rng());
    } else if (mode == 1) {
      msg.resize(rng() % msg.size());
    } else if (mode == 2) {
      msg.assign(rng() % 2000, '\0');
      for (char& ch : msg) ch = static_cast<char>(rng());
    }
    TestConnection c(s.port());
    c.send(msg);
    if (mode != 1 && rng() % 2) c.read_response(300ms);  // a truncated request would wait for the rest
  }
  EXPECT_EQ(http_request(s.port(), "GET", "/health").status, 200);
  EXPECT_TRUE(wait_metrics(s, [](auto& m) { return m["dsv4_server_inflight_requests"] == 0 && m["dsv4_kv_pages_used"] == 0; }));
  EXPECT_TRUE(s.alive());
}

TEST(ServerRobustness, AStalledReaderDoesNotStallOthers) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  TestConnection stalled(s.port(), 4096);  // never reads its stream; its window fills at once
  ASSERT_TRUE(stalled.send(request_bytes("POST", "/v1/completions",
                                         R"({"prompt": "a", "max_tokens": 100000, "ignore_eos": true, "stream": true, "logprobs": 20})")));
  ASSERT_TRUE(wait_metrics(s, [](auto& m) { return m["dsv4_num_requests_running"] == 1; }));
  std::this_thread::sleep_for(2s);  // the server's writes to it are blocked by now
  for (int i = 0; i < 4; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = http_request(s.port(), "POST", "/v1/completions", R"({"prompt": "b", "max_tokens": 16, "stream": true})");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(sse_payloads(r.body).back(), "[DONE]");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  }
  EXPECT_EQ(s.metrics()["dsv4_num_requests_running"], 1) << "the stalled request is still alive";
}

TEST(ServerRobustness, SigtermFinishesInFlightAndExitsZero) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  TestConnection c(s.port());
  ASSERT_TRUE(c.send(request_bytes("POST", "/v1/completions", R"({"prompt": "a", "max_tokens": 200, "ignore_eos": true, "stream": true})")));
  c.read_until("text_completion");
  ::kill(s.pid(), SIGTERM);
  testing::HttpResponse r = c.read_response(30s);
  EXPECT_EQ(r.status, 200);
  auto events = sse_payloads(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_NE(r.body.find("\"finish_reason\":\"length\""), std::string::npos) << "the request in flight ran to its end";
  EXPECT_EQ(s.wait_exit(30s), 0) << s.log();
}

TEST(ServerRobustness, SecondSignalCancelsAndExitsZero) {
  ServerProcess s({"--shutdown-timeout", "60"});
  ASSERT_GT(s.port(), 0) << s.log();
  TestConnection c(s.port());
  ASSERT_TRUE(c.send(request_bytes("POST", "/v1/chat/completions", kLongStream)));
  c.read_until("chat.completion.chunk");
  ::kill(s.pid(), SIGINT);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(http_request(s.port(), "GET", "/health").status, 0) << "the listener is closed";
  ::kill(s.pid(), SIGINT);
  testing::HttpResponse r = c.read_response(30s);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("service_unavailable"), std::string::npos) << "the cancelled stream ends with an error event";
  EXPECT_EQ(sse_payloads(r.body).back(), "[DONE]");
  EXPECT_EQ(s.wait_exit(30s), 0) << s.log();
}

TEST(ServerRobustness, IdleSigintExitsZero) {
  ServerProcess s;
  ASSERT_GT(s.port(), 0) << s.log();
  TestConnection idle(s.port());  // an idle keep-alive connection must not delay the exit
  ASSERT_TRUE(idle.send(request_bytes("GET", "/health", "")));
  EXPECT_EQ(idle.read_response().status, 200);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.stop(SIGINT), 0) << s.log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

}  // namespace
}  // namespace dsv4
