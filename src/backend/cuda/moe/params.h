// Parameter structs of the MoE kernel family. One struct per kernel, passed as `const __grid_constant__`;
// every pointer is __restrict__ with its dtype and shape.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace dsv4::cuda {

// Decode-path routed-expert GEMV on MXFP4 weights (spec §2.7, §7.2): for each slot s (a (token, expert) pair
// of the routing), y[s] = W_{slot_expert[s]} · x[slot_token[s]], with x the act_quant'ed input (FP8 codes and
// f32 per-128 scales, the GEMM layout) and W e2m1 nibbles (low nibble = even k) with an e8m0 scale per 1x32.
// f32 accumulation, each 32-block's partial scaled by its e8m0 scale; bf16 output.
struct Mxfp4GemvParams {
  const uint8_t* __restrict__ w = nullptr;          // packed e2m1 [n_experts, N, K/2]
  const uint8_t* __restrict__ w_scale = nullptr;    // e8m0 [n_experts, N, K/32]
  const uint8_t* __restrict__ xq = nullptr;         // e4m3 [T, K]
  const float* __restrict__ x_scale = nullptr;      // f32 [K/128, T]
  const int32_t* __restrict__ slot_expert = nullptr;  // i32 [n_slots], in [0, n_experts)
  const int32_t* __restrict__ slot_token = nullptr;   // i32 [n_slots], in [0, T)
  __nv_bfloat16* __restrict__ y = nullptr;          // bf16 [n_slots, N]
  int32_t n_slots = 0;
  int32_t N = 0;                          // multiple of kMxfp4RowsPerCta
  int32_t K = 0;                          // multiple of 1024, at most kMxfp4MaxK
  int32_t T = 0;                          // tokens in xq
  int32_t n_experts = 0;
};

}  // namespace dsv4::cuda
