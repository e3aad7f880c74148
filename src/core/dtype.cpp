// DType names and sizes (the safetensors dtype codes). The float encode/decode functions of dtype.h are in
// float_formats.cpp.
#include "core/dtype.h"

#include <array>
#include <utility>

namespace dsv4 {
namespace {
constexpr std::array<std::pair<DType, std::string_view>, 10> kNames = {{
    {DType::F32, "F32"},
    {DType::BF16, "BF16"},
    {DType::F16, "F16"},
    {DType::F8_E4M3, "F8_E4M3"},
    {DType::F8_E8M0, "F8_E8M0"},
    {DType::I8, "I8"},
    {DType::U8, "U8"},
    {DType::I32, "I32"},
    {DType::I64, "I64"},
    {DType::BOOL, "BOOL"},
}};
}  // namespace

std::string_view dtype_name(DType t) {
  for (auto& [d, n] : kNames)
    if (d == t) return n;
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (auto& [d, n] : kNames)
    if (n == name) return d;
  return std::nullopt;
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::BF16:
    case DType::F16:
      return 2;
    case DType::I64:
      return 8;
    default:
      return 1;
  }
}

}  // namespace dsv4
