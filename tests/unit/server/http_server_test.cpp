// The HTTP layer over real loopback sockets: keep-alive and pipelining, Expect: 100-continue, chunked request
// bodies, limits answered with JSON errors (413, 431, 408), streaming with client-gone detection, a reader
// that never reads does not stall others, the connection cap (503), and stop() closing idle connections.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "server/http/http_server.h"
#include "unit/server/http_test_client.h"

namespace dsv4::server::http {
namespace {

using dsv4::testing::http_request;
using dsv4::testing::request_bytes;
using dsv4::testing::TestConnection;
using namespace std::chrono_literals;

struct Fixture {
  explicit Fixture(HttpServerOptions o = {}, Handler h = nullptr) {
    o.port = 0;
    o.access_log = false;
    if (!h) {
      h = [](const HttpRequest& req, ResponseWriter& w) {
        w.send(200, "text/plain", req.method + " " + req.target + " " + req.body);
      };
    }
    server = std::make_unique<HttpServer>(o, h);
    EXPECT_TRUE(server->bind().ok());
    thread = std::thread([this] { server->serve(); });
  }
  ~Fixture() {
    server->stop();
    thread.join();
  }
  int port() const { return server->port(); }
  std::unique_ptr<HttpServer> server;
  std::thread thread;
};

TEST(HttpServer, KeepAliveAndPipelining) {
  Fixture f;
  TestConnection c(f.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(request_bytes("POST", "/a", "one") + request_bytes("POST", "/b", "two")));
  auto r1 = c.read_response();
  auto r2 = c.read_response();
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(r1.body, "POST /a one");
  EXPECT_EQ(r2.body, "POST /b two");
  EXPECT_EQ(r1.headers["connection"], "keep-alive");
  ASSERT_TRUE(c.send(request_bytes("GET", "/c", "")));
  EXPECT_EQ(c.read_response().body, "GET /c ");
}

TEST(HttpServer, ExpectContinueAndChunkedBody) {
  Fixture f;
  TestConnection c(f.port());
  ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_NE(c.read_until("\r\n\r\n").find("100 Continue"), std::string::npos);
  ASSERT_TRUE(c.send("hello"));
  EXPECT_EQ(c.read_response().body, "POST /x hello");
  ASSERT_TRUE(c.send("POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
  EXPECT_EQ(c.read_response().body, "POST /y abc");
}

TEST(HttpServer, LimitsAreJsonErrors) {
  HttpServerOptions o;
  o.limits = {.max_head_bytes = 1024, .max_body_bytes = 100};
  o.request_timeout = 300ms;
  Fixture f(o);
  auto big = http_request(f.port(), "POST", "/x", std::string(101, 'a'));
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("\"request_too_large\""), std::string::npos) << big.body;
  auto head = http_request(f.port(), "GET", "/" + std::string(2000, 'a'));
  EXPECT_EQ(head.status, 431);
  auto bad = http_request(f.port(), "GE T", "/x");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("invalid_request_error"), std::string::npos);
  TestConnection slow(f.port());
  ASSERT_TRUE(slow.send("POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  auto r = slow.read_response(5s);
  EXPECT_EQ(r.status, 408);
}

TEST(HttpServer, StreamingDetectsTheClientLeaving) {
  std::atomic<bool> saw_gone{false};
  Fixture f({}, [&](const HttpRequest&, ResponseWriter& w) {
    ASSERT_TRUE(w.begin_stream(200, "text/event-stream"));
    const auto end = Clock::now() + 10s;
    while (Clock::now() < end) {
      if (w.client_gone() || !w.write("data: x\n\n")) {
        saw_gone = true;
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
  });
  {
    TestConnection c(f.port());
    ASSERT_TRUE(c.send(request_bytes("GET", "/s", "")));
    c.read_until("data: x");
  }
  const auto end = Clock::now() + 5s;
  while (!saw_gone && Clock::now() < end) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(saw_gone);
}

TEST(HttpServer, AReaderThatNeverReadsDoesNotStallOthers) {
  HttpServerOptions o;
  o.write_timeout = 1s;
  Fixture f(o, [](const HttpRequest& req, ResponseWriter& w) {
    if (req.path == "/fast") return w.send(200, "text/plain", "ok");
    w.begin_stream(200, "application/octet-stream");
    const std::string block(1 << 20, 'z');
    for (int i = 0; i < 64 && w.write(block); ++i) {
    }
  });
  TestConnection stuck(f.port());
  ASSERT_TRUE(stuck.send(request_bytes("GET", "/flood", "")));
  std::this_thread::sleep_for(200ms);  // the flood fills the socket buffers and blocks its writer
  const auto t0 = Clock::now();
  auto r = http_request(f.port(), "GET", "/fast");
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST(HttpServer, ConnectionCapAnswers503) {
  HttpServerOptions o;
  o.max_connections = 2;
  Fixture f(o);
  TestConnection a(f.port()), b(f.port());
  ASSERT_TRUE(a.send(request_bytes("GET", "/a", "")));
  ASSERT_TRUE(b.send(request_bytes("GET", "/b", "")));
  EXPECT_EQ(a.read_response().status, 200);
  EXPECT_EQ(b.read_response().status, 200);
  auto c = http_request(f.port(), "GET", "/c");
  EXPECT_EQ(c.status, 503);
  EXPECT_NE(c.body.find("service_unavailable"), std::string::npos);
}

TEST(HttpServer, StopClosesIdleConnections) {
  Fixture f;
  TestConnection a(f.port());
  ASSERT_TRUE(a.send(request_bytes("GET", "/a", "")));
  EXPECT_EQ(a.read_response().status, 200);
  EXPECT_EQ(f.server->open_connections(), 1);
  f.server->stop();
  EXPECT_EQ(f.server->wait_connections(3s), 0);
}

TEST(HttpServer, Http10StreamIsCloseDelimited) {
  Fixture f({}, [](const HttpRequest&, ResponseWriter& w) {
    w.begin_stream(200, "text/plain");
    w.write("abc");
    w.write("def");
  });
  TestConnection c(f.port());
  ASSERT_TRUE(c.send("GET / HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "abcdef");
}

}  // namespace
}  // namespace dsv4::server::http
