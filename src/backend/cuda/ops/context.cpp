// CudaContext; see context.h.
#include "backend/cuda/ops/context.h"

#include <cstdint>

#include "backend/cuda/common/cuda_check.h"

namespace dsv4::cuda {
void fill_f32(float* dst, float value, int64_t n, cudaStream_t stream);  // fill.cu

namespace {
class CudaMemory final : public DeviceMemory {
 public:
  void* allocate(size_t bytes) override {
    void* p = nullptr;
    DSV4_CUDA_CHECK(cudaMallocAsync(&p, bytes, CudaContext::get().stream()));
    return p;
  }
  void release(void* p) override { DSV4_CUDA_CHECK(cudaFreeAsync(p, CudaContext::get().stream())); }
  void copy(void* dst, const void* src, size_t bytes) override {
    cudaStream_t s = CudaContext::get().stream();
    DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
    DSV4_CUDA_CHECK(cudaStreamSynchronize(s));
  }
  void fill(float* dst, float value, int64_t n) override { fill_f32(dst, value, n, CudaContext::get().stream()); }
};
}  // namespace

Scratch::Scratch(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) DSV4_CUDA_CHECK(cudaMallocAsync(&p_, bytes, CudaContext::get().stream()));
}

Scratch::~Scratch() {
  if (p_) cudaFreeAsync(p_, CudaContext::get().stream());
}

Scratch& Scratch::operator=(Scratch&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFreeAsync(p_, CudaContext::get().stream());
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
  // Pageable source: cudaMemcpyAsync returns once the data is staged, so the host buffer may be freed.
  DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaContext::download_bytes(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  DSV4_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaContext::sync() { DSV4_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

int64_t CudaContext::free_bytes() const {
  size_t free = 0, total = 0;
  DSV4_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return static_cast<int64_t>(free);
}

}  // namespace dsv4::cuda
