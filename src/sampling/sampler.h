// Sampler: turns a batch of logits rows into one token per row, each row with its own SamplingParams and
// SamplingState. Rows are independent: a row's token depends only on its logits, its params and its state
// (seed and history), never on the other rows, so a seeded request gives the same tokens in any batch.
// Host-side f32. The sampler reads the states; the engine appends the chosen tokens (SamplingState::append).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "sampling/logprobs.h"
#include "sampling/sampling_params.h"
#include "sampling/sampling_state.h"

namespace dsv4::sampling {

struct SampleRow {
  const SamplingParams* params = nullptr;  // validated against the sampler's vocab_size
  const SamplingState* state = nullptr;
};

struct SampleBatch {
  TensorView logits;               // f32 [n_rows, vocab_size], row-major; not modified
  std::span<const SampleRow> rows;  // [n_rows]
};

struct SampleResult {
  int32_t token = -1;
  // Set when params.logprobs is: the chosen token's logprob and the top params.logprobs tokens (descending),
  // from the log-softmax of the processed logits (docs/sampling.md).
  bool has_logprobs = false;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top_logprobs;
};

class Sampler {
 public:
  explicit Sampler(int64_t vocab_size);

  // One result per row, in row order. Rows are processed in parallel (core/parallel.h).
  std::vector<SampleResult> sample(const SampleBatch& batch) const;

  int64_t vocab_size() const { return vocab_size_; }

 private:
  int64_t vocab_size_;
};

}  // namespace dsv4::sampling
