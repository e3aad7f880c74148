// The closed error table (status, OpenAI type and code per kind, JSON shape) and the Prometheus rendering.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/metrics.h"

namespace dsv4::server {
namespace {

TEST(ApiError, StatusAndTypePerKind) {
  struct Row {
    ApiErrorKind kind;
    int status;
    const char* type;
  };
  const Row rows[] = {{ApiErrorKind::kInvalidJson, 400, "invalid_request_error"},
                      {ApiErrorKind::kInvalidType, 400, "invalid_request_error"},
                      {ApiErrorKind::kMissingField, 400, "invalid_request_error"},
                      {ApiErrorKind::kInvalidValue, 400, "invalid_request_error"},
                      {ApiErrorKind::kContextLengthExceeded, 400, "invalid_request_error"},
                      {ApiErrorKind::kUnsupported, 400, "invalid_request_error"},
                      {ApiErrorKind::kUnauthorized, 401, "authentication_error"},
                      {ApiErrorKind::kModelNotFound, 404, "invalid_request_error"},
                      {ApiErrorKind::kNotFound, 404, "not_found_error"},
                      {ApiErrorKind::kMethodNotAllowed, 405, "invalid_request_error"},
                      {ApiErrorKind::kRequestTimeout, 408, "invalid_request_error"},
                      {ApiErrorKind::kPayloadTooLarge, 413, "invalid_request_error"},
                      {ApiErrorKind::kTooManyRequests, 429, "rate_limit_error"},
                      {ApiErrorKind::kHeadersTooLarge, 431, "invalid_request_error"},
                      {ApiErrorKind::kBadHttp, 400, "invalid_request_error"},
                      {ApiErrorKind::kInternal, 500, "server_error"},
                      {ApiErrorKind::kUnavailable, 503, "server_error"}};
  for (const Row& r : rows) {
    EXPECT_EQ(http_status(r.kind), r.status);
    EXPECT_EQ(error_type(r.kind), r.type);
    EXPECT_FALSE(error_code(r.kind).empty());
  }
}

TEST(ApiError, BodyIsOpenAiShapedAndValidUtf8) {
  auto j = nlohmann::json::parse(error_body(api_error(ApiErrorKind::kInvalidValue, "bad \xff value", "top_p")));
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "top_p");
  EXPECT_EQ(j["error"]["code"], "invalid_value");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("bad"), std::string::npos);
  auto k = nlohmann::json::parse(error_body(api_error(ApiErrorKind::kNotFound, "x")));
  EXPECT_TRUE(k["error"]["param"].is_null());
}

TEST(Metrics, HistogramIsCumulative) {
  Histogram h({0.1, 1.0});
  for (double v : {0.05, 0.1, 0.5, 5.0}) h.observe(v);
  std::string out;
  h.render("x", out);
  EXPECT_NE(out.find("x_bucket{le=\"0.1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"1\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count 4\n"), std::string::npos) << out;
}

TEST(Metrics, RendersEveryFamily) {
  ServerMetrics m;
  m.on_http("/v1/completions", 200);
  m.on_http("/v1/completions", 200);
  m.on_http("other", 404);
  m.on_finished("stop", 10, 5);
  m.observe_ttft(0.02);
  m.observe_tpot(0.01);
  ServerGauges g;
  g.engine.kv_pages_used = 3;
  g.engine.kv_pages_free = 7;
  g.engine.running = 2;
  const std::string out = m.render(g);
  for (const char* want : {"dsv4_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2",
                           "dsv4_http_requests_total{endpoint=\"other\",status=\"404\"} 1",
                           "dsv4_request_finished_total{reason=\"stop\"} 1", "dsv4_prompt_tokens_total 10",
                           "dsv4_generation_tokens_total 5", "dsv4_time_to_first_token_seconds_count 1",
                           "dsv4_time_per_output_token_seconds_count 1", "dsv4_kv_pages_used 3", "dsv4_kv_pages_free 7",
                           "dsv4_num_requests_running 2", "dsv4_num_requests_waiting 0", "process_resident_memory_bytes",
                           "# TYPE dsv4_time_to_first_token_seconds histogram"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  }
  EXPECT_GT(resident_memory_bytes(), 0);
}

}  // namespace
}  // namespace dsv4::server
