// Thread pool behind parallel_for. Workers sleep on a condition variable; a job is split into
// n_threads chunks and the caller thread runs one chunk itself.
#include "core/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "core/options.h"

namespace dsv4 {
namespace {

class Pool {
 public:
  explicit Pool(int n) : n_(std::max(1, n)) {
    for (int i = 1; i < n_; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return n_; }

  void run(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
    int64_t chunks = std::min<int64_t>(n_, std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
    if (chunks <= 1 || n_ == 1) {
      fn(0, n);
      return;
    }
    std::unique_lock job_lk(job_mu_);  // one job at a time
    {
      std::lock_guard lk(mu_);
      fn_ = &fn;
      n_items_ = n;
      n_chunks_ = chunks;
      pending_ = static_cast<int>(chunks) - 1;
      ++generation_;
    }
    cv_.notify_all();
    run_chunk(0);
    std::unique_lock lk(mu_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    fn_ = nullptr;
  }

 private:
  void run_chunk(int64_t c) {
    int64_t b = n_items_ * c / n_chunks_, e = n_items_ * (c + 1) / n_chunks_;
    if (b < e) (*fn_)(b, e);
  }
  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (id >= n_chunks_) continue;
      lk.unlock();
      run_chunk(id);
      lk.lock();
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex mu_, job_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_items_ = 0, n_chunks_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p(options().n_threads);
  return p;
}

thread_local bool in_parallel = false;

}  // namespace

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  if (in_parallel) {  // nested: run inline
    fn(0, n);
    return;
  }
  auto wrapped = [&](int64_t b, int64_t e) {
    in_parallel = true;
    fn(b, e);
    in_parallel = false;
  };
  pool().run(n, wrapped, grain);
}

int num_threads() { return pool().size(); }

}  // namespace dsv4
