// Minimal NumPy .npy (format 1.0) writer and reader for float32 C-order arrays: `dsv4 logits` writes
// its output this way and the golden tests read HF's logits.
#pragma once
#include <filesystem>
#include <vector>

#include "core/result.h"
#include "core/tensor.h"

namespace dsv4 {

Status write_npy_f32(const std::filesystem::path& path, const float* data, const Shape& shape);
Result<HostTensor> read_npy_f32(const std::filesystem::path& path);

}  // namespace dsv4
