// RowBlocks: a compact, non-owning-rows description of a sequence's entry rows (compressed KV entries or
// indexer keys of one layer) as a short list of equal-sized blocks. Entry s lives at
//   blocks[s / rows_per_block] + (s % rows_per_block) * stride
// A contiguous store is one block; the paged store is one block per compressed page (a page holds
// rows_per_block consecutive entries of a layer, contiguous in its layer block). The block list owns its
// pointers (a few thousand at 1M context); the rows themselves belong to the cache, on the cache's device.
// Valid while the cache rows do not move (contiguous store: until it grows; paged: for one engine step).
// Row formats: F32 rows hold `dim` floats. Mxfp4 rows (indexer keys of the official numerics, spec §9.2: "68 B
// MXFP4 indexer row") hold the FP4 quantization of spec §2.4 exactly as fp4_pack (core/numerics.h) writes it:
// dim/2 code bytes (element 2j in the low nibble of byte j), then dim/32 e8m0 scale bytes, zero-padded to a
// multiple of 4 bytes (mxfp4_row_bytes: 68 for dim 128), so `stride` still counts 4-byte words. Fp8Kv rows (compressed
// KV entries of the official numerics, spec §5.3 step 4 / §9.2 "584 B" KV row) hold a row whose first
// nope = dim - rope_dim values are FP8 fake-quantized in blocks of 64 exactly as fp8kv_pack_row (core/numerics.h)
// writes it: nope e4m3 code bytes, then rope_dim bf16 values, then nope/64 e8m0 scale bytes, zero-padded to a
// multiple of 8 bytes (fp8kv_row_bytes: 584 for dim 512, rope 64; 200 for dim 128, rope 64).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dsv4 {

enum class RowFormat : uint8_t { F32, Mxfp4, Fp8Kv };

// Bytes of one Mxfp4 row of `dim` values (dim % 32 == 0).
constexpr int64_t mxfp4_row_bytes(int64_t dim) { return (dim / 2 + dim / 32 + 3) / 4 * 4; }
// Whether `dim` values whose last rope_dim are bf16 make Fp8Kv rows: the FP8 blocks of 64 tile the other dims.
constexpr bool fp8kv_shape_ok(int64_t dim, int64_t rope_dim) {
  return rope_dim >= 0 && rope_dim <= dim && (dim - rope_dim) % 64 == 0;
}
// Bytes of one Fp8Kv row of `dim` values whose last rope_dim are bf16 ((dim - rope_dim) % 64 == 0).
constexpr int64_t fp8kv_row_bytes(int64_t dim, int64_t rope_dim) {
  return ((dim - rope_dim) + 2 * rope_dim + (dim - rope_dim) / 64 + 7) / 8 * 8;
}
// Bytes of one row of `dim` values in format f (rope_dim: Fp8Kv only).
constexpr int64_t row_bytes(RowFormat f, int64_t dim, int64_t rope_dim = 0) {
  return f == RowFormat::Mxfp4 ? mxfp4_row_bytes(dim) : f == RowFormat::Fp8Kv ? fp8kv_row_bytes(dim, rope_dim) : 4 * dim;
}

struct RowBlocks {
  std::vector<const float*> blocks;  // base of each block, [rows_per_block, stride] words (device of the cache)
  int64_t rows_per_block = 1;
  int64_t stride = 0;  // 4-byte words from one row of a block to the next (>= the row width)
  RowFormat format = RowFormat::F32;
  int64_t rope_dim = 0;  // Fp8Kv rows: the bf16 tail of each row

  const float* row(int64_t s) const {
    return blocks[static_cast<size_t>(s / rows_per_block)] + (s % rows_per_block) * stride;
  }
  int64_t capacity() const { return static_cast<int64_t>(blocks.size()) * rows_per_block; }
};

}  // namespace dsv4
