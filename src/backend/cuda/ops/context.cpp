// CudaContext; see context.h.
#include "backend/cuda/ops/context.h"

#include <cstdint>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/common/launch_trace.h"
#include "core/check.h"

namespace dsv4::cuda {
void fill_f32(float* dst, float value, int64_t n, cudaStream_t stream);  // fill.cu

namespace {
class CudaMemory final : public DeviceMemory {
 public:
  void* allocate(size_t bytes) override { return CudaContext::get().alloc_device(bytes); }
  void release(void* p) override { CudaContext::get().free_device(p); }
  void copy(void* dst, const void* src, size_t bytes) override { CudaContext::get().copy_device(dst, src, bytes); }
  void fill(float* dst, float value, int64_t n) override { fill_f32(dst, value, n, CudaContext::get().stream()); }
};
}  // namespace

Scratch::Scratch(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) p_ = CudaContext::get().alloc_device(bytes);
}

Scratch::~Scratch() {
  if (p_) CudaContext::get().free_device(p_);
}

Scratch& Scratch::operator=(Scratch&& o) noexcept {
  if (this != &o) {
    if (p_) CudaContext::get().free_device(p_);
    p_ = o.p_;
    bytes_ = o.bytes_;
    o.p_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

std::string cuda_device_problem() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    return std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")";
  if (n == 0) return "no CUDA device is visible";
  return {};
}

CudaContext& CudaContext::get() {
  static CudaContext* ctx = new CudaContext();  // never destroyed: outlives every tensor
  return *ctx;
}

CudaContext::CudaContext() {
  DSV4_CUDA_CHECK(cudaSetDevice(0));
  DSV4_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  DSV4_CUDA_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
  DSV4_CUDA_CHECK(cudaStreamCreateWithFlags(&branch_, cudaStreamNonBlocking));
  DSV4_CUDA_CHECK(cudaEventCreateWithFlags(&fork_ev_, cudaEventDisableTiming));
  DSV4_CUDA_CHECK(cudaEventCreateWithFlags(&join_ev_, cudaEventDisableTiming));
  DSV4_CUDA_CHECK(cudaEventCreateWithFlags(&mark_ev_, cudaEventDisableTiming));
  cur_ = stream_;
  cudaMemPool_t pool;
  DSV4_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, 0));
  uint64_t threshold = UINT64_MAX;  // keep freed blocks cached: ops allocate per call
  DSV4_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  cudaDeviceProp prop{};
  DSV4_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  sm_count_ = prop.multiProcessorCount;
  static CudaMemory memory;
  register_device_memory(Device::Cuda, &memory);
}

void CudaContext::upload_bytes(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (capturing_) {  // the graph's copy node reads the staged bytes when it runs
    DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, staging_.stage(src, bytes), bytes, cudaMemcpyHostToDevice, cur_));
    return;
  }
  // Through the pinned ring (the host does not wait for the stream), else from the pageable source directly:
  // cudaMemcpyAsync returns once the data is staged, so the host buffer may be freed.
  if (const void* pinned = upload_ring_.stage(src, bytes)) {
    DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, pinned, bytes, cudaMemcpyHostToDevice, cur_));
    upload_ring_.copied(cur_);
    return;
  }
  DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cur_));
}

void CudaContext::upload_now(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, side_));
  sync_side();
}

void CudaContext::sync_side() { DSV4_CUDA_CHECK(cudaStreamSynchronize(side_)); }

void CudaContext::download_bytes(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check(!capturing_, "internal error: a device-to-host copy while a CUDA graph is captured");
  DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cur_));
  DSV4_CUDA_CHECK(cudaStreamSynchronize(cur_));
}

void CudaContext::sync() {
  check(!capturing_, "internal error: stream synchronize while a CUDA graph is captured");
  DSV4_CUDA_CHECK(cudaStreamSynchronize(stream_));
  DSV4_CUDA_CHECK(cudaStreamSynchronize(branch_));
}

void CudaContext::branch_fork() {
  if (forked_) branch_join();
  marked_ = false;
  DSV4_CUDA_CHECK(cudaEventRecord(fork_ev_, stream_));
  DSV4_CUDA_CHECK(cudaStreamWaitEvent(branch_, fork_ev_, 0));
  if (!kernel_paths().branch_pdl) mark_full_dependency(branch_);
  forked_ = true;
}

void CudaContext::branch_side(bool on) {
  check(forked_ || !on, "internal error: a side branch without a fork");
  cur_ = on ? branch_ : stream_;
}

void CudaContext::branch_mark() {
  if (!forked_) return;
  DSV4_CUDA_CHECK(cudaEventRecord(mark_ev_, branch_));
  marked_ = true;
}

void CudaContext::branch_wait_mark() {
  if (!forked_ || !marked_) return;
  DSV4_CUDA_CHECK(cudaStreamWaitEvent(stream_, mark_ev_, 0));
  if (!kernel_paths().branch_pdl) mark_full_dependency(stream_);
  marked_ = false;
}

void CudaContext::branch_join() {
  marked_ = false;
  if (!forked_) return;
  DSV4_CUDA_CHECK(cudaEventRecord(join_ev_, branch_));
  DSV4_CUDA_CHECK(cudaStreamWaitEvent(stream_, join_ev_, 0));
  if (!kernel_paths().branch_pdl) mark_full_dependency(stream_);
  end_fork();
}

void CudaContext::end_fork() {
  cur_ = stream_;
  forked_ = false;
  marked_ = false;
  for (void* p : branch_frees_) free_device(p);  // now ordered after both branches
  branch_frees_.clear();
}

void* CudaContext::alloc_device(size_t bytes) {
  if (capturing_) return arena_.allocate(bytes);
  void* p = nullptr;
  DSV4_CUDA_CHECK(cudaMallocAsync(&p, bytes, cur_));
  return p;
}

void CudaContext::free_device(void* p) {
  if (!p) return;
  if (forked_) {
    branch_frees_.push_back(p);
    return;
  }
  if (arena_.owns(p)) {
    arena_.release(p);  // reused only by work queued after this point on the stream
  } else if (capturing_) {
    deferred_.push_back(p);
  } else {
    DSV4_CUDA_CHECK(cudaFreeAsync(p, stream_));
  }
}

void CudaContext::copy_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (capturing_) {
    cudaPointerAttributes a{}, b{};
    DSV4_CUDA_CHECK(cudaPointerGetAttributes(&a, dst));
    DSV4_CUDA_CHECK(cudaPointerGetAttributes(&b, src));
    check(a.type == cudaMemoryTypeDevice && b.type == cudaMemoryTypeDevice,
          "internal error: a host copy while a CUDA graph is captured");
    DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cur_));
    return;
  }
  DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cur_));
  DSV4_CUDA_CHECK(cudaStreamSynchronize(cur_));
}

void CudaContext::begin_capture() {
  check(!capturing_, "internal error: nested CUDA graph capture");
  reset_launch_signature();
  DSV4_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  capturing_ = true;
}

cudaGraph_t CudaContext::end_capture(uint64_t* signature) {
  check(capturing_, "internal error: end of a CUDA graph capture that was not begun");
  check(!forked_, "internal error: a CUDA graph capture ended between branch_fork and branch_join");
  capturing_ = false;
  cudaGraph_t g = nullptr;
  DSV4_CUDA_CHECK(cudaStreamEndCapture(stream_, &g));
  if (signature) *signature = launch_signature();
  return g;
}

void CudaContext::abort_capture() noexcept {
  if (!capturing_) return;
  if (forked_) {  // rejoin the side branch so that the capture can end (frees go to deferred_: still capturing)
    cudaEventRecord(join_ev_, branch_);
    cudaStreamWaitEvent(stream_, join_ev_, 0);
    end_fork();
  }
  capturing_ = false;
  cudaGraph_t g = nullptr;
  if (cudaStreamEndCapture(stream_, &g) == cudaSuccess && g) cudaGraphDestroy(g);
  cudaGetLastError();
  release_deferred();
}

void CudaContext::release_deferred() {
  for (void* p : deferred_) cudaFreeAsync(p, stream_);
  deferred_.clear();
}

int64_t CudaContext::free_bytes() const {
  size_t free = 0, total = 0;
  DSV4_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return static_cast<int64_t>(free);
}

}  // namespace dsv4::cuda
