// Host entry points of the generic linear family (linear_params.h). All launches are asynchronous on `stream`,
// allocate nothing and validate shapes first (a message names the dimension that disagrees).
//
// Capabilities:
//   launch_linear_gemv        any M, N, K, groups; every WeightFormat (MXFP4: K % 32 == 0). Vectorized when
//                             K, x_ld, x_group_stride are multiples of 4 and x is 16-byte aligned.
//   launch_act_quant_f32 /    K % 128 == 0, x (and q/out) 16-byte aligned.
//   launch_fp8_fake_quant
//   the others                any size.
#pragma once
#include <cuda_runtime_api.h>

#include "backend/cuda/gemm/linear_params.h"

namespace dsv4::cuda {

void launch_linear_gemv(const LinearGemvParams& p, cudaStream_t stream);
// Whether launch_linear_gemv takes linear_gemv16_kernel for p (the only one taking a second weight, w_hi).
bool linear_gemv16_applies(const LinearGemvParams& p);
void launch_act_quant_f32(const ActQuantF32Params& p, cudaStream_t stream);
void launch_fp8_fake_quant(const Fp8FakeQuantParams& p, cudaStream_t stream);
void launch_split_bf16(const SplitBf16Params& p, cudaStream_t stream);
void launch_weight_to_bf16(const WeightToBf16Params& p, cudaStream_t stream);
void launch_widen_bf16(const WidenBf16Params& p, cudaStream_t stream);
void launch_add_halves(const AddHalvesParams& p, cudaStream_t stream);
void launch_round_bf16(const RoundBf16Params& p, cudaStream_t stream);
void launch_embed(const EmbedParams& p, cudaStream_t stream);

}  // namespace dsv4::cuda
