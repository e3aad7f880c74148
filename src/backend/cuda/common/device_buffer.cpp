// DeviceBuffer allocation, release and checked host<->device copies.
#include "backend/cuda/common/device_buffer.h"

#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "core/check.h"

namespace dsv4::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0) DSV4_CUDA_CHECK(cudaMalloc(&data_, bytes));
}

DeviceBuffer::~DeviceBuffer() { release(); }

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = o.data_;
    bytes_ = o.bytes_;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void DeviceBuffer::release() {
  // cudaFree errors here would only repeat an earlier asynchronous fault; a destructor must not throw.
  if (data_) cudaFree(data_);
  data_ = nullptr;
  bytes_ = 0;
}

void DeviceBuffer::fill_bytes(uint8_t value, cudaStream_t stream) {
  if (bytes_ > 0) DSV4_CUDA_CHECK(cudaMemsetAsync(data_, value, bytes_, stream));
}

void DeviceBuffer::upload(const void* src, size_t bytes, cudaStream_t stream, size_t offset) {
  check(offset + bytes <= bytes_, [&] { return "DeviceBuffer::upload: " + std::to_string(offset + bytes) +
                                      " bytes exceed the buffer's " + std::to_string(bytes_); });
  DSV4_CUDA_CHECK(cudaMemcpyAsync(static_cast<uint8_t*>(data_) + offset, src, bytes, cudaMemcpyHostToDevice,
                                  stream));
}

void DeviceBuffer::download(void* dst, size_t bytes, cudaStream_t stream, size_t offset) const {
  check(offset + bytes <= bytes_, [&] { return "DeviceBuffer::download: " + std::to_string(offset + bytes) +
                                      " bytes exceed the buffer's " + std::to_string(bytes_); });
  DSV4_CUDA_CHECK(cudaMemcpyAsync(dst, static_cast<const uint8_t*>(data_) + offset, bytes, cudaMemcpyDeviceToHost,
                                  stream));
}

}  // namespace dsv4::cuda
