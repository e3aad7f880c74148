// Plain data of the CUDA sampler (docs/sampling.md is the contract, src/sampling the reference it must match).
// The backend is layer L1 and knows nothing of sampling::SamplingParams: the runtime (L4) resolves each request's
// parameters and history into one SampleRowParams per row plus a flat list of SampleEdit entries (the tokens
// whose logit is changed by logit bias, repetition penalty or presence/frequency penalties, each token once, with
// everything the kernel needs to apply steps 1-3 to it in the reference's order). No CUDA headers here.
#pragma once
#include <cstdint>

namespace dsv4::cuda {

inline constexpr int32_t kSampleMaxTopLogprobs = 20;

// SampleEdit::flags
inline constexpr uint32_t kEditBias = 1u;        // l += bias
inline constexpr uint32_t kEditRepetition = 2u;  // l = l > 0 ? l / r : l * r (token in prompt or output)
inline constexpr uint32_t kEditPresence = 4u;    // l -= frequency * count + presence (token in output)

struct SampleEdit {
  int32_t token = 0;   // [0, vocab); distinct within a row
  uint32_t flags = 0;  // kEdit*
  float bias = 0.0f;   // logit bias (kEditBias)
  int32_t count = 0;   // times generated so far (kEditPresence)
};

struct SampleRowParams {
  int64_t logits_row = 0;            // row of the logits tensor this request samples from
  int32_t greedy = 0;                // 1: argmax of the processed logits, no RNG, no filters
  float inv_temperature = 1.0f;      // 1.0f / temperature, computed on the host as the reference does
  int32_t top_k = 0;                 // <= 0 or >= #finite: off
  float top_p = 1.0f;                // (0, 1]; 1 = off
  float min_p = 0.0f;                // [0, 1]; 0 = off
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;                 // philox key
  uint64_t step = 0;                 // philox counter: tokens the request has generated so far
  int32_t edit_begin = 0;            // first entry of this row in the flat SampleEdit array
  int32_t n_edits = 0;
  int32_t n_logprobs = -1;           // -1: no logprobs; n in [0, 20]: chosen token's logprob + top n
};

// SampleRowResult::error
inline constexpr int32_t kSampleOk = 0;
inline constexpr int32_t kSampleNonFinite = 1;  // NaN or +inf in the processed row
inline constexpr int32_t kSampleNoFinite = 2;   // every value is -inf

struct SampleRowResult {
  int32_t token = -1;
  int32_t error = kSampleOk;
  float logprob = 0.0f;  // chosen token (when n_logprobs >= 0)
  int32_t n_top = 0;     // entries of top_* in use
  int32_t top_ids[kSampleMaxTopLogprobs] = {};
  float top_logprobs[kSampleMaxTopLogprobs] = {};
};

// Kernel parameters (passed const __grid_constant__); one CTA per row (sample_kernel) or a cluster per row
// (sample_greedy_kernel).
struct SampleParams {
  float* __restrict__ logits;                   // f32 [n_logit_rows, vocab]; edited tokens rewritten in place
  const SampleRowParams* __restrict__ rows;     // [n_rows]
  const SampleEdit* __restrict__ edits;         // [total edits], rows' slices by edit_begin / n_edits
  SampleRowResult* __restrict__ results;        // [n_rows]
  int32_t n_rows = 0;
  int32_t vocab = 0;
  int32_t greedy_only = 0;  // 1: every row greedy with n_logprobs < 0 (sample_greedy_kernel may run them)
};

}  // namespace dsv4::cuda
