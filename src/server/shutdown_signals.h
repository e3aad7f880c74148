// Clean shutdown on SIGINT / SIGTERM without async-signal handlers: the signals are blocked in every thread
// (block_shutdown_signals() must run before any thread starts, so all inherit the mask) and one watcher
// thread receives them with sigtimedwait() and calls an ordinary function. SIGPIPE is ignored: a client that
// disconnects makes a write fail, never kills the server.
#pragma once
#include <atomic>
#include <functional>
#include <thread>

namespace dsv4::server {

void block_shutdown_signals();

class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int)> on_signal);  // on_signal(signo) runs on the watcher thread
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace dsv4::server
