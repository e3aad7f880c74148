// IndexTensor: an owning int32 [rows, cols] buffer on the host or a device, the smallest integer companion of
// the f32 Tensor (core/tensor.h). It carries index data produced and consumed on one backend's device (the
// lightning indexer's selections, i32 [n_rows, index_topk], -1 padded) so the host never reads it in a step.
// Row-major and contiguous. resize_on() keeps the buffer when it is large enough (contents unspecified);
// to() copies (a device-to-host copy synchronizes the backend's stream: tests and debugging only). Move-only.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace dsv4 {

class IndexTensor {
 public:
  IndexTensor() = default;
  IndexTensor(Device d, int64_t rows, int64_t cols) { resize_on(d, rows, cols); }
  IndexTensor(IndexTensor&&) noexcept = default;
  IndexTensor& operator=(IndexTensor&&) noexcept = default;
  IndexTensor(const IndexTensor&) = delete;
  IndexTensor& operator=(const IndexTensor&) = delete;

  Device device() const { return device_; }
  bool on_host() const { return device_ == Device::Host; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t numel() const { return rows_ * cols_; }
  int32_t* data() { return on_host() ? host_.data() : dev_.get(); }
  const int32_t* data() const { return on_host() ? host_.data() : dev_.get(); }
  int32_t* row(int64_t i) { return data() + i * cols_; }
  const int32_t* row(int64_t i) const { return data() + i * cols_; }
  // Shape [rows, cols] on device d; contents unspecified.
  void resize_on(Device d, int64_t rows, int64_t cols);
  // A copy on device d.
  IndexTensor to(Device d) const;

 private:
  int64_t rows_ = 0, cols_ = 0;
  Device device_ = Device::Host;
  std::vector<int32_t> host_;
  std::shared_ptr<int32_t> dev_;  // device storage, released through DeviceMemory
  int64_t dev_capacity_ = 0;
};

}  // namespace dsv4
