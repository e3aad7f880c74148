// CudaSampler: samples one token per row from logits that stay on the device (docs/sampling.md; the host
// sampler in src/sampling is the reference it matches). The caller passes plain per-row parameters and the
// flat edit list (SampleRowParams / SampleEdit, params.h: the runtime builds them from SamplingParams and
// SamplingState); the sampler uploads them, runs sample_kernel on the CUDA context's stream and downloads only
// the per-row results (token, error, logprobs): one small copy back. Owns its parameter/result buffers and
// grows them on demand; not thread-safe (one per engine loop).
#pragma once
#include <span>
#include <vector>

#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/sampling/params.h"
#include "core/tensor.h"

namespace dsv4::cuda {

class CudaSampler {
 public:
  // logits: f32 [n_logit_rows, vocab] on Device::Cuda. The tokens listed in `edits` are rewritten in place with
  // their processed value (steps 1-3), so a tensor must not be sampled twice. rows: [n_rows], each with
  // logits_row < n_logit_rows and an edit slice inside `edits`. Fails (check) on a row with NaN, +inf or no
  // finite value, naming the row. Synchronizes the stream (the results are read on the host).
  std::vector<SampleRowResult> sample(Tensor& logits, std::span<const SampleRowParams> rows,
                                      std::span<const SampleEdit> edits);

 private:
  DeviceBuffer rows_, edits_, results_;
};

}  // namespace dsv4::cuda
