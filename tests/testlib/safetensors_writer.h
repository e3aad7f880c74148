// Test helper (header-only): builds safetensors images, files, sharded checkpoints and index JSON files.
// Tensors are raw bytes plus a safetensors dtype name and shape; the writer computes data_offsets and pads the
// header to 8 bytes like the reference implementation. Corruption tests edit the produced bytes directly.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace dsv4::testing {

struct StTensor {
  std::string name;
  std::string dtype;             // "F32", "BF16", "F8_E4M3", "F8_E8M0", "I8", "I64", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;    // numel * dtype size
};

inline size_t st_dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "BF16" || dtype == "F16") return 2;
  if (dtype == "I64" || dtype == "F64") return 8;
  return 1;
}

inline int64_t st_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A tensor of the given dtype/shape filled with bytes from `rng`.
inline StTensor st_random(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                          std::mt19937_64& rng) {
  StTensor t{name, dtype, std::move(shape), {}};
  t.bytes.resize(static_cast<size_t>(st_numel(t.shape)) * st_dtype_size(dtype));
  for (auto& b : t.bytes) b = static_cast<uint8_t>(rng());
  return t;
}

inline StTensor st_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
  StTensor t{name, "F32", std::move(shape), std::vector<uint8_t>(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

inline StTensor st_i64(const std::string& name, std::vector<int64_t> shape, const std::vector<int64_t>& v) {
  StTensor t{name, "I64", std::move(shape), std::vector<uint8_t>(v.size() * 8)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

// The header JSON text (without padding) for tensors laid out back to back in order.
inline std::string st_header_json(const std::vector<StTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json h = nlohmann::json::object();
  uint64_t off = 0;
  for (const StTensor& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  if (!metadata.empty()) h["__metadata__"] = metadata;
  return h.dump();
}

// A complete image: u64 LE header length, header padded with spaces to a multiple of 8, data.
inline std::vector<uint8_t> st_image_from_header(std::string header, const std::vector<StTensor>& tensors) {
  while ((header.size() % 8) != 0) header.push_back(' ');
  std::vector<uint8_t> out(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  for (const StTensor& t : tensors) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
  return out;
}

inline std::vector<uint8_t> st_image(const std::vector<StTensor>& tensors,
                                     const std::map<std::string, std::string>& metadata = {}) {
  return st_image_from_header(st_header_json(tensors, metadata), tensors);
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path.string());
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + path.string());
  f << text;
}

inline void write_safetensors(const std::filesystem::path& path, const std::vector<StTensor>& tensors) {
  write_bytes(path, st_image(tensors));
}

// model.safetensors.index.json with the given weight_map (tensor name -> shard file name).
inline void write_index(const std::filesystem::path& path, const std::map<std::string, std::string>& weight_map) {
  nlohmann::json j = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  write_text(path, j.dump(2));
}

enum class StLayout { Single, Indexed, MultiNoIndex };

inline std::string shard_name(int k, int n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", k + 1, n);
  return buf;
}

// Writes `tensors` into `dir` as model.safetensors (Single) or as n_shards round-robin shards, with or without
// an index. Returns the weight_map used (tensor -> file).
inline std::map<std::string, std::string> write_checkpoint(const std::filesystem::path& dir,
                                                           const std::vector<StTensor>& tensors, StLayout layout,
                                                           int n_shards = 3) {
  std::filesystem::create_directories(dir);
  std::map<std::string, std::string> wm;
  if (layout == StLayout::Single) {
    write_safetensors(dir / "model.safetensors", tensors);
    for (const StTensor& t : tensors) wm[t.name] = "model.safetensors";
    return wm;
  }
  std::vector<std::vector<StTensor>> shards(static_cast<size_t>(n_shards));
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int k = static_cast<int>(i % static_cast<size_t>(n_shards));
    shards[static_cast<size_t>(k)].push_back(tensors[i]);
    wm[tensors[i].name] = shard_name(k, n_shards);
  }
  for (int k = 0; k < n_shards; ++k) write_safetensors(dir / shard_name(k, n_shards), shards[static_cast<size_t>(k)]);
  if (layout == StLayout::Indexed) write_index(dir / "model.safetensors.index.json", wm);
  return wm;
}

}  // namespace dsv4::testing
