// Memory for graph capture (ops/step_graphs.h). A captured graph bakes every device address and every host
// source address of its copies into its nodes; replaying it, or updating it from the next step's capture, is
// cheap only when the next step's capture sees the same addresses. So while a step is captured:
//  - DeviceArena hands out device memory deterministically: the same sequence of allocate/release calls yields
//    the same addresses (per-size LIFO free lists over cudaMalloc chunks, bump allocation in the last chunk).
//    Memory that outlives the step (a cache grown inside it, the logits) simply stays allocated. Reuse of a
//    released block is safe because every user of the arena is ordered on the one context stream.
//  - PinnedStaging holds the host side of every upload: a captured copy reads its source when the graph runs,
//    so the bytes must stay in place until then; the staging is reset once the previous step's graphs ran.
// Written here rather than taken from the CUDA memory pool: the pool's addresses inside a capture become graph
// memory nodes, which graph updates cannot change, and its reuse order is not specified.
#pragma once
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

}  // namespace dsv4::cuda
