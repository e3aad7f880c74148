// A connection's request loop and response writing (see connection.h).
#include "server/http/connection.h"

#include <cstdio>
#include <sys/socket.h>

#include "core/log.h"

namespace dsv4::server::http {
namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

}  // namespace

Connection::Connection(Fd fd, std::string peer, const HttpServerOptions& opts, const Handler& handler,
                       const std::atomic<bool>& stop)
    : fd_(std::move(fd)), peer_(std::move(peer)), opts_(opts), handler_(handler), stop_(stop) {}

void Connection::run() {
  for (;;) {
    HttpRequest req;
    ApiError error;
    status_ = 0;
    streaming_ = responded_ = false;
    bytes_out_ = 0;
    notes_.clear();
    const ReadOutcome got = read_request(req, error);
    if (got == ReadOutcome::kClosed) return;
    const auto t0 = Clock::now();
    last_write_ = t0;
    keep_alive_ = got == ReadOutcome::kRequest && req.keep_alive() && !stop_.load();
    http10_ = got == ReadOutcome::kRequest && req.minor_version == 0;
    if (got == ReadOutcome::kError) {
      keep_alive_ = false;
      send_error(error);
      log_request(req, t0);
      linger_close();
      return;
    }
    handler_(req, *this);
    if (!responded_) send_error(api_error(ApiErrorKind::kInternal, "the request produced no response"));
    if (streaming_) end_stream();
    log_request(req, t0);
    if (!keep_alive_ || broken_ || stop_.load()) return;
  }
}

Connection::ReadOutcome Connection::read_request(HttpRequest& req, ApiError& error) {
  Clock::time_point deadline = Clock::now() + opts_.keep_alive_timeout;
  bool started = !buf_.empty();
  if (started) deadline = Clock::now() + opts_.request_timeout;
  for (;;) {
    if (!buf_.empty()) {
      const HeadResult h = parse_head(buf_, opts_.limits, req);
      if (h.state == HeadResult::State::kError) {
        error = h.error;
        return ReadOutcome::kError;
      }
      if (h.state == HeadResult::State::kComplete) return read_body(req, h.head_bytes, deadline, error);
    }
    // The stop flag only interrupts a connection waiting for a new request, never one half received.
    const IoStatus s = read_some(fd_.get(), buf_, deadline, started ? nullptr : &stop_);
    if (s == IoStatus::kOk) {
      if (!started) deadline = Clock::now() + opts_.request_timeout;
      started = true;
      continue;
    }
    if (s == IoStatus::kTimeout && started) {
      error = api_error(ApiErrorKind::kRequestTimeout, "the request was not received within the time limit");
      return ReadOutcome::kError;
    }
    return ReadOutcome::kClosed;
  }
}

Connection::ReadOutcome Connection::read_body(HttpRequest& req, size_t head_bytes, Clock::time_point deadline,
                                              ApiError& error) {
  if (req.framing != BodyFraming::kNone && req.expects_continue() && buf_.size() == head_bytes) {
    if (!put("HTTP/1.1 100 Continue\r\n\r\n")) return ReadOutcome::kClosed;
  }
  buf_.erase(0, head_bytes);
  ChunkedDecoder chunked(opts_.limits.max_body_bytes);
  for (;;) {
    if (req.framing == BodyFraming::kNone) return ReadOutcome::kRequest;
    if (req.framing == BodyFraming::kLength && buf_.size() >= req.content_length) {
      req.body.assign(buf_, 0, req.content_length);
      buf_.erase(0, req.content_length);
      return ReadOutcome::kRequest;
    }
    if (req.framing == BodyFraming::kChunked) {
      size_t used = 0;
      const ChunkedDecoder::State s = chunked.feed(buf_, req.body, used);
      buf_.erase(0, used);
      if (s == ChunkedDecoder::State::kDone) return ReadOutcome::kRequest;
      if (s != ChunkedDecoder::State::kMore) {
        error = s == ChunkedDecoder::State::kTooLarge
                    ? api_error(ApiErrorKind::kPayloadTooLarge, "request body over the limit of " +
                                                                    std::to_string(opts_.limits.max_body_bytes) + " bytes")
                    : api_error(ApiErrorKind::kBadHttp, "malformed chunked request body");
        return ReadOutcome::kError;
      }
    }
    const IoStatus s = read_some(fd_.get(), buf_, deadline, nullptr);
    if (s == IoStatus::kTimeout) {
      error = api_error(ApiErrorKind::kRequestTimeout, "the request body was not received within the time limit");
      return ReadOutcome::kError;
    }
    if (s != IoStatus::kOk) return ReadOutcome::kClosed;
  }
}

std::string Connection::head(int status, std::string_view content_type) const {
  std::string h = std::string(http10_ ? "HTTP/1.0 " : "HTTP/1.1 ") + std::to_string(status) + " " +
                  reason_phrase(status) + "\r\nContent-Type: " + std::string(content_type) + "\r\n";
  if (keep_alive_) {
    h += "Connection: keep-alive\r\nKeep-Alive: timeout=" +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(opts_.keep_alive_timeout).count()) + "\r\n";
  } else {
    h += "Connection: close\r\n";
  }
  return h;
}

bool Connection::put(std::string_view data) {
  if (broken_) return false;
  if (write_all(fd_.get(), data, Clock::now() + opts_.write_timeout) != IoStatus::kOk) {
    broken_ = true;
    return false;
  }
  bytes_out_ += data.size();
  last_write_ = Clock::now();
  return true;
}

void Connection::send(int status, std::string_view content_type, std::string_view body) {
  if (responded_) return;
  responded_ = true;
  status_ = status;
  std::string msg = head(status, content_type) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  msg.append(body);
  put(msg);
}

bool Connection::begin_stream(int status, std::string_view content_type) {
  if (responded_) return false;
  responded_ = streaming_ = true;
  status_ = status;
  if (http10_) keep_alive_ = false;  // the body ends when the connection closes
  std::string msg = head(status, content_type) + "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";
  if (!http10_) msg += "Transfer-Encoding: chunked\r\n";
  msg += "\r\n";
  return put(msg);
}

bool Connection::write(std::string_view data) {
  if (!streaming_ || data.empty()) return streaming_ && !broken_;
  if (http10_) return put(data);
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string chunk(size);
  chunk.append(data);
  chunk += "\r\n";
  return put(chunk);
}

void Connection::end_stream() {
  if (!streaming_) return;
  streaming_ = false;
  if (!http10_) put("0\r\n\r\n");
}

bool Connection::client_gone() { return broken_ || peer_closed(fd_.get()); }

void Connection::annotate(std::string note) {
  if (!notes_.empty()) notes_ += ' ';
  notes_ += note;
}

void Connection::send_error(const ApiError& e) {
  send(http_status(e.kind), "application/json", error_body(e));
}

void Connection::linger_close() {
  // Let the client read the error before the connection resets: stop sending, drain what it still sends.
  ::shutdown(fd_.get(), SHUT_WR);
  std::string sink;
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  size_t drained = 0;
  while (drained < (size_t{64} << 20)) {
    sink.clear();
    if (read_some(fd_.get(), sink, deadline, nullptr) != IoStatus::kOk) break;
    drained += sink.size();
  }
}

void Connection::log_request(const HttpRequest& req, Clock::time_point t0) const {
  if (!opts_.access_log) return;
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  char took[32];
  std::snprintf(took, sizeof(took), "%.1fms", ms);
  std::string line = peer_ + " \"" + (req.method.empty() ? "-" : req.method + " " + req.target) + "\" " +
                     std::to_string(status_) + " " + std::to_string(bytes_out_) + "B " + took;
  if (broken_) line += " client-gone";
  if (!notes_.empty()) line += " " + notes_;
  log::info(line);
}

}  // namespace dsv4::server::http
