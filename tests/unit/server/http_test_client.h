// A minimal blocking HTTP/1.1 client over loopback TCP for the server tests (unit and e2e): raw bytes out,
// responses parsed back (Content-Length, chunked, or until close), and SSE "data:" payloads split out.
// Header-only; included as "unit/server/http_test_client.h".
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace dsv4::testing {

struct HttpResponse {
  int status = 0;  // 0: no (complete) response
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;  // de-chunked
};

class TestConnection {
 public:
  // `rcvbuf` > 0 shrinks the receive buffer (a reader whose window fills quickly).
  explicit TestConnection(int port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) close();
  }
  ~TestConnection() { close(); }
  TestConnection(const TestConnection&) = delete;
  TestConnection& operator=(const TestConnection&) = delete;
  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(std::string_view data) {
    while (!data.empty() && fd_ >= 0) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return fd_ >= 0;
  }
  // Reads more bytes into the buffer; false on close, error or timeout.
  bool fill(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (fd_ < 0 || ::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char tmp[65536];
    const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  // Reads until `needle` is in the buffer (or timeout); returns the buffer so far.
  const std::string& read_until(std::string_view needle, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (buf_.find(needle) == std::string::npos && std::chrono::steady_clock::now() < end) {
      if (!fill(std::chrono::milliseconds(100)) && eof_) break;
    }
    return buf_;
  }
  // One complete response (the bytes after it stay buffered for the next call).
  HttpResponse read_response(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      HttpResponse r;
      size_t used = 0;
      if (parse(r, used)) {
        buf_.erase(0, used);
        return r;
      }
      if (std::chrono::steady_clock::now() >= end) return {};
      if (!fill(std::chrono::milliseconds(100)) && eof_) {
        if (parse(r, used, /*at_eof=*/true)) {
          buf_.erase(0, used);
          return r;
        }
        return {};
      }
    }
  }
  std::string& buffer() { return buf_; }
  int fd() const { return fd_; }

 private:
  bool parse(HttpResponse& r, size_t& used, bool at_eof = false) {
    size_t head_end = buf_.find("\r\n\r\n");
    if (head_end != std::string::npos && buf_.rfind("HTTP/1.1 100", 0) == 0) {  // interim response: skip it
      buf_.erase(0, head_end + 4);
      head_end = buf_.find("\r\n\r\n");
    }
    if (head_end == std::string::npos) return false;
    const std::string head = buf_.substr(0, head_end);
    r.status = std::atoi(head.substr(9, 3).c_str());
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
      const size_t next = head.find("\r\n", pos + 2);
      const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      }
      pos = next;
    }
    size_t body = head_end + 4;
    if (r.headers.count("content-length")) {
      const size_t n = std::stoul(r.headers["content-length"]);
      if (buf_.size() < body + n) return false;
      r.body = buf_.substr(body, n);
      used = body + n;
      return true;
    }
    if (r.headers.count("transfer-encoding")) {
      for (;;) {
        const size_t nl = buf_.find("\r\n", body);
        if (nl == std::string::npos) return false;
        const size_t n = std::stoul(buf_.substr(body, nl - body), nullptr, 16);
        if (buf_.size() < nl + 2 + n + 2) return false;
        if (n == 0) {
          used = nl + 4;
          return true;
        }
        r.body += buf_.substr(nl + 2, n);
        body = nl + 2 + n + 2;
      }
    }
    if (!at_eof) return false;
    r.body = buf_.substr(body);
    used = buf_.size();
    return true;
  }

  int fd_ = -1;
  bool eof_ = false;
  std::string buf_;
};

inline std::string request_bytes(const std::string& method, const std::string& path, const std::string& body,
                                 const std::string& extra_headers = "") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (!body.empty() || method == "POST") r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

// One request on a fresh connection.
inline HttpResponse http_request(int port, const std::string& method, const std::string& path, const std::string& body = "",
                                 const std::string& extra_headers = "") {
  TestConnection c(port);
  if (!c.connected() || !c.send(request_bytes(method, path, body, extra_headers))) return {};
  return c.read_response();
}

// The payloads of the "data: " lines of an SSE body, in order.
inline std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string::npos) nl = body.size();
    const std::string line = body.substr(pos, nl - pos);
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
    pos = nl + 1;
  }
  return out;
}

}  // namespace dsv4::testing
