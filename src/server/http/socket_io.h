// Blocking-socket I/O with deadlines, for the connection threads of the HTTP server: every wait is a poll()
// in short slices so that a stop flag is noticed, writes never raise SIGPIPE (MSG_NOSIGNAL), and a peer that
// closed its end is detected without reading its data (peer_closed).
#pragma once
#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

namespace dsv4::server::http {

using Clock = std::chrono::steady_clock;

enum class IoStatus { kOk, kClosed, kTimeout, kError, kStopped };

// Owns a file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  int release();
  void reset();

 private:
  int fd_ = -1;
};

// Appends what is available (up to 64 KiB) to `buf`, waiting until `deadline`; kStopped when *stop becomes
// true while nothing has arrived.
IoStatus read_some(int fd, std::string& buf, Clock::time_point deadline, const std::atomic<bool>* stop);
// Writes all of `data`; kTimeout when the peer does not drain it by `deadline` (a reader that stopped reading).
IoStatus write_all(int fd, std::string_view data, Clock::time_point deadline);
// True when the peer has closed or reset the connection (data it sent and we have not read does not count).
bool peer_closed(int fd);

}  // namespace dsv4::server::http
