// Stream/Event wrappers and the median-of-samples timer.
#include "backend/cuda/common/timing.h"

#include <algorithm>
#include <vector>

#include "backend/cuda/common/cuda_check.h"

namespace dsv4::cuda {

Stream::Stream() { DSV4_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);
}
void Stream::synchronize() const { DSV4_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

Event::Event() { DSV4_CUDA_CHECK(cudaEventCreate(&event_)); }
Event::~Event() {
  if (event_) cudaEventDestroy(event_);
}
void Event::record(cudaStream_t stream) const { DSV4_CUDA_CHECK(cudaEventRecord(event_, stream)); }
float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0;
  DSV4_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

Timing time_on_stream(cudaStream_t stream, const std::function<void(int)>& enqueue, const TimingOptions& opt) {
  int call = 0;
  for (int i = 0; i < opt.warmup; ++i) enqueue(call++);
  Event start, stop;
  // One bracketed call estimates the cost, which sets how many calls a sample needs.
  start.record(stream);
  enqueue(call++);
  stop.record(stream);
  DSV4_CUDA_CHECK(cudaEventSynchronize(stop.get()));
  const double one_ms = std::max(1e-4, static_cast<double>(stop.elapsed_ms_since(start)));
  const int per_sample =
      std::clamp(static_cast<int>(opt.min_sample_ms / one_ms) + 1, 1, opt.max_calls_per_sample);
  std::vector<double> per_call;
  per_call.reserve(static_cast<size_t>(opt.samples));
  for (int s = 0; s < opt.samples; ++s) {
    start.record(stream);
    for (int i = 0; i < per_sample; ++i) enqueue(call++);
    stop.record(stream);
    DSV4_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    per_call.push_back(static_cast<double>(stop.elapsed_ms_since(start)) / per_sample);
  }
  std::sort(per_call.begin(), per_call.end());
  Timing t;
  t.samples = opt.samples;
  t.calls_per_sample = per_sample;
  t.min_ms = per_call.front();
  t.median_ms = per_call[per_call.size() / 2];
  return t;
}

}  // namespace dsv4::cuda
