// One list of a ResolveRowsParams (params.h) on the device: entry j is direct row j below nd (e.g. a query's window
// rows), else compressed entry e = selected[i, j - nd] (or j - nd) through list i's row blocks. Shared by
// resolve_rows_kernel (which writes the pointers of every list) and the 16-head sparse-attention kernel (which
// resolves its own rows, SparseAttnParams::rows, instead of waiting for that launch). Block rows of a list with
// tag_fp8 come back tagged (Fp8Kv rows, attention/kv_fp8.cuh).
#pragma once
#include <cstdint>

#include "backend/cuda/attention/kv_fp8.cuh"
#include "backend/cuda/attention/params.h"

namespace dsv4::cuda {

struct KeyRowList {
  int32_t d0 = 0, nd = 0;
  RowBlocksDesc b;

  __device__ __forceinline__ static KeyRowList of(const ResolveRowsParams& r, int i) {
    KeyRowList k;
    k.d0 = r.direct_offsets ? r.direct_offsets[i] : 0;
    k.nd = r.direct_offsets ? r.direct_offsets[i + 1] - k.d0 : 0;
    k.b = r.desc[i];
    return k;
  }
  // Entry j (< the list's length) of list i.
  __device__ __forceinline__ const float* row(const ResolveRowsParams& r, int i, int j) const {
    if (j < nd) return r.direct[d0 + j];
    const int c = j - nd;
    const int e = r.selected ? r.selected[int64_t(i) * r.sel_ld + c] : c;
    const int blk = e / b.rows_per_block;
    const float* k = r.blocks[b.block_begin + blk] + int64_t(e - blk * b.rows_per_block) * b.stride;
    return r.tag_fp8 ? kv_fp8_tag(k) : k;
  }
};

}  // namespace dsv4::cuda
