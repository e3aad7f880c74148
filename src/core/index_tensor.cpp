// Storage of index_tensor.h: host vector or DeviceMemory allocation (the backend's stream-ordered pool).
#include "core/index_tensor.h"

#include <algorithm>

namespace dsv4 {

void IndexTensor::resize_on(Device d, int64_t rows, int64_t cols) {
  check(rows >= 0 && cols >= 0, "IndexTensor: negative shape");
  if (d != device_) {
    host_.clear();
    host_.shrink_to_fit();
    dev_.reset();
    dev_capacity_ = 0;
    device_ = d;
  }
  rows_ = rows;
  cols_ = cols;
  const int64_t n = rows * cols;
  if (on_host()) {
    host_.resize(static_cast<size_t>(n));
    return;
  }
  if (n <= dev_capacity_ && dev_) return;
  DeviceMemory& m = device_memory(device_);
  const int64_t cap = std::max<int64_t>(n, 1);
  auto* p = static_cast<int32_t*>(m.allocate(sizeof(int32_t) * static_cast<size_t>(cap)));
  dev_ = std::shared_ptr<int32_t>(p, [&m](int32_t* q) { m.release(q); });
  dev_capacity_ = cap;
}

IndexTensor IndexTensor::to(Device d) const {
  IndexTensor t(d, rows_, cols_);
  if (numel() == 0) return t;
  if (on_host() && d == Device::Host)
    t.host_ = host_;
  else
    device_memory(on_host() ? d : device_).copy(t.data(), data(), sizeof(int32_t) * static_cast<size_t>(numel()));
  return t;
}

}  // namespace dsv4
