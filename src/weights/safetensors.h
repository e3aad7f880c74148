// safetensors reading: a validating header parser over a byte range, and a read-only mmapped file.
// Format: u64 little-endian N, then N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// optional __metadata__: {string: string}}, then the data section; offsets are relative to the data section.
// Invariant: parse_safetensors() checks every entry (known dtype, non-negative shape, numel and byte size
// without overflow, begin <= end <= data-section size, end - begin == numel * dtype_size) before any tensor
// byte is read, so a TensorInfo that comes out of it always lies inside the buffer it was parsed from.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/result.h"
#include "core/tensor.h"

namespace dsv4::weights {

// The header may not exceed this many bytes (the safetensors reference uses the same bound).
inline constexpr uint64_t kMaxSafetensorsHeader = 100ull * 1000 * 1000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0;  // byte offsets into the data section, end - begin == numel * dtype_size
  uint64_t end = 0;
  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;              // sorted by name
  std::map<std::string, std::string> metadata;  // __metadata__
  uint64_t data_offset = 0;                     // 8 + N: where the data section starts in the buffer
  uint64_t data_size = 0;                       // bytes of the data section
};

// Parses and validates the header of a safetensors image held in `bytes` (a whole file or a memory buffer).
// `origin` names the file in error messages. Reads only the first 8 + N bytes.
Result<SafetensorsHeader> parse_safetensors(std::span<const uint8_t> bytes, const std::string& origin);

// A read-only private mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile(std::filesystem::path path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// One mapped safetensors file with its parsed header.
class SafetensorsFile {
 public:
  static Result<std::shared_ptr<SafetensorsFile>> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_->path(); }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
  // Pointer to the first byte of a tensor of this file (valid while this object lives).
  const void* data(const TensorInfo& t) const { return file_->bytes().data() + header_.data_offset + t.begin; }

 private:
  SafetensorsFile(std::shared_ptr<MappedFile> file, SafetensorsHeader header);
  std::shared_ptr<MappedFile> file_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;  // name -> position in header_.tensors
};

}  // namespace dsv4::weights
