// Non-owning views and the owning f32 tensor of activations and caches.
// TensorView: pointer + dtype + shape (row-major, contiguous), used to hand weights and buffers across
// module boundaries without copies. Tensor: an owning f32 buffer on the host or on a device.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"

namespace dsv4 {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[2, 3]"
int64_t shape_numel(const Shape& s);

struct TensorView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  Shape shape;
  bool present() const { return data != nullptr; }
  int64_t numel() const { return shape_numel(shape); }
  int64_t dim(size_t i) const { return shape.at(i); }
  template <typename T>
  const T* as() const { return static_cast<const T*>(data); }
};

enum class Device : uint8_t { Host, Cuda };
const char* to_string(Device d);

// Memory services of a device backend, registered by that backend (core has no CUDA dependency). Copies
// are synchronous with respect to the backend's compute stream (ordered after every queued op).
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // any direction
  virtual void fill(float* dst, float value, int64_t n) = 0;
};
void register_device_memory(Device d, DeviceMemory* m);
DeviceMemory& device_memory(Device d);  // panics when no backend registered it

// Owning f32 tensor, row-major, on the host (the CPU reference's activations) or on a device (the CUDA
// backend's activations and caches). Shape and pointer arithmetic (data(), row()) work on both; element
// access through the pointers only on the host. Copies are deep. resize() keeps the device and may
// reallocate (contents unspecified); grow_rows() keeps the contents.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape, float fill = 0.0f) : shape_(std::move(shape)), host_(shape_numel(shape_), fill) {}
  Tensor(Device d, Shape shape);  // contents unspecified
  Tensor(const Tensor& o);
  Tensor& operator=(const Tensor& o);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  Device device() const { return device_; }
  bool on_host() const { return device_ == Device::Host; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  int64_t numel() const { return shape_numel(shape_); }
  float* data() { return on_host() ? host_.data() : dev_.get(); }
  const float* data() const { return on_host() ? host_.data() : dev_.get(); }
  float* row(int64_t i) { return data() + i * row_size(); }
  const float* row(int64_t i) const { return data() + i * row_size(); }
  int64_t row_size() const { return shape_.empty() || shape_[0] == 0 ? 0 : numel() / shape_[0]; }
  void reshape(Shape s) {
    check(shape_numel(s) == numel(), "reshape changes element count");
    shape_ = std::move(s);
  }
  std::vector<float>& vec() {
    check(on_host(), "Tensor::vec() on a device tensor");
    return host_;
  }
  // Sets the shape, reusing the buffer when it is large enough; contents are unspecified unless fill is
  // given. The tensor stays on its device.
  void resize(Shape s);
  void resize(Shape s, float fill);
  // Moves the (empty or not) tensor to device d with shape s; contents unspecified.
  void resize_on(Device d, Shape s);
  // Changes dim 0 to n_rows keeping the first min(old, new) rows; capacity grows geometrically.
  void grow_rows(int64_t n_rows);
  // A copy on device d.
  Tensor to(Device d) const;

 private:
  void ensure_capacity(int64_t n, bool keep);
  Shape shape_;
  Device device_ = Device::Host;
  std::vector<float> host_;
  std::shared_ptr<float> dev_;  // device storage, released through DeviceMemory
  int64_t dev_capacity_ = 0;
};

// The CPU reference's name for its activations (always on the host there).
using HostTensor = Tensor;

}  // namespace dsv4
