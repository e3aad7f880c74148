// Listener and accept loop of the HTTP server (see http_server.h); connections are in connection.cpp.
#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>

#include "core/log.h"
#include "server/http/connection.h"

namespace dsv4::server::http {
namespace {

std::string peer_name(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions opts, Handler handler) : opts_(std::move(opts)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  stop();
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return n_open_ == 0; });
}

Status HttpServer::bind() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string where = opts_.host + ":" + std::to_string(opts_.port);
  const int rc = ::getaddrinfo(opts_.host.c_str(), std::to_string(opts_.port).c_str(), &hints, &res);
  if (rc != 0) return make_error("cannot resolve " + where + ": " + gai_strerror(rc));
  std::string why = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) continue;
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 1024) != 0) {
      why = std::strerror(errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    listener_ = std::move(fd);
    break;
  }
  ::freeaddrinfo(res);
  if (listener_.get() < 0) return make_error("cannot listen on " + where + ": " + why);
  return Ok{};
}

void HttpServer::serve() {
  while (!stop_.load() && listener_.get() >= 0) {
    pollfd p{.fd = listener_.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    Fd fd(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    {
      std::lock_guard lk(mu_);
      if (n_open_ >= opts_.max_connections) {
        reject_connection(std::move(fd));
        continue;
      }
      ++n_open_;
    }
    try {
      std::thread([this, f = std::move(fd), peer = peer_name(addr)]() mutable {
        run_connection(std::move(f), std::move(peer));
      }).detach();
    } catch (const std::system_error&) {
      std::lock_guard lk(mu_);
      --n_open_;
      cv_.notify_all();
    }
  }
  listener_.reset();
}

void HttpServer::run_connection(Fd fd, std::string peer) {
  {
    Connection c(std::move(fd), std::move(peer), opts_, handler_, stop_);
    c.run();
  }
  std::lock_guard lk(mu_);
  --n_open_;
  cv_.notify_all();
}

void HttpServer::reject_connection(Fd fd) {
  const std::string body = error_body(api_error(ApiErrorKind::kUnavailable, "too many open connections"));
  const std::string msg = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  write_all(fd.get(), msg, Clock::now() + std::chrono::milliseconds(200));
  log::warn("connection refused: " + std::to_string(opts_.max_connections) + " connections are open");
}

void HttpServer::stop() { stop_.store(true); }

int HttpServer::wait_connections(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return n_open_ == 0; });
  return n_open_;
}

int HttpServer::open_connections() const {
  std::lock_guard lk(mu_);
  return n_open_;
}

}  // namespace dsv4::server::http
