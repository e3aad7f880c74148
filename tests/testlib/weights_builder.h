// Builds in-memory f32 Weights for op tests (the storage vector must outlive the Weight).
#pragma once
#include <string>
#include <vector>

#include "weights/model_weights.h"

namespace dsv4::testlib {

inline weights::Weight f32_weight(const std::vector<float>& storage, Shape shape, std::string name = "w") {
  weights::Weight w;
  w.name = std::move(name);
  w.quant = weights::Quant::None;
  w.dtype = DType::F32;
  w.shape = std::move(shape);
  w.data = storage.data();
  return w;
}

inline weights::Weight i64_weight(const std::vector<int64_t>& storage, Shape shape, std::string name = "ids") {
  weights::Weight w;
  w.name = std::move(name);
  w.dtype = DType::I64;
  w.shape = std::move(shape);
  w.data = storage.data();
  return w;
}

}  // namespace dsv4::testlib
