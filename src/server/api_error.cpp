// The error table of the server (see api_error.h): status, OpenAI type and code per ApiErrorKind.
#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace dsv4::server {
namespace {

struct Row {
  int status;
  std::string_view type;
  std::string_view code;
};

Row row(ApiErrorKind kind) {
  switch (kind) {
    case ApiErrorKind::kInvalidJson: return {400, "invalid_request_error", "invalid_json"};
    case ApiErrorKind::kInvalidType: return {400, "invalid_request_error", "invalid_type"};
    case ApiErrorKind::kMissingField: return {400, "invalid_request_error", "missing_required_parameter"};
    case ApiErrorKind::kInvalidValue: return {400, "invalid_request_error", "invalid_value"};
    case ApiErrorKind::kContextLengthExceeded: return {400, "invalid_request_error", "context_length_exceeded"};
    case ApiErrorKind::kUnsupported: return {400, "invalid_request_error", "unsupported_parameter"};
    case ApiErrorKind::kUnauthorized: return {401, "authentication_error", "invalid_api_key"};
    case ApiErrorKind::kModelNotFound: return {404, "invalid_request_error", "model_not_found"};
    case ApiErrorKind::kNotFound: return {404, "not_found_error", "not_found"};
    case ApiErrorKind::kMethodNotAllowed: return {405, "invalid_request_error", "method_not_allowed"};
    case ApiErrorKind::kRequestTimeout: return {408, "invalid_request_error", "request_timeout"};
    case ApiErrorKind::kPayloadTooLarge: return {413, "invalid_request_error", "request_too_large"};
    case ApiErrorKind::kHeadersTooLarge: return {431, "invalid_request_error", "headers_too_large"};
    case ApiErrorKind::kTooManyRequests: return {429, "rate_limit_error", "too_many_requests"};
    case ApiErrorKind::kBadHttp: return {400, "invalid_request_error", "bad_http_request"};
    case ApiErrorKind::kInternal: return {500, "server_error", "internal_error"};
    case ApiErrorKind::kUnavailable: return {503, "server_error", "service_unavailable"};
  }
  return {500, "server_error", "internal_error"};
}

}  // namespace

int http_status(ApiErrorKind kind) { return row(kind).status; }
std::string_view error_type(ApiErrorKind kind) { return row(kind).type; }
std::string_view error_code(ApiErrorKind kind) { return row(kind).code; }

std::string error_body(const ApiError& e) {
  const Row r = row(e.kind);
  nlohmann::ordered_json j = {{"error",
                               {{"message", e.message},
                                {"type", r.type},
                                {"param", e.param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(e.param)},
                                {"code", r.code}}}};
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace dsv4::server
