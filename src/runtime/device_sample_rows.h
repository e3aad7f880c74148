// Plain rows for the CUDA sampler (backend/cuda/sampling/params.h, plain data, no CUDA headers) built from the
// requests' SamplingParams and SamplingState: one SampleRowParams per row and, per row, one SampleEdit per token
// that steps 1-3 of docs/sampling.md change (logit bias, repetition penalty over prompt + output, presence /
// frequency over output counts), sorted by token. apply_device_edits is the host model of what sample_kernel
// does with them; the unit test checks it against sampling::process_logits, so the GPU test only has to check
// the kernel.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "backend/cuda/sampling/params.h"
#include "sampling/sampler.h"

namespace dsv4::runtime {

struct DeviceSampleRows {
  std::vector<cuda::SampleRowParams> rows;  // [n_rows]
  std::vector<cuda::SampleEdit> edits;      // rows' slices, each sorted by token
};

// rows[k] samples from logits row logit_rows[k]; `out` is cleared and refilled (reused across steps).
void build_device_rows(std::span<const sampling::SampleRow> rows, std::span<const int64_t> logit_rows,
                       DeviceSampleRows& out);

// Steps 1-4 on one row f32 [vocab] as sample_kernel computes them (edits in place, then temperature).
void apply_device_edits(std::span<float> logits, const cuda::SampleRowParams& r,
                        std::span<const cuda::SampleEdit> edits);

}  // namespace dsv4::runtime
