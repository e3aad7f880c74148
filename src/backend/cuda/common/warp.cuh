// Warp-level helpers shared by the kernel families.
#pragma once

namespace dsv4::cuda {

// Inclusive prefix sum over the 32 lanes of a full warp (every lane calls it): lane l gets v_0 + ... + v_l.
template <typename T>
__device__ __forceinline__ T warp_inclusive_sum(T v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const T n = __shfl_up_sync(0xffffffffu, v, off);
    if (lane >= off) v += n;
  }
  return v;
}

}  // namespace dsv4::cuda
