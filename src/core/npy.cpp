// .npy v1.0 float32 reader/writer; see npy.h. The reader accepts '<f4' little-endian C-order arrays only
// and names what it found otherwise.
#include "core/npy.h"

#include <cstring>
#include <fstream>
#include <regex>

namespace dsv4 {

Status write_npy_f32(const std::filesystem::path& path, const float* data, const Shape& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
  dict += "), }";
  size_t total = 10 + dict.size() + 1;
  size_t pad = (64 - total % 64) % 64;
  dict += std::string(pad, ' ') + "\n";
  std::ofstream f(path, std::ios::binary);
  if (!f) return make_error("cannot open " + path.string() + " for writing");
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t hl = static_cast<uint16_t>(dict.size());
  f.write(reinterpret_cast<const char*>(&hl), 2);
  f.write(dict.data(), static_cast<std::streamsize>(dict.size()));
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(shape_numel(shape) * 4));
  if (!f) return make_error("write to " + path.string() + " failed");
  return Ok{};
}

Result<HostTensor> read_npy_f32(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error("cannot open " + path.string());
  char magic[8];
  f.read(magic, 8);
  if (!f || std::memcmp(magic, "\x93NUMPY", 6) != 0) return make_error(path.string() + ": not a .npy file");
  uint32_t hl = 0;
  if (magic[6] == 1) {
    uint16_t h16 = 0;
    f.read(reinterpret_cast<char*>(&h16), 2);
    hl = h16;
  } else {
    f.read(reinterpret_cast<char*>(&hl), 4);
  }
  std::string dict(hl, '\0');
  f.read(dict.data(), hl);
  if (!f) return make_error(path.string() + ": truncated header");
  if (dict.find("'<f4'") == std::string::npos || dict.find("'fortran_order': False") == std::string::npos)
    return make_error(path.string() + ": expected a little-endian float32 C-order array, header " + dict);
  std::smatch m;
  if (!std::regex_search(dict, m, std::regex("'shape': \\(([0-9, ]*)\\)")))
    return make_error(path.string() + ": no shape in header");
  Shape shape;
  std::string s = m[1];
  for (size_t i = 0; i < s.size();) {
    size_t j = s.find_first_of("0123456789", i);
    if (j == std::string::npos) break;
    size_t k = s.find_first_not_of("0123456789", j);
    shape.push_back(std::stoll(s.substr(j, k - j)));
    i = k == std::string::npos ? s.size() : k;
  }
  HostTensor t(shape);
  f.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(t.numel() * 4));
  if (!f) return make_error(path.string() + ": truncated data");
  return t;
}

}  // namespace dsv4
