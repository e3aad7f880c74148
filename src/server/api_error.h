// API errors of the HTTP server: a closed enum of everything a request can be refused for, each mapped to one
// HTTP status, one OpenAI error `type` and one `code`, and rendered as OpenAI-style error JSON:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature", "code": "invalid_value"}}
// ApiResult<T> carries either a value or an ApiError through request parsing and validation (no exceptions).
#pragma once
#include "core/result.h"
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dsv4::server {

enum class ApiErrorKind : uint8_t {
  kInvalidJson,            // 400: the body is not JSON, or not a JSON object
  kInvalidType,            // 400: a known field has the wrong JSON type
  kMissingField,           // 400: a required field is absent or null
  kInvalidValue,           // 400: a field's value is out of range or not allowed
  kContextLengthExceeded,  // 400: prompt (+ max_tokens) longer than the model's context
  kUnsupported,            // 400: a feature dsv4 does not implement (images, suffix, best_of > n)
  kUnauthorized,           // 401: missing or wrong API key
  kModelNotFound,          // 404: `model` names no served model
  kNotFound,               // 404: no such endpoint
  kMethodNotAllowed,       // 405: known endpoint, wrong method
  kRequestTimeout,         // 408: the request was not received in time
  kPayloadTooLarge,        // 413: body over the size limit
  kHeadersTooLarge,        // 431: request line + headers over the limit
  kTooManyRequests,        // 429: the wait queue is full
  kBadHttp,                // 400: malformed HTTP (request line, headers, chunked framing)
  kInternal,               // 500: the engine failed a request
  kUnavailable,            // 503: shutting down, or too many connections
};

struct ApiError {
  ApiErrorKind kind = ApiErrorKind::kInternal;
  std::string message;
  std::string param;  // the request field at fault ("" = none)
};

int http_status(ApiErrorKind kind);
std::string_view error_type(ApiErrorKind kind);  // OpenAI's `type`
std::string_view error_code(ApiErrorKind kind);  // OpenAI's `code`
// The JSON body {"error": {...}} for `e` (valid UTF-8 whatever the message holds).
std::string error_body(const ApiError& e);

inline ApiError api_error(ApiErrorKind kind, std::string message, std::string param = {}) {
  return ApiError{kind, std::move(message), std::move(param)};
}

template <typename T>
using ApiResult = Result<T, ApiError>;

struct Done {};
using ApiStatus = ApiResult<Done>;

}  // namespace dsv4::server

// ApiResult<...> propagates with the same macros as Result<...> (core/result.h).
#define DSV4_API_TRY(var, expr) DSV4_TRY(var, expr)
#define DSV4_API_TRY_STATUS(expr) DSV4_TRY_STATUS(expr)
