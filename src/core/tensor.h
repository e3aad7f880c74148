// Non-owning views and a small owning f32 host tensor.
// TensorView: pointer + dtype + shape (row-major, contiguous), used to hand weights and buffers across
// module boundaries without copies. HostTensor: an owning f32 buffer for activations of the CPU reference.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
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

// Owning f32 tensor, row-major. Activations of the CPU backend.
class HostTensor {
 public:
  HostTensor() = default;
  explicit HostTensor(Shape shape, float fill = 0.0f) : shape_(std::move(shape)), data_(shape_numel(shape_), fill) {}
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  int64_t numel() const { return static_cast<int64_t>(data_.size()); }
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  float* row(int64_t i) { return data_.data() + i * row_size(); }
  const float* row(int64_t i) const { return data_.data() + i * row_size(); }
  int64_t row_size() const { return shape_.empty() ? 0 : numel() / shape_[0]; }
  void reshape(Shape s) {
    check(shape_numel(s) == numel(), "reshape changes element count");
    shape_ = std::move(s);
  }
  std::vector<float>& vec() { return data_; }
  // Sets the shape, reusing the buffer; contents are unspecified unless fill is given.
  void resize(Shape s) {
    shape_ = std::move(s);
    data_.resize(static_cast<size_t>(shape_numel(shape_)));
  }
  void resize(Shape s, float fill) {
    resize(std::move(s));
    std::fill(data_.begin(), data_.end(), fill);
  }

 private:
  Shape shape_;
  std::vector<float> data_;
};

}  // namespace dsv4
