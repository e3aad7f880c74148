// fuzz-link: dsv4_weights
// Fuzzes the safetensors header parser on arbitrary bytes held in memory. Properties: it never crashes or
// reads out of bounds, and every tensor it accepts lies inside the buffer with a byte size equal to
// numel * dtype_size. Inputs are also tried behind a valid length prefix, and as byte edits of a valid header,
// so the JSON and entry validation are reached by the random inputs of the smoke driver too.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "weights/safetensors.h"

namespace {

void check_parse(std::span<const uint8_t> bytes) {
  auto h = dsv4::weights::parse_safetensors(bytes, "fuzz");
  if (!h.ok()) return;
  if (h->data_offset + h->data_size != bytes.size()) std::abort();
  for (const auto& t : h->tensors) {
    if (t.begin > t.end || t.end > h->data_size) std::abort();
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) std::abort();
      numel *= static_cast<uint64_t>(d);
    }
    if (numel * dsv4::dtype_size(t.dtype) != t.nbytes()) std::abort();
    volatile uint8_t sink = 0;
    if (t.nbytes() > 0) sink = bytes[h->data_offset + t.end - 1];  // in bounds by the checks above
    (void)sink;
  }
}

std::vector<uint8_t> frame(const uint8_t* header, size_t n, size_t data_bytes) {
  std::vector<uint8_t> out(8 + n + data_bytes);
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<uint8_t>(static_cast<uint64_t>(n) >> (8 * i));
  for (size_t i = 0; i < n; ++i) out[8 + i] = header[i];
  return out;
}

// A valid header edited at positions chosen by the input: (position, byte) pairs.
void check_edited(const uint8_t* data, size_t size) {
  std::string h = R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                  R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"__metadata__":{"k":"v"}})";
  for (size_t i = 0; i + 1 < size; i += 2) h[data[i] % h.size()] = static_cast<char>(data[i + 1]);
  check_parse(frame(reinterpret_cast<const uint8_t*>(h.data()), h.size(), 32));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_parse({data, size});
  check_parse(frame(data, size, size % 64));  // the whole input as the header, some data bytes behind it
  check_edited(data, size);
  return 0;
}
