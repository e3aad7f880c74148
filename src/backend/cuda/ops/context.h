// CudaContext: the CUDA streams (main, and the side branch below), cuBLASLt handle and stream-ordered memory pool
// the CUDA backend runs on, and the DeviceMemory it registers for Device::Cuda tensors (core/tensor.h). Every op
// of CudaOps is queued on stream(); tensor copies to the host synchronize it. Temporary device arrays built from
// host plan data (positions, pointer lists, ids) come from upload(): allocated stream-ordered and freed
// stream-ordered when the returned handle dies, so a kernel queued before the handle's destruction still reads
// valid memory.
// While a graph is captured on the stream (ops/step_graphs.h), allocations come from a deterministic arena,
// uploads are staged in pinned memory that the captured copy reads when the graph runs, and frees of memory
// allocated outside the capture wait until the graph is launched (common/graph_memory.h).
// Branches (Ops::branch_*): between branch_fork() and branch_join() ops are queued on the main stream or, after
// branch_side(true), on a second stream that starts from the fork point; join makes the main stream wait for
// it. stream() is the current one. Every free requested between fork and join (arena blocks, pool memory) waits
// until the join, so no block one branch may still use is handed to the other. Under capture the fork and join
// events become graph edges: the branches are concurrent nodes of one graph.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/common/graph_memory.h"
#include "backend/cuda/gemm/plan.h"
#include "core/tensor.h"

namespace dsv4::cuda {

// A stream-ordered temporary device allocation (cudaMallocAsync / cudaFreeAsync on the context stream).
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(size_t bytes);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch(Scratch&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; o.bytes_ = 0; }
  Scratch& operator=(Scratch&& o) noexcept;
  void* data() const { return p_; }
  template <typename T>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// Empty when a CUDA device can be used; else why not (no device visible, driver missing or too old), without
// creating the context. For clear errors at the boundary (--device cuda on a machine without a GPU).
std::string cuda_device_problem();

class CudaContext {
 public:
  static CudaContext& get();  // created on first use (device 0); registers DeviceMemory for Device::Cuda
  cudaStream_t stream() const { return cur_; }  // the main stream, or the side branch's inside a fork
  // Branches (above). branch_fork() while forked joins first (a step that threw between fork and join).
  void branch_fork();
  void branch_side(bool on);
  void branch_mark();       // records the side branch's current end (no-op when not forked)
  void branch_wait_mark();  // the main stream waits for the last mark (no-op when not forked or no mark)
  void branch_join();
  bool forked() const { return forked_; }
  cublasLtHandle_t lt() const { return lt_.get(); }
  int sm_count() const { return sm_count_; }
  // Host data → a stream-ordered temporary on the device.
  template <typename T>
  Scratch upload(std::span<const T> host) {
    Scratch s(host.size_bytes());
    upload_bytes(s.data(), host.data(), host.size_bytes());
    return s;
  }
  // Enqueues the copy; the host buffer may be reused at once.
  void upload_bytes(void* dst, const void* src, size_t bytes);
  // A copy done when this returns, through a side stream: for new device memory no queued work uses yet
  // (weights and their derived forms built on first use), also while a graph is captured on stream().
  void upload_now(void* dst, const void* src, size_t bytes);
  cudaStream_t side_stream() const { return side_; }
  void sync_side();
  void download_bytes(void* dst, const void* src, size_t bytes);  // synchronizes the stream
  void sync();  // both streams; an error while a graph is captured
  int64_t free_bytes() const;  // cudaMemGetInfo's free device memory

  // Device memory of tensors and scratch: the stream-ordered pool, or the arena while capturing.
  void* alloc_device(size_t bytes);
  void free_device(void* p);
  // Stream-ordered device-to-device copy; synchronizes the stream unless a graph is captured.
  void copy_device(void* dst, const void* src, size_t bytes);

  // Graph capture of the stream (relaxed mode). end_capture returns the captured graph (the caller destroys
  // it) and the signature of its kernel launches; release_deferred() frees, stream-ordered, what was released
  // during the capture (call it after launching the graph); reset_staging() once the graphs that read the
  // staged uploads have run.
  void begin_capture();
  cudaGraph_t end_capture(uint64_t* signature);
  void abort_capture() noexcept;
  bool capturing() const { return capturing_; }
  void release_deferred();
  void reset_staging() { staging_.reset(); }

 private:
  CudaContext();
  void end_fork();  // after the main stream waits for the side branch: back on main, the deferred frees
  cudaStream_t stream_ = nullptr;  // main
  cudaStream_t branch_ = nullptr;  // the side branch between fork and join
  cudaStream_t cur_ = nullptr;     // where ops are queued now: stream_ or branch_
  cudaEvent_t fork_ev_ = nullptr, join_ev_ = nullptr, mark_ev_ = nullptr;
  bool forked_ = false, marked_ = false;
  std::vector<void*> branch_frees_;  // frees requested between fork and join
  cudaStream_t side_ = nullptr;
  CublasLt lt_;
  int sm_count_ = 0;
  bool capturing_ = false;
  DeviceArena arena_;
  PinnedStaging staging_;
  PinnedRing upload_ring_;  // eager uploads
  std::vector<void*> deferred_;  // pool memory released while capturing
};

}  // namespace dsv4::cuda
