// RowBlocks: a compact, non-owning-rows description of a sequence's entry rows (compressed KV entries or
// indexer keys of one layer) as a short list of equal-sized blocks. Entry s lives at
//   blocks[s / rows_per_block] + (s % rows_per_block) * stride
// A contiguous store is one block; the paged store is one block per compressed page (a page holds
// rows_per_block consecutive entries of a layer, contiguous in its layer block). The block list owns its
// pointers (a few thousand at 1M context); the rows themselves belong to the cache, on the cache's device.
// Valid while the cache rows do not move (contiguous store: until it grows; paged: for one engine step).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dsv4 {

struct RowBlocks {
  std::vector<const float*> blocks;  // base of each block, each f32 [rows_per_block, stride] (device of the cache)
  int64_t rows_per_block = 1;
  int64_t stride = 0;  // floats from one row of a block to the next (>= the row width)

  const float* row(int64_t s) const {
    return blocks[static_cast<size_t>(s / rows_per_block)] + (s % rows_per_block) * stride;
  }
  int64_t capacity() const { return static_cast<int64_t>(blocks.size()) * rows_per_block; }
};

}  // namespace dsv4
