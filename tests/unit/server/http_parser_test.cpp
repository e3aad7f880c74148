// HTTP/1.x request parsing: request line and headers, framing by Content-Length and chunked coding, the
// limits (431 / 413), and refusal of ambiguous framing (request smuggling).
#include <gtest/gtest.h>

#include "server/http/request_parser.h"

namespace dsv4::server::http {
namespace {

HeadResult parse(const std::string& s, HttpRequest& req, size_t& used, HttpLimits lim = {}) {
  return parse_request(s, lim, req, used);
}

TEST(HttpParser, SimpleGetWithHeaders) {
  HttpRequest req;
  size_t used = 0;
  const std::string s = "GET /v1/models?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v  \r\n\r\n";
  HeadResult r = parse(s, req, used);
  ASSERT_EQ(r.state, HeadResult::State::kComplete);
  EXPECT_EQ(used, s.size());
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.path, "/v1/models");
  EXPECT_EQ(req.target, "/v1/models?x=1");
  ASSERT_NE(req.header("x-thing"), nullptr);
  EXPECT_EQ(*req.header("x-thing"), "v");
  EXPECT_TRUE(req.keep_alive());
}

TEST(HttpParser, IncompleteUntilTheBlankLineAndTheBody) {
  const std::string s = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t n = 0; n < s.size(); ++n) {
    HttpRequest req;
    size_t used = 0;
    EXPECT_EQ(parse(s.substr(0, n), req, used).state, HeadResult::State::kIncomplete) << n;
  }
  HttpRequest req;
  size_t used = 0;
  ASSERT_EQ(parse(s + "GET", req, used).state, HeadResult::State::kComplete);
  EXPECT_EQ(req.body, "hello");
  EXPECT_EQ(used, s.size());  // the pipelined next request is left alone
}

TEST(HttpParser, BareLineFeedsAndHttp10) {
  HttpRequest req;
  size_t used = 0;
  ASSERT_EQ(parse("GET / HTTP/1.0\nConnection: keep-alive\n\n", req, used).state, HeadResult::State::kComplete);
  EXPECT_EQ(req.minor_version, 0);
  EXPECT_TRUE(req.keep_alive());
  ASSERT_EQ(parse("GET / HTTP/1.0\n\n", req, used).state, HeadResult::State::kComplete);
  EXPECT_FALSE(req.keep_alive());
  ASSERT_EQ(parse("GET / HTTP/1.1\nConnection: close\n\n", req, used).state, HeadResult::State::kComplete);
  EXPECT_FALSE(req.keep_alive());
}

TEST(HttpParser, ChunkedBodyWithExtensionsAndTrailers) {
  HttpRequest req;
  size_t used = 0;
  const std::string s = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\n";
  ASSERT_EQ(parse(s, req, used).state, HeadResult::State::kComplete);
  EXPECT_EQ(req.body, "hello world");
  EXPECT_EQ(used, s.size());
}

TEST(HttpParser, ChunkedDecoderIsIncremental) {
  const std::string body = "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n";
  for (size_t split = 0; split <= body.size(); ++split) {
    ChunkedDecoder dec(100);
    std::string out;
    size_t used = 0;
    ChunkedDecoder::State s = dec.feed(std::string_view(body).substr(0, split), out, used);
    EXPECT_EQ(used, split);
    if (split < body.size()) {
      ASSERT_EQ(s, ChunkedDecoder::State::kMore) << split;
      s = dec.feed(std::string_view(body).substr(split), out, used);
    }
    EXPECT_EQ(s, ChunkedDecoder::State::kDone) << split;
    EXPECT_EQ(out, "abcdefg");
  }
}

TEST(HttpParser, MalformedRequestsAreBadHttp) {
  for (const std::string s : {"GET\r\n\r\n", "GET /x\r\n\r\n", "GET x HTTP/1.1\r\n\r\n", "GET /x HTTP/2.0\r\n\r\n",
                              "GET /x HTTP/1.1\r\nNoColon\r\n\r\n", "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",
                              "GET /x HTTP/1.1\r\n: v\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n",
                              "POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                              "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                              "POST /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                              "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                              "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    HttpRequest req;
    size_t used = 0;
    HeadResult r = parse(s, req, used);
    ASSERT_EQ(r.state, HeadResult::State::kError) << s;
    EXPECT_EQ(r.error.kind, ApiErrorKind::kBadHttp) << s;
    EXPECT_EQ(http_status(r.error.kind), 400);
  }
}

TEST(HttpParser, LimitsGive431And413) {
  HttpLimits lim{.max_head_bytes = 64, .max_body_bytes = 10};
  HttpRequest req;
  size_t used = 0;
  HeadResult r = parse("GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n", req, used, lim);
  ASSERT_EQ(r.state, HeadResult::State::kError);
  EXPECT_EQ(http_status(r.error.kind), 431);
  r = parse("GET / HTTP/1.1\r\nX: " + std::string(100, 'a'), req, used, lim);  // no line end yet
  ASSERT_EQ(r.state, HeadResult::State::kError);
  EXPECT_EQ(http_status(r.error.kind), 431);
  r = parse("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", req, used, lim);
  ASSERT_EQ(r.state, HeadResult::State::kError);
  EXPECT_EQ(http_status(r.error.kind), 413);
  r = parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n", req, used, lim);
  ASSERT_EQ(r.state, HeadResult::State::kError);
  EXPECT_EQ(http_status(r.error.kind), 413);
}

}  // namespace
}  // namespace dsv4::server::http
