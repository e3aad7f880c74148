// HTTP/1.x request parsing, independent of sockets so it can be fuzzed: the request head (request line and
// headers, CRLF or bare LF line ends) and the body framing (Content-Length, or chunked transfer coding via
// ChunkedDecoder). Limits are enforced while parsing: a head over max_head_bytes is kHeadersTooLarge, a body
// over max_body_bytes (declared or decoded) is kPayloadTooLarge, anything malformed is kBadHttp. Header names
// are lower-cased; values are trimmed. Message bodies with both Content-Length and Transfer-Encoding, or a
// transfer coding other than chunked, are refused (request smuggling).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/api_error.h"

namespace dsv4::server::http {

struct HttpLimits {
  size_t max_head_bytes = 64 * 1024;
  size_t max_body_bytes = 8 * 1024 * 1024;
};

enum class BodyFraming { kNone, kLength, kChunked };

struct HttpRequest {
  std::string method;     // "GET", "POST", ...
  std::string target;     // as sent: path and query
  std::string path;       // target up to '?'
  int minor_version = 1;  // HTTP/1.<minor_version>
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names, trimmed values
  BodyFraming framing = BodyFraming::kNone;
  size_t content_length = 0;  // kLength
  std::string body;

  const std::string* header(std::string_view lower_name) const;
  bool keep_alive() const;        // HTTP/1.1 unless "Connection: close"; 1.0 only with "keep-alive"
  bool expects_continue() const;  // "Expect: 100-continue"
};

struct HeadResult {
  enum class State { kIncomplete, kComplete, kError };
  State state = State::kIncomplete;
  size_t head_bytes = 0;  // kComplete: bytes of the head including the blank line
  ApiError error;         // kError
};

// Parses the head at the start of `buf` into `out` (fields other than body).
HeadResult parse_head(std::string_view buf, const HttpLimits& limits, HttpRequest& out);

// Incremental decoder of a chunked body (RFC 9112 §7.1): chunk extensions and trailers are skipped.
class ChunkedDecoder {
 public:
  enum class State { kMore, kDone, kError, kTooLarge };
  explicit ChunkedDecoder(size_t max_body) : max_body_(max_body) {}
  // Consumes bytes of `in` (sets `consumed`), appending data to `body`; kDone after the last chunk's trailers.
  State feed(std::string_view in, std::string& body, size_t& consumed);

 private:
  enum class Phase { kSize, kData, kDataEnd, kTrailer, kDone };
  State line(std::string_view text, std::string& body);
  Phase phase_ = Phase::kSize;
  size_t remaining_ = 0;   // kData: bytes of the current chunk still to copy
  size_t max_body_;
  std::string partial_;    // an incomplete line carried between feeds
};

// One whole request from `buf` (head and body), for tests and the fuzzer. kIncomplete when more is needed;
// `consumed` is the request's size in bytes when kComplete.
HeadResult parse_request(std::string_view buf, const HttpLimits& limits, HttpRequest& out, size_t& consumed);

}  // namespace dsv4::server::http
