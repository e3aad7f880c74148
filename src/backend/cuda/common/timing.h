// Streams, events and kernel timing for the CUDA backend (docs/perf.md method: device events, warm-up, median
// of many samples). Stream and Event are move-only RAII wrappers. time_on_stream() measures a callable that
// only enqueues work on the given stream: it warms up, picks how many calls one sample brackets so a sample
// lasts at least min_sample_ms (event resolution is about half a microsecond), and returns the median and
// minimum per-call time over `samples` samples.
#pragma once
#include <cuda_runtime_api.h>

#include <functional>

namespace dsv4::cuda {

class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream) const;
  // Milliseconds from `start` to this event; both must have completed.
  float elapsed_ms_since(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

struct TimingOptions {
  int warmup = 3;             // untimed calls first (module load, cuBLASLt kernel selection, caches)
  int samples = 15;           // timed samples; the median is reported
  double min_sample_ms = 0.2; // each sample brackets enough calls to last at least this long
  int max_calls_per_sample = 1000;
};

struct Timing {
  double median_ms = 0;  // per call
  double min_ms = 0;     // per call
  int calls_per_sample = 1;
  int samples = 0;
};

// `enqueue(i)` enqueues the i-th call (i counts every call, warm-up included, so callers can rotate inputs).
Timing time_on_stream(cudaStream_t stream, const std::function<void(int)>& enqueue,
                      const TimingOptions& opt = {});

}  // namespace dsv4::cuda
