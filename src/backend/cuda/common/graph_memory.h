// Memory for graph capture (ops/step_graphs.h). A captured graph bakes every device address and every host
// source address of its copies into its nodes; replaying it, or updating it from the next step's capture, is
// cheap only when the next step's capture sees the same addresses. So while a step is captured:
//  - DeviceArena hands out device memory deterministically: the same sequence of allocate/release calls yields
//    the same addresses (per-size LIFO free lists over cudaMalloc chunks, bump allocation in the last chunk).
//    Memory that outlives the step (a cache grown inside it, the logits) simply stays allocated. Reuse of a
//    released block is safe because every user of the arena is ordered on the context's main stream, or on
//    its side branch, whose frees wait until the join (ops/context.h).
//  - PinnedStaging holds the host side of every upload: a captured copy reads its source when the graph runs,
//    so the bytes must stay in place until then; the staging is reset once the previous step's graphs ran.
// Written here rather than taken from the CUDA memory pool: the pool's addresses inside a capture become graph
// memory nodes, which graph updates cannot change, and its reuse order is not specified.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace dsv4::cuda {

struct MemChunk {  // a block of memory handed out from its start
  unsigned char* base = nullptr;
  size_t size = 0, used = 0;
};

class DeviceArena {
 public:
  DeviceArena() = default;
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
  void* allocate(size_t bytes);  // 256-byte aligned; grows by chunks of at least kChunk bytes
  bool owns(const void* p) const { return sizes_.count(p) != 0; }
  void release(void* p);         // p from allocate()
  static constexpr size_t kChunk = size_t{256} << 20;

 private:
  std::vector<MemChunk> chunks_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // rounded size -> released blocks (LIFO)
  std::unordered_map<const void*, size_t> sizes_;        // live blocks
};

class PinnedStaging {
 public:
  PinnedStaging() = default;
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;
  // A copy of bytes of src in pinned memory, valid until reset().
  void* stage(const void* src, size_t bytes);
  void reset();
  static constexpr size_t kChunk = size_t{16} << 20;

 private:
  std::vector<MemChunk> chunks_;
  size_t current_ = 0;
};

// PinnedRing: the host side of eager (not captured) uploads. A host-to-device copy from pageable memory makes the
// host wait until the stream reaches the copy once the bytes outgrow the driver's staging, so the host could not
// run ahead of the GPU (prefill: each layer's attention key lists, H200 run 98). Here the bytes are copied into
// kSlots pinned chunks used in turn; an event recorded after the copies out of a chunk is waited on only when the
// ring comes back to that chunk. Uploads larger than a chunk return nullptr (the caller copies them directly).
class PinnedRing {
 public:
  PinnedRing() = default;
  ~PinnedRing();
  PinnedRing(const PinnedRing&) = delete;
  PinnedRing& operator=(const PinnedRing&) = delete;
  // Pinned copy of src, to be copied on `stream` before the next call; then call copied(stream).
  void* stage(const void* src, size_t bytes);
  void copied(cudaStream_t stream);  // records the current chunk's event
  static constexpr size_t kChunk = size_t{16} << 20;
  static constexpr int kSlots = 4;

 private:
  MemChunk chunks_[kSlots];
  cudaEvent_t events_[kSlots] = {};  // after the last copy out of each chunk (null: none yet)
  int current_ = 0;
};

}  // namespace dsv4::cuda
