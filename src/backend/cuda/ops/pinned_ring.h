// PinnedRing: pinned host staging for the small per-call uploads of host plan data (positions, row-pointer
// lists, block lists, ids). cudaMemcpyAsync from pageable memory makes the driver stage the copy itself on
// every call; copying into pinned memory first and DMA-ing from there makes the call a plain async enqueue.
// Owns `n_segments` segments of `segment_bytes` pinned bytes, used in turn. A slot is handed out from the
// current segment; when it does not fit, the segment is closed (an event recorded on the stream after its
// copies) and the next one is reopened once its event from the previous round has completed, so a byte is
// never overwritten while a queued copy still reads it. Requests larger than a segment get nullptr (the
// caller copies from pageable memory). One stream; not thread-safe (the context serialises calls).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

namespace dsv4::cuda {

class PinnedRing {
 public:
  PinnedRing(size_t segment_bytes, int n_segments);
  ~PinnedRing();
  PinnedRing(const PinnedRing&) = delete;
  PinnedRing& operator=(const PinnedRing&) = delete;

  // A pinned slot of `bytes` (16-byte aligned) that no queued copy on `stream` still reads, or nullptr when
  // bytes > segment size. The caller fills it and enqueues its copy on `stream` before the next call.
  void* reserve(size_t bytes, cudaStream_t stream);
  size_t segment_bytes() const { return segment_bytes_; }

 private:
  size_t segment_bytes_;
  char* base_ = nullptr;
  std::vector<cudaEvent_t> done_;  // [n_segments]: recorded when a segment is closed
  int seg_ = 0;                    // current segment
  size_t used_ = 0;                // bytes used in it
};

}  // namespace dsv4::cuda
