// build_device_rows / apply_device_edits (device_sample_rows.h).
#include "runtime/device_sample_rows.h"

#include <algorithm>

#include "core/check.h"

namespace dsv4::runtime {
namespace {

// Appends row r's edits to `edits`, one entry per token, sorted by token.
void append_edits(const sampling::SamplingParams& p, const sampling::SamplingState& st,
                  std::vector<cuda::SampleEdit>& edits) {
  const size_t begin = edits.size();
  for (const auto& [id, b] : p.logit_bias) edits.push_back({.token = id, .flags = cuda::kEditBias, .bias = b});
  if (p.repetition_penalty != 1.0f) {
    for (int32_t id : st.prompt_tokens()) edits.push_back({.token = id, .flags = cuda::kEditRepetition});
    for (const auto& [id, count] : st.output_counts()) edits.push_back({.token = id, .flags = cuda::kEditRepetition});
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f)
    for (const auto& [id, count] : st.output_counts())
      edits.push_back({.token = id, .flags = cuda::kEditPresence, .count = count});
  std::sort(edits.begin() + static_cast<std::ptrdiff_t>(begin), edits.end(),
            [](const cuda::SampleEdit& a, const cuda::SampleEdit& b) { return a.token < b.token; });
  // Merge entries of one token: flags OR-ed; bias and count come from the entry that carries them.
  size_t out = begin;
  for (size_t i = begin; i < edits.size(); ++i) {
    if (out > begin && edits[out - 1].token == edits[i].token) {
      cuda::SampleEdit& m = edits[out - 1];
      m.flags |= edits[i].flags;
      if (edits[i].flags & cuda::kEditBias) m.bias = edits[i].bias;
      if (edits[i].flags & cuda::kEditPresence) m.count = edits[i].count;
      continue;
    }
    edits[out++] = edits[i];
  }
  edits.resize(out);
}

cuda::SampleRowParams row_params(const sampling::SamplingParams& p, const sampling::SamplingState& st) {
  const bool greedy = sampling::is_greedy(p);
  return {.greedy = greedy ? 1 : 0,
          .inv_temperature = greedy ? 1.0f : 1.0f / p.temperature,
          .top_k = p.top_k,
          .top_p = p.top_p,
          .min_p = p.min_p,
          .repetition_penalty = p.repetition_penalty,
          .presence_penalty = p.presence_penalty,
          .frequency_penalty = p.frequency_penalty,
          .seed = st.seed(),
          .step = static_cast<uint64_t>(st.n_output()),
          .n_logprobs = p.logprobs ? *p.logprobs : -1};
}

}  // namespace

void build_device_rows(std::span<const sampling::SampleRow> rows, std::span<const int64_t> logit_rows,
                       DeviceSampleRows& out) {
  check(logit_rows.size() == rows.size(), "build_device_rows: one logits row per sampled row");
  out.rows.clear();
  out.edits.clear();
  for (size_t k = 0; k < rows.size(); ++k) {
    check(rows[k].params && rows[k].state, "build_device_rows: row without params or state");
    cuda::SampleRowParams r = row_params(*rows[k].params, *rows[k].state);
    r.logits_row = logit_rows[k];
    r.edit_begin = static_cast<int32_t>(out.edits.size());
    append_edits(*rows[k].params, *rows[k].state, out.edits);
    r.n_edits = static_cast<int32_t>(out.edits.size()) - r.edit_begin;
    out.rows.push_back(r);
  }
}

void apply_device_edits(std::span<float> logits, const cuda::SampleRowParams& r,
                        std::span<const cuda::SampleEdit> edits) {
  for (const cuda::SampleEdit& e : edits) {
    float v = logits[static_cast<size_t>(e.token)];
    if (e.flags & cuda::kEditBias) v += e.bias;
    if (e.flags & cuda::kEditRepetition) v = v > 0.0f ? v / r.repetition_penalty : v * r.repetition_penalty;
    if (e.flags & cuda::kEditPresence) v -= r.frequency_penalty * static_cast<float>(e.count) + r.presence_penalty;
    logits[static_cast<size_t>(e.token)] = v;
  }
  if (r.greedy) return;
  for (float& v : logits) v *= r.inv_temperature;
}

}  // namespace dsv4::runtime
