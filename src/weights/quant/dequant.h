// Dequantization of checkpoint weights to f32 (spec §7.2): FP8 e4m3 with 128x128 block scales, MXFP4
// (e2m1 nibbles, low nibble first, e8m0 scale per 1x32), and plain BF16/F16/F32. The CPU backend calls
// these row by row ("weights dequantized on the fly"); results are exact (every format value is an f32).
#pragma once
#include <cstdint>

#include "weights/model_weights.h"

namespace dsv4::weights {

// Writes rows [row_begin, row_end) of w as f32 into out ([row_end-row_begin, w.cols()], row-major).
// For a 1-D weight, rows are single elements. Precondition: w was bound (shapes/scales consistent).
void dequant_rows(const Weight& w, int64_t row_begin, int64_t row_end, float* out);

// Dequantizes the whole weight into a new vector (tests, small tensors).
std::vector<float> dequant_all(const Weight& w);

// Reads an integer tensor element (I64 or I32), e.g. tid2eid.
int64_t read_int(const Weight& w, int64_t index);

}  // namespace dsv4::weights
