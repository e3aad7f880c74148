// safetensors header validation and the mmapped file (safetensors.h). Parsing uses nlohmann::json with
// exceptions caught here; nothing throws out of this file. Nesting depth is bounded before parsing so a
// hostile header cannot exhaust the stack.
#include "weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>

namespace dsv4::weights {
namespace {

using json = nlohmann::json;

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxRank = 16;

Error err(const std::string& origin, const std::string& msg) { return make_error(origin + ": " + msg); }
Error tensor_err(const std::string& origin, const std::string& name, const std::string& msg) {
  return make_error(origin + ": tensor '" + name + "': " + msg);
}

// Deepest bracket nesting outside strings, or -1 once it exceeds kMaxJsonDepth.
int json_depth(std::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_str = false, esc = false;
  for (char c : s) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return -1;
      max_depth = std::max(max_depth, depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// A JSON integer in [0, limit]; nullopt for floats, negatives, non-numbers or values above the limit.
std::optional<uint64_t> as_uint(const json& v, uint64_t limit) {
  if (v.is_number_unsigned()) {
    uint64_t x = v.get<uint64_t>();
    return x <= limit ? std::optional<uint64_t>(x) : std::nullopt;
  }
  if (v.is_number_integer()) {
    int64_t x = v.get<int64_t>();
    if (x < 0 || static_cast<uint64_t>(x) > limit) return std::nullopt;
    return static_cast<uint64_t>(x);
  }
  return std::nullopt;
}

Result<TensorInfo> parse_entry(const std::string& name, const json& e, uint64_t data_size,
                               const std::string& origin) {
  if (!e.is_object()) return tensor_err(origin, name, "header entry is not an object");
  TensorInfo t;
  t.name = name;
  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) return tensor_err(origin, name, "missing string field 'dtype'");
  auto dtype = dtype_from_name(dt->get<std::string>());
  if (!dtype) return tensor_err(origin, name, "unsupported dtype '" + dt->get<std::string>() + "'");
  t.dtype = *dtype;
  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) return tensor_err(origin, name, "missing array field 'shape'");
  if (sh->size() > kMaxRank) return tensor_err(origin, name, "shape has " + std::to_string(sh->size()) + " dims");
  uint64_t numel = 1;
  for (const json& d : *sh) {
    auto v = as_uint(d, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    if (!v) return tensor_err(origin, name, "shape " + sh->dump() + " must hold non-negative integers");
    if (__builtin_mul_overflow(numel, *v, &numel))
      return tensor_err(origin, name, "shape " + sh->dump() + " overflows the element count");
    t.shape.push_back(static_cast<int64_t>(*v));
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(t.dtype)), &nbytes) ||
      nbytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return tensor_err(origin, name, "shape " + sh->dump() + " overflows the byte size");
  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2)
    return tensor_err(origin, name, "'data_offsets' must be an array [begin, end]");
  auto b = as_uint((*off)[0], std::numeric_limits<uint64_t>::max());
  auto en = as_uint((*off)[1], std::numeric_limits<uint64_t>::max());
  if (!b || !en) return tensor_err(origin, name, "'data_offsets' " + off->dump() + " must be non-negative integers");
  if (*b > *en) return tensor_err(origin, name, "data_offsets " + off->dump() + ": begin > end");
  if (*en > data_size)
    return tensor_err(origin, name,
                      "data_offsets " + off->dump() + " run past the end of the data section (" +
                          std::to_string(data_size) + " bytes): the file is truncated or corrupt");
  if (*en - *b != nbytes)
    return tensor_err(origin, name,
                      "data_offsets " + off->dump() + " span " + std::to_string(*en - *b) + " bytes but " +
                          std::string(dtype_name(t.dtype)) + " " + shape_str(t.shape) + " needs " +
                          std::to_string(nbytes));
  t.begin = *b;
  t.end = *en;
  return t;
}

Status parse_metadata(const json& m, SafetensorsHeader& h, const std::string& origin) {
  if (!m.is_object()) return err(origin, "__metadata__ is not an object");
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!it->is_string()) return err(origin, "__metadata__ value of '" + it.key() + "' is not a string");
    h.metadata[it.key()] = it->get<std::string>();
  }
  return Ok{};
}

}  // namespace

Result<SafetensorsHeader> parse_safetensors(std::span<const uint8_t> bytes, const std::string& origin) {
  if (bytes.size() < 8)
    return err(origin, "not a safetensors file: " + std::to_string(bytes.size()) + " bytes, need at least 8");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<size_t>(i)];
  const uint64_t avail = bytes.size() - 8;
  if (n > kMaxSafetensorsHeader)
    return err(origin, "header length " + std::to_string(n) + " exceeds the limit of " +
                           std::to_string(kMaxSafetensorsHeader) + " bytes (not a safetensors file?)");
  if (n > avail)
    return err(origin, "header length " + std::to_string(n) + " exceeds the " + std::to_string(avail) +
                           " bytes after the length field (truncated file?)");
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<size_t>(n));
  if (json_depth(text) < 0) return err(origin, "header JSON nests deeper than " + std::to_string(kMaxJsonDepth));
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return err(origin, "header is not valid JSON at byte " + std::to_string(e.byte) + " of " +
                           std::to_string(n) + ": " + e.what());
  } catch (const json::exception& e) {  // found by libFuzzer: out_of_range.406 for "1E11111"
    return err(origin, std::string("header is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) return err(origin, "header JSON is not an object");
  SafetensorsHeader h;
  h.data_offset = 8 + n;
  h.data_size = avail - n;
  h.tensors.reserve(root.size());
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      DSV4_TRY_STATUS(parse_metadata(*it, h, origin));
      continue;
    }
    DSV4_TRY(t, parse_entry(it.key(), *it, h.data_size, origin));
    h.tensors.push_back(std::move(t));
  }
  return h;
}

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(path.string() + ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  const uint8_t* data = nullptr;
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return make_error(path.string() + ": mmap failed: " + std::strerror(e));
    }
    data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return std::shared_ptr<MappedFile>(new MappedFile(path, data, size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

SafetensorsFile::SafetensorsFile(std::shared_ptr<MappedFile> file, SafetensorsHeader header)
    : file_(std::move(file)), header_(std::move(header)) {
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::open(const std::filesystem::path& path) {
  DSV4_TRY(file, MappedFile::open(path));
  DSV4_TRY(header, parse_safetensors(file->bytes(), path.string()));
  return std::shared_ptr<SafetensorsFile>(new SafetensorsFile(file, std::move(header)));
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

}  // namespace dsv4::weights
