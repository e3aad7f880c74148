// DeviceBuffer: an owning, move-only block of device memory (cudaMalloc/cudaFree). It is the only owner of
// device allocations in the backend; kernels never allocate (workspaces are DeviceBuffers owned by the caller).
// Invariants: data() is nullptr exactly when bytes() == 0; the memory is released once, by the last owner.
// Contents are uninitialized after construction: tests poison outputs explicitly (fill_bytes).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace dsv4::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : data_(o.data_), bytes_(o.bytes_) {
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;

  void* data() const { return data_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  size_t bytes() const { return bytes_; }

  // Asynchronous on `stream`; sizes are checked against bytes().
  void fill_bytes(uint8_t value, cudaStream_t stream);
  void upload(const void* src, size_t bytes, cudaStream_t stream, size_t offset = 0);
  void download(void* dst, size_t bytes, cudaStream_t stream, size_t offset = 0) const;

 private:
  void release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace dsv4::cuda
