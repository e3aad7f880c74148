// HTTP/1.x request head and body framing (see request_parser.h).
#include "server/http/request_parser.h"

#include <algorithm>
#include <cctype>

namespace dsv4::server::http {
namespace {

constexpr size_t kMaxChunkLine = 4096;
constexpr size_t kMaxHeaders = 100;

bool is_tchar(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits off one line ending in "\n" (a preceding "\r" is dropped); false when no full line is present.
bool next_line(std::string_view buf, size_t& pos, std::string_view& line) {
  const size_t nl = buf.find('\n', pos);
  if (nl == std::string_view::npos) return false;
  line = buf.substr(pos, nl - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos = nl + 1;
  return true;
}

HeadResult fail(ApiErrorKind kind, std::string msg) {
  HeadResult r;
  r.state = HeadResult::State::kError;
  r.error = api_error(kind, std::move(msg));
  return r;
}

bool parse_request_line(std::string_view line, HttpRequest& out) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return false;
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || !std::all_of(method.begin(), method.end(), [](char c) { return is_tchar(c); })) return false;
  if (target.empty() || target.front() != '/') return false;
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
  out.method = method;
  out.target = target;
  out.path = target.substr(0, target.find('?'));
  out.minor_version = version.back() - '0';
  return true;
}

// Content-Length and Transfer-Encoding -> framing; errors for conflicting or malformed values.
HeadResult set_framing(const HttpLimits& limits, HttpRequest& out) {
  const std::string* te = nullptr;
  bool has_length = false;
  size_t length = 0;
  for (const auto& [name, value] : out.headers) {
    if (name == "transfer-encoding") {
      if (te != nullptr) return fail(ApiErrorKind::kBadHttp, "more than one Transfer-Encoding header");
      te = &value;
    } else if (name == "content-length") {
      if (value.empty() || value.size() > 19 || !std::all_of(value.begin(), value.end(), ::isdigit))
        return fail(ApiErrorKind::kBadHttp, "Content-Length '" + value + "' is not a number");
      const size_t v = std::stoull(value);
      if (has_length && v != length) return fail(ApiErrorKind::kBadHttp, "conflicting Content-Length headers");
      has_length = true;
      length = v;
    }
  }
  if (te != nullptr) {
    if (has_length) return fail(ApiErrorKind::kBadHttp, "both Content-Length and Transfer-Encoding");
    if (lower(*te) != "chunked") return fail(ApiErrorKind::kBadHttp, "unsupported Transfer-Encoding '" + *te + "'");
    out.framing = BodyFraming::kChunked;
  } else if (has_length) {
    if (length > limits.max_body_bytes)
      return fail(ApiErrorKind::kPayloadTooLarge, "request body of " + std::to_string(length) +
                                                      " bytes is over the limit of " +
                                                      std::to_string(limits.max_body_bytes) + " bytes");
    out.framing = length > 0 ? BodyFraming::kLength : BodyFraming::kNone;
    out.content_length = length;
  }
  return {};
}

}  // namespace

const std::string* HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

bool HttpRequest::keep_alive() const {
  const std::string* c = header("connection");
  const std::string v = c != nullptr ? lower(*c) : "";
  if (minor_version == 0) return v.find("keep-alive") != std::string::npos;
  return v.find("close") == std::string::npos;
}

bool HttpRequest::expects_continue() const {
  const std::string* e = header("expect");
  return e != nullptr && lower(*e) == "100-continue";
}

HeadResult parse_head(std::string_view buf, const HttpLimits& limits, HttpRequest& out) {
  size_t pos = 0;
  std::string_view line;
  // Empty lines before the request line are allowed (RFC 9112 §2.2).
  do {
    if (!next_line(buf, pos, line)) {
      if (buf.size() > limits.max_head_bytes) return fail(ApiErrorKind::kHeadersTooLarge, "request line too long");
      return {};
    }
  } while (line.empty() && pos <= 8);
  if (pos > limits.max_head_bytes) return fail(ApiErrorKind::kHeadersTooLarge, "request line too long");
  if (!parse_request_line(line, out)) return fail(ApiErrorKind::kBadHttp, "malformed HTTP request line");
  out.headers.clear();
  for (;;) {
    if (!next_line(buf, pos, line)) {
      if (buf.size() > limits.max_head_bytes) return fail(ApiErrorKind::kHeadersTooLarge, "request headers too large");
      return {};
    }
    if (pos > limits.max_head_bytes) return fail(ApiErrorKind::kHeadersTooLarge, "request headers too large");
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(ApiErrorKind::kBadHttp, "malformed header line");
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); }))
      return fail(ApiErrorKind::kBadHttp, "malformed header name");
    if (out.headers.size() >= kMaxHeaders) return fail(ApiErrorKind::kHeadersTooLarge, "too many headers");
    out.headers.emplace_back(lower(name), std::string(trim(line.substr(colon + 1))));
  }
  out.framing = BodyFraming::kNone;
  out.content_length = 0;
  HeadResult framing = set_framing(limits, out);
  if (framing.state == HeadResult::State::kError) return framing;
  HeadResult r;
  r.state = HeadResult::State::kComplete;
  r.head_bytes = pos;
  return r;
}

ChunkedDecoder::State ChunkedDecoder::line(std::string_view text, std::string& body) {
  if (phase_ == Phase::kDataEnd) {
    if (!text.empty()) return State::kError;
    phase_ = Phase::kSize;
    return State::kMore;
  }
  if (phase_ == Phase::kTrailer) {
    if (text.empty()) phase_ = Phase::kDone;
    return phase_ == Phase::kDone ? State::kDone : State::kMore;
  }
  std::string_view hex = trim(text.substr(0, text.find(';')));
  if (hex.empty() || hex.size() > 15) return State::kError;
  size_t size = 0;
  for (char c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return State::kError;
    size = size * 16 + static_cast<size_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10));
  }
  if (size > max_body_ || body.size() + size > max_body_) return State::kTooLarge;
  remaining_ = size;
  phase_ = size == 0 ? Phase::kTrailer : Phase::kData;
  return State::kMore;
}

ChunkedDecoder::State ChunkedDecoder::feed(std::string_view in, std::string& body, size_t& consumed) {
  size_t pos = 0;
  while (pos < in.size() && phase_ != Phase::kDone) {
    if (phase_ == Phase::kData) {
      const size_t n = std::min(remaining_, in.size() - pos);
      body.append(in.substr(pos, n));
      pos += n;
      remaining_ -= n;
      if (remaining_ == 0) phase_ = Phase::kDataEnd;
      continue;
    }
    const size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) {
      partial_.append(in.substr(pos));
      pos = in.size();
      if (partial_.size() > kMaxChunkLine) return State::kError;
      break;
    }
    partial_.append(in.substr(pos, nl - pos));
    pos = nl + 1;
    if (partial_.size() > kMaxChunkLine) return State::kError;
    std::string text = std::move(partial_);
    partial_.clear();
    if (!text.empty() && text.back() == '\r') text.pop_back();
    State s = line(text, body);
    if (s == State::kError || s == State::kTooLarge) {
      consumed = pos;
      return s;
    }
  }
  consumed = pos;
  return phase_ == Phase::kDone ? State::kDone : State::kMore;
}

HeadResult parse_request(std::string_view buf, const HttpLimits& limits, HttpRequest& out, size_t& consumed) {
  HeadResult head = parse_head(buf, limits, out);
  if (head.state != HeadResult::State::kComplete) return head;
  out.body.clear();
  const std::string_view rest = buf.substr(head.head_bytes);
  if (out.framing == BodyFraming::kLength) {
    if (rest.size() < out.content_length) return {};
    out.body.assign(rest.substr(0, out.content_length));
    consumed = head.head_bytes + out.content_length;
  } else if (out.framing == BodyFraming::kChunked) {
    ChunkedDecoder dec(limits.max_body_bytes);
    size_t used = 0;
    const ChunkedDecoder::State s = dec.feed(rest, out.body, used);
    if (s == ChunkedDecoder::State::kError) return fail(ApiErrorKind::kBadHttp, "malformed chunked body");
    if (s == ChunkedDecoder::State::kTooLarge) return fail(ApiErrorKind::kPayloadTooLarge, "request body over the limit");
    if (s == ChunkedDecoder::State::kMore) return {};
    consumed = head.head_bytes + used;
  } else {
    consumed = head.head_bytes;
  }
  return head;
}

}  // namespace dsv4::server::http
