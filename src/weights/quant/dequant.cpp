// Row-wise dequantization of checkpoint weights to f32 (spec §7.2): plain F32/BF16/F16, FP8 e4m3 with
// 128x128 block scales (e8m0 bytes or HF f32 `weight_scale_inv` multipliers), and MXFP4 (e2m1 nibbles, low
// nibble = even element, e8m0 scale per 1x32). Called per row block from the CPU GEMM, so the inner loops are
// table lookups (256 e4m3 values, 16 e2m1 values) with one scale per block and no allocation.
// Invariant: every result is exact (a format value times a power of two, or times the f32 scale_inv).
#include "weights/quant/dequant.h"

#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "core/check.h"
#include "core/dtype.h"

namespace dsv4::weights {
namespace {

constexpr int64_t kFp8Block = 128;
constexpr int64_t kMxfp4Block = 32;

const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

const std::array<float, 16>& e2m1_table() {
  static const std::array<float, 16> table = [] {
    std::array<float, 16> t{};
    for (int i = 0; i < 16; ++i) t[i] = e2m1_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

[[noreturn]] void fail(const Weight& w, const std::string& what) {
  panic("dequant " + w.name + ": " + what);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Scale element `idx` of w as an f32 multiplier.
float scale_at(const Weight& w, int64_t idx) {
  switch (w.scale_dtype) {
    case DType::F8_E8M0:
      return e8m0_to_f32(static_cast<const uint8_t*>(w.scale)[idx]);
    case DType::F32:
      return static_cast<const float*>(w.scale)[idx];
    case DType::BF16:
      return bf16_to_f32(static_cast<const uint16_t*>(w.scale)[idx]);
    default:
      fail(w, "unsupported scale dtype " + std::string(dtype_name(w.scale_dtype)));
  }
}

int64_t scale_cols(const Weight& w) { return w.scale_shape.size() >= 2 ? w.scale_shape[1] : 1; }

void check_scale_shape(const Weight& w, int64_t want_rows, int64_t want_cols) {
  if (w.scale == nullptr) fail(w, "quantized weight has no scale");
  const int64_t have_rows = w.scale_shape.empty() ? 0 : w.scale_shape[0];
  if (have_rows != want_rows || scale_cols(w) != want_cols)
    fail(w, "scale shape " + shape_str(w.scale_shape) + " does not match weight shape " + shape_str(w.shape) +
                " (expected [" + std::to_string(want_rows) + ", " + std::to_string(want_cols) + "])");
}

void dequant_plain(const Weight& w, int64_t r0, int64_t r1, float* out) {
  const int64_t cols = w.cols();
  const int64_t begin = r0 * cols;
  const int64_t n = (r1 - r0) * cols;
  switch (w.dtype) {
    case DType::F32:
      std::memcpy(out, static_cast<const float*>(w.data) + begin, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + begin;
      for (int64_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(static_cast<uint32_t>(src[i]) << 16);
      return;
    }
    case DType::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + begin;
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(src[i]);
      return;
    }
    default:
      fail(w, "unquantized weight has unsupported dtype " + std::string(dtype_name(w.dtype)));
  }
}

// FP8 e4m3 [rows, cols] with scale [ceil(rows/128), ceil(cols/128)]: W[i][j] = e4m3(q) * S[i/128][j/128].
void dequant_fp8_block128(const Weight& w, int64_t r0, int64_t r1, float* out) {
  if (w.dtype != DType::F8_E4M3) fail(w, "Fp8Block128 weight must be F8_E4M3, got " + std::string(dtype_name(w.dtype)));
  const int64_t rows = w.rows();
  const int64_t cols = w.cols();
  check_scale_shape(w, ceil_div(rows, kFp8Block), ceil_div(cols, kFp8Block));
  const std::array<float, 256>& lut = e4m3_table();
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  const int64_t n_sc = scale_cols(w);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* src = data + r * cols;
    float* dst = out + (r - r0) * cols;
    const int64_t srow = (r / kFp8Block) * n_sc;
    for (int64_t c0 = 0, cb = 0; c0 < cols; c0 += kFp8Block, ++cb) {
      const float s = scale_at(w, srow + cb);
      const int64_t c1 = c0 + kFp8Block < cols ? c0 + kFp8Block : cols;
      for (int64_t c = c0; c < c1; ++c) dst[c] = lut[src[c]] * s;
    }
  }
}

// MXFP4: bytes [rows, cols/2] (byte k: element 2k low nibble, 2k+1 high nibble), scale [rows, cols/32].
void dequant_mxfp4(const Weight& w, int64_t r0, int64_t r1, float* out) {
  if (w.dtype != DType::I8 && w.dtype != DType::U8)
    fail(w, "Mxfp4 weight must be I8 packed nibbles, got " + std::string(dtype_name(w.dtype)));
  const int64_t rows = w.rows();
  const int64_t cols = w.cols();
  if (cols % kMxfp4Block != 0) fail(w, "Mxfp4 input dim " + std::to_string(cols) + " is not a multiple of 32");
  check_scale_shape(w, rows, cols / kMxfp4Block);
  const std::array<float, 16>& lut = e2m1_table();
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  const int64_t row_bytes = cols / 2;
  const int64_t n_sc = cols / kMxfp4Block;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* src = data + r * row_bytes;
    float* dst = out + (r - r0) * cols;
    for (int64_t g = 0; g < n_sc; ++g) {
      const float s = scale_at(w, r * n_sc + g);
      const uint8_t* bytes = src + g * (kMxfp4Block / 2);
      float* d = dst + g * kMxfp4Block;
      for (int64_t k = 0; k < kMxfp4Block / 2; ++k) {
        const uint8_t b = bytes[k];
        d[2 * k] = lut[b & 0xF] * s;
        d[2 * k + 1] = lut[b >> 4] * s;
      }
    }
  }
}

}  // namespace

void dequant_rows(const Weight& w, int64_t row_begin, int64_t row_end, float* out) {
  if (w.data == nullptr) fail(w, "weight is not present");
  if (w.shape.empty() || w.shape.size() > 2) fail(w, "expected a 1-D or 2-D weight, got " + shape_str(w.shape));
  if (row_begin < 0 || row_begin > row_end || row_end > w.rows())
    fail(w, "row range [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ") outside " +
                shape_str(w.shape));
  if (row_begin == row_end) return;
  switch (w.quant) {
    case Quant::None:
      dequant_plain(w, row_begin, row_end, out);
      return;
    case Quant::Fp8Block128:
      dequant_fp8_block128(w, row_begin, row_end, out);
      return;
    case Quant::Mxfp4:
      dequant_mxfp4(w, row_begin, row_end, out);
      return;
  }
  fail(w, "unknown quant kind");
}

std::vector<float> dequant_all(const Weight& w) {
  std::vector<float> out(static_cast<size_t>(w.rows() * w.cols()));
  dequant_rows(w, 0, w.rows(), out.data());
  return out;
}

int64_t read_int(const Weight& w, int64_t index) {
  if (w.data == nullptr) fail(w, "weight is not present");
  const int64_t n = shape_numel(w.shape);
  if (index < 0 || index >= n)
    fail(w, "index " + std::to_string(index) + " outside " + shape_str(w.shape));
  switch (w.dtype) {
    case DType::I64:
      return static_cast<const int64_t*>(w.data)[index];
    case DType::I32:
      return static_cast<const int32_t*>(w.data)[index];
    default:
      fail(w, "read_int needs an I64 or I32 tensor, got " + std::string(dtype_name(w.dtype)));
  }
}

}  // namespace dsv4::weights
