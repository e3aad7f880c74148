// DeviceSampler: the runtime's bridge from sampling::SamplingParams / SamplingState (L3) to the CUDA sampler
// (backend/cuda/sampling, L1), which knows only plain per-row data. For each row it resolves the parameters
// (greedy, 1/temperature, filters, seed, step = n_output) and merges the request's logit bias, repetition
// history (prompt and output) and output counts into one edit per token, in the order the reference applies
// them; then it samples on the device logits and converts the results back to sampling::SampleResult.
// The CUDA parts are compiled only with DSV4_HAVE_CUDA: without it, constructing a DeviceSampler panics and
// nothing here needs a CUDA header.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "sampling/sampler.h"

namespace dsv4::runtime {

class DeviceSampler {
 public:
  explicit DeviceSampler(int64_t vocab_size);
  ~DeviceSampler();
  DeviceSampler(const DeviceSampler&) = delete;
  DeviceSampler& operator=(const DeviceSampler&) = delete;

  // logits: f32 [n_logit_rows, vocab_size] on Device::Cuda; rows[k] samples from logits row logit_rows[k].
  // The logits are rewritten in place at the tokens a row's bias or penalties change (sample once per tensor).
  // Same results as sampling::Sampler on the same rows (docs/sampling.md, "GPU sampler").
  std::vector<sampling::SampleResult> sample(Tensor& logits, std::span<const int64_t> logit_rows,
                                             std::span<const sampling::SampleRow> rows);

 private:
  struct Impl;
  int64_t vocab_size_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv4::runtime
