// DeviceArena, PinnedStaging and PinnedRing; see graph_memory.h.
#include "backend/cuda/common/graph_memory.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/common/cuda_check.h"
#include "core/check.h"

namespace dsv4::cuda {
namespace {
size_t round_up(size_t b, size_t a) { return (b + a - 1) / a * a; }
}  // namespace

DeviceArena::~DeviceArena() {
  for (const MemChunk& c : chunks_) cudaFree(c.base);
}

void* DeviceArena::allocate(size_t bytes) {
  const size_t size = round_up(std::max<size_t>(bytes, 1), 256);
  auto fit = free_.find(size);
  if (fit != free_.end() && !fit->second.empty()) {
    void* p = fit->second.back();
    fit->second.pop_back();
    sizes_[p] = size;
    return p;
  }
  if (chunks_.empty() || chunks_.back().size - chunks_.back().used < size) {
    MemChunk c;
    c.size = std::max(kChunk, size);
    DSV4_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&c.base), c.size));
    chunks_.push_back(c);
  }
  MemChunk& c = chunks_.back();
  void* p = c.base + c.used;
  c.used += size;
  sizes_[p] = size;
  return p;
}

void DeviceArena::release(void* p) {
  auto it = sizes_.find(p);
  check(it != sizes_.end(), "graph arena: release of a block it does not own");
  free_[it->second].push_back(p);
  sizes_.erase(it);
}

PinnedStaging::~PinnedStaging() {
  for (const MemChunk& c : chunks_) cudaFreeHost(c.base);
}

void* PinnedStaging::stage(const void* src, size_t bytes) {
  const size_t size = round_up(std::max<size_t>(bytes, 1), 64);
  while (current_ < chunks_.size() && chunks_[current_].size - chunks_[current_].used < size) ++current_;
  if (current_ == chunks_.size()) {
    MemChunk c;
    c.size = std::max(kChunk, size);
    DSV4_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&c.base), c.size, cudaHostAllocDefault));
    chunks_.push_back(c);
  }
  MemChunk& c = chunks_[current_];
  unsigned char* p = c.base + c.used;
  c.used += size;
  std::memcpy(p, src, bytes);
  return p;
}

void PinnedStaging::reset() {
  for (MemChunk& c : chunks_) c.used = 0;
  current_ = 0;
}

PinnedRing::~PinnedRing() {
  for (int i = 0; i < kSlots; ++i) {
    if (events_[i]) cudaEventDestroy(events_[i]);
    if (chunks_[i].base) cudaFreeHost(chunks_[i].base);
  }
}

void* PinnedRing::stage(const void* src, size_t bytes) {
  const size_t size = round_up(std::max<size_t>(bytes, 1), 64);
  if (size > kChunk) return nullptr;
  if (chunks_[current_].base && kChunk - chunks_[current_].used < size) {
    current_ = (current_ + 1) % kSlots;
    // Every copy out of this chunk from its previous turn must have run before its bytes are overwritten.
    if (events_[current_]) DSV4_CUDA_CHECK(cudaEventSynchronize(events_[current_]));
    chunks_[current_].used = 0;
  }
  MemChunk& c = chunks_[current_];
  if (!c.base) {
    DSV4_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&c.base), kChunk, cudaHostAllocDefault));
    c.size = kChunk;
    c.used = 0;
  }
  unsigned char* p = c.base + c.used;
  c.used += size;
  std::memcpy(p, src, bytes);
  return p;
}

void PinnedRing::copied(cudaStream_t stream) {
  cudaEvent_t& ev = events_[current_];
  if (!ev) DSV4_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  DSV4_CUDA_CHECK(cudaEventRecord(ev, stream));
}

}  // namespace dsv4::cuda
