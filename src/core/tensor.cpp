// Shape helpers for tensor.h.
#include "core/tensor.h"

namespace dsv4 {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

namespace {
DeviceMemory* g_device_memory[2] = {nullptr, nullptr};
}  // namespace

const char* to_string(Device d) { return d == Device::Host ? "cpu" : "cuda"; }

void register_device_memory(Device d, DeviceMemory* m) { g_device_memory[static_cast<int>(d)] = m; }

DeviceMemory& device_memory(Device d) {
  DeviceMemory* m = g_device_memory[static_cast<int>(d)];
  check(m != nullptr, [&] { return std::string("no backend provides memory on device ") + to_string(d); });
  return *m;
}

Tensor::Tensor(Device d, Shape shape) { resize_on(d, std::move(shape)); }

Tensor::Tensor(const Tensor& o) : shape_(o.shape_), device_(o.device_), host_(o.host_) {
  if (!on_host()) {
    ensure_capacity(numel(), false);
    if (numel() > 0) device_memory(device_).copy(dev_.get(), o.dev_.get(), sizeof(float) * numel());
  }
}

Tensor& Tensor::operator=(const Tensor& o) {
  if (this != &o) {
    Tensor t(o);
    *this = std::move(t);
  }
  return *this;
}

void Tensor::ensure_capacity(int64_t n, bool keep) {
  if (n <= dev_capacity_ && dev_) return;
  int64_t cap = std::max<int64_t>(n, keep ? dev_capacity_ * 2 : n);
  cap = std::max<int64_t>(cap, 1);
  DeviceMemory& m = device_memory(device_);
  float* p = static_cast<float*>(m.allocate(sizeof(float) * static_cast<size_t>(cap)));
  std::shared_ptr<float> fresh(p, [&m](float* q) { m.release(q); });
  if (keep && dev_ && dev_capacity_ > 0) m.copy(p, dev_.get(), sizeof(float) * static_cast<size_t>(std::min(n, dev_capacity_)));
  dev_ = std::move(fresh);
  dev_capacity_ = cap;
}

void Tensor::resize(Shape s) {
  shape_ = std::move(s);
  if (on_host())
    host_.resize(static_cast<size_t>(shape_numel(shape_)));
  else
    ensure_capacity(shape_numel(shape_), false);
}

void Tensor::resize(Shape s, float fill) {
  resize(std::move(s));
  if (on_host())
    std::fill(host_.begin(), host_.end(), fill);
  else if (numel() > 0)
    device_memory(device_).fill(dev_.get(), fill, numel());
}

void Tensor::resize_on(Device d, Shape s) {
  if (d != device_) {
    host_.clear();
    host_.shrink_to_fit();
    dev_.reset();
    dev_capacity_ = 0;
    device_ = d;
  }
  resize(std::move(s));
}

void Tensor::grow_rows(int64_t n_rows) {
  check(!shape_.empty(), "grow_rows on a tensor without dimensions");
  int64_t rs = row_size();
  if (rs == 0) {
    check(shape_.size() >= 2, "grow_rows needs a row width");
    rs = 1;
    for (size_t i = 1; i < shape_.size(); ++i) rs *= shape_[i];
  }
  shape_[0] = n_rows;
  if (on_host())
    host_.resize(static_cast<size_t>(n_rows * rs));
  else
    ensure_capacity(n_rows * rs, true);
}

Tensor Tensor::to(Device d) const {
  Tensor t(d, shape_);
  if (numel() == 0) return t;
  if (on_host() && d == Device::Host)
    t.host_ = host_;
  else
    device_memory(on_host() ? d : device_).copy(t.data(), data(), sizeof(float) * static_cast<size_t>(numel()));
  return t;
}

}  // namespace dsv4
