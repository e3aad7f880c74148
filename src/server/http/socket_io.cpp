// Socket I/O with deadlines (see socket_io.h).
#include "server/http/socket_io.h"

#include <algorithm>
#include <cerrno>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace dsv4::server::http {
namespace {

constexpr int kSliceMs = 100;  // how often a waiting thread looks at the stop flag

int slice_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, kSliceMs));
}

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() { reset(); }

int Fd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

IoStatus read_some(int fd, std::string& buf, Clock::time_point deadline, const std::atomic<bool>* stop) {
  for (;;) {
    if (stop != nullptr && stop->load()) return IoStatus::kStopped;
    if (Clock::now() >= deadline) return IoStatus::kTimeout;
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    const int r = ::poll(&p, 1, slice_ms(deadline));
    if (r < 0 && errno != EINTR) return IoStatus::kError;
    if (r <= 0) continue;
    char tmp[65536];
    const ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n > 0) {
      buf.append(tmp, static_cast<size_t>(n));
      return IoStatus::kOk;
    }
    if (n == 0) return IoStatus::kClosed;
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return IoStatus::kError;
  }
}

IoStatus write_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return IoStatus::kError;
    if (Clock::now() >= deadline) return IoStatus::kTimeout;
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    const int r = ::poll(&p, 1, slice_ms(deadline));
    if (r < 0 && errno != EINTR) return IoStatus::kError;
    if (r > 0 && (p.revents & (POLLERR | POLLHUP)) != 0) return IoStatus::kClosed;
  }
  return IoStatus::kOk;
}

bool peer_closed(int fd) {
  pollfd p{.fd = fd, .events = POLLIN | POLLRDHUP, .revents = 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if ((p.revents & (POLLERR | POLLHUP | POLLRDHUP)) != 0) return true;
  if ((p.revents & POLLIN) == 0) return false;
  char c;
  const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace dsv4::server::http
