// Sampler (sampler.h): per row, copy the logits, run steps 1-4 (process_logits), report logprobs from the
// processed row, then draw greedily or from filter_candidates() with u = philox_uniform(seed, n_output).
#include "sampling/sampler.h"

#include <cmath>
#include <exception>
#include <limits>

#include "core/check.h"
#include "core/parallel.h"
#include "sampling/logits_processor.h"
#include "sampling/philox.h"

namespace dsv4::sampling {
namespace {

// Buffers reused across the rows of one chunk.
struct RowScratch {
  std::vector<float> logits;          // f32 [vocab]
  std::vector<Candidate> candidates;  // up to [vocab]
};

SampleResult sample_row(const float* row, int64_t vocab_size, const SampleRow& r, RowScratch& s) {
  const SamplingParams& p = *r.params;
  s.logits.assign(row, row + vocab_size);
  for (float v : s.logits)
    check(!std::isnan(v) && v != std::numeric_limits<float>::infinity(), [&] { return "Sampler::sample: logits row has NaN or +inf"; });
  std::span<float> logits(s.logits);
  process_logits(logits, p, *r.state);
  SampleResult out;
  if (is_greedy(p)) {
    out.token = argmax(logits);
  } else {
    filter_candidates(logits, p, s.candidates);
    out.token = pick_candidate(s.candidates, philox_uniform(r.state->seed(), r.state->n_output()));
  }
  if (p.logprobs) {
    const double lse = log_sum_exp(logits);
    out.has_logprobs = true;
    out.logprob = static_cast<float>(static_cast<double>(logits[static_cast<size_t>(out.token)]) - lse);
    out.top_logprobs = top_logprobs(logits, lse, *p.logprobs);
  }
  return out;
}

}  // namespace

Sampler::Sampler(int64_t vocab_size) : vocab_size_(vocab_size) {
  check(vocab_size > 0, "Sampler: vocab_size must be positive");
}

std::vector<SampleResult> Sampler::sample(const SampleBatch& batch) const {
  const TensorView& t = batch.logits;
  check(t.dtype == DType::F32, "Sampler::sample: logits must be f32");
  check(t.shape.size() == 2, [&] { return "Sampler::sample: logits must be 2-D [n_rows, vocab_size], got " + shape_str(t.shape); });
  check(t.dim(1) == vocab_size_, [&] { return "Sampler::sample: logits dim 1 (vocab) is " + std::to_string(t.dim(1)) +
                                     ", sampler vocab_size is " + std::to_string(vocab_size_); });
  check(t.dim(0) == static_cast<int64_t>(batch.rows.size()),
        [&] { return "Sampler::sample: logits dim 0 (rows) is " + std::to_string(t.dim(0)) + ", batch has " +
            std::to_string(batch.rows.size()) + " rows"; });
  for (const SampleRow& r : batch.rows) check(r.params && r.state, "Sampler::sample: row without params or state");
  std::vector<SampleResult> out(batch.rows.size());
  // A failed check must not escape a pool worker (that would terminate): keep it and rethrow here.
  std::vector<std::exception_ptr> errors(out.size());
  const float* base = t.as<float>();
  parallel_for(static_cast<int64_t>(out.size()), [&](int64_t begin, int64_t end) {
    RowScratch scratch;
    for (int64_t i = begin; i < end; ++i) {
      try {
        out[static_cast<size_t>(i)] = sample_row(base + i * vocab_size_, vocab_size_, batch.rows[i], scratch);
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    }
  });
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

}  // namespace dsv4::sampling
