// PinnedRing; see pinned_ring.h.
#include "backend/cuda/ops/pinned_ring.h"

#include "backend/cuda/common/cuda_check.h"

namespace dsv4::cuda {

PinnedRing::PinnedRing(size_t segment_bytes, int n_segments) : segment_bytes_(segment_bytes) {
  DSV4_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&base_), segment_bytes * static_cast<size_t>(n_segments),
                                cudaHostAllocDefault));
  done_.resize(static_cast<size_t>(n_segments));
  for (cudaEvent_t& e : done_) DSV4_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
}

PinnedRing::~PinnedRing() {
  for (cudaEvent_t e : done_) cudaEventDestroy(e);
  if (base_) cudaFreeHost(base_);
}

void* PinnedRing::reserve(size_t bytes, cudaStream_t stream) {
  bytes = (bytes + 15) & ~size_t{15};
  if (bytes > segment_bytes_) return nullptr;
  if (used_ + bytes > segment_bytes_) {
    // Close this segment after the copies queued from it; reopen the next once its last round's copies ran
    // (an event never recorded counts as complete).
    DSV4_CUDA_CHECK(cudaEventRecord(done_[static_cast<size_t>(seg_)], stream));
    seg_ = (seg_ + 1) % static_cast<int>(done_.size());
    DSV4_CUDA_CHECK(cudaEventSynchronize(done_[static_cast<size_t>(seg_)]));
    used_ = 0;
  }
  void* p = base_ + static_cast<size_t>(seg_) * segment_bytes_ + used_;
  used_ += bytes;
  return p;
}

}  // namespace dsv4::cuda
