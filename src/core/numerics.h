// Activation numerics of the official DeepSeek-V4 reference (spec §2.3-2.5): FP8 and FP4 "fake-quant"
// (quantize then dequantize in place) with ue8m0 power-of-two block scales, and the Walsh-Hadamard rotation.
// These operate on f32 buffers whose values are already bf16-representable where the reference says so;
// results are rounded to bf16 exactly as the reference does (x <- bf16(q * s)).
#pragma once
#include <cstddef>
#include <cstdint>

namespace dsv4 {

// FP8 e4m3 fake-quant of x[0..n) in blocks of `block` (n % block == 0), spec §2.3 (later version):
// a = max(max|x_b|, 1e-4); s = ue8m0_ceil(a * fl32(1/448)); x_i <- bf16(e4m3(x_i / s) * s).
void fp8_fake_quant(float* x, size_t n, size_t block);

// FP8 act_quant for a GEMM input: writes codes q[n] (e4m3 bytes) and one e8m0 scale byte per block.
void fp8_act_quant(const float* x, size_t n, size_t block, uint8_t* q, uint8_t* scales);

// FP4 e2m1 fake-quant in blocks of 32 (spec §2.4): a = max(max|x|, 6*2^-126); s = ue8m0_ceil(a * fl32(1/6));
// x_i <- bf16(e2m1(x_i / s) * s).
void fp4_fake_quant(float* x, size_t n, size_t block = 32);

// FP4 quantization of x[0..n) (n % 32 == 0) in the storage form of spec §2.4 / §9.2: per block of 32 the e8m0
// scale byte of s = ue8m0_ceil(max(amax, 6*2^-126) * fl32(1/6)) and the e2m1 codes of clamp(x/s, -6, 6), element
// 2j in the low nibble of codes[j]. A block holding NaN or ±inf gets scale 0xFF (NaN) and zero codes.
// fp4_unpack(fp4_pack(x)) equals fp4_fake_quant(x) bit for bit (also when x is already fake-quantized: the
// packing of a fake-quantized row decodes to itself).
void fp4_pack(const float* x, size_t n, uint8_t* codes, uint8_t* scales);
// x[i] = e2m1(code i) * 2^(scale - 127) (exact); a 0xFF scale byte gives NaN for its whole block.
void fp4_unpack(const uint8_t* codes, const uint8_t* scales, size_t n, float* x);
// The same for one Mxfp4 row of dim values (core/row_blocks.h: codes, scales, zero pad; mxfp4_row_bytes(dim)).
void fp4_pack_row(const float* x, size_t dim, void* row);
void fp4_unpack_row(const void* row, size_t dim, float* x);
// One Fp8Kv row (core/row_blocks.h) of dim values whose first nope = dim - rope_dim are FP8 fake-quantized in
// blocks of 64 (spec §5.3 step 4) and the rest bf16 values: fp8_act_quant codes and e8m0 scales of the nope part
// (lossless for fake-quantized input: each block's scale is the one fp8_fake_quant used or half of it), the rope
// part as bf16, zero padding. fp8kv_unpack_row(fp8kv_pack_row(x)) == x bit for bit for such rows; a block with
// NaN or ±inf decodes to NaN.
void fp8kv_pack_row(const float* x, size_t dim, size_t rope_dim, void* row);
void fp8kv_unpack_row(const void* row, size_t dim, size_t rope_dim, float* x);

// In-place orthonormal Walsh-Hadamard transform of x[0..n), n a power of two (spec §2.5): Sylvester order,
// butterflies (a,b)->(a+b,a-b) for strides 1,2,...,n/2 in f32, then multiply by 1/sqrt(n).
// When round_to_bf16 is set the result is rounded to bf16 (the reference's bf16-out kernel).
void hadamard_inplace(float* x, size_t n, bool round_to_bf16);

}  // namespace dsv4
