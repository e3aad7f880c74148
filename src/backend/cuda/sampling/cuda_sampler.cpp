// CudaSampler (cuda_sampler.h): validation, buffer growth, upload, launch, one download.
#include "backend/cuda/sampling/cuda_sampler.h"

#include <algorithm>
#include <string>

#include "backend/cuda/ops/context.h"
#include "backend/cuda/sampling/launch.h"
#include "core/check.h"

namespace dsv4::cuda {
namespace {

void ensure(DeviceBuffer& b, size_t bytes) {
  if (b.bytes() < bytes) b = DeviceBuffer(bytes + bytes / 2);
}

void validate_rows(const Tensor& logits, std::span<const SampleRowParams> rows, size_t n_edits) {
  for (size_t k = 0; k < rows.size(); ++k) {
    const SampleRowParams& r = rows[k];
    const std::string at = "CudaSampler: row " + std::to_string(k) + ": ";
    check(r.logits_row >= 0 && r.logits_row < logits.dim(0),
          [&] { return at + "logits_row " + std::to_string(r.logits_row) + " outside [0, " + std::to_string(logits.dim(0)) + ")"; });
    check(r.edit_begin >= 0 && r.n_edits >= 0 && static_cast<size_t>(r.edit_begin) + r.n_edits <= n_edits,
          [&] { return at + "edit slice outside the edit list"; });
    check(r.n_logprobs >= -1 && r.n_logprobs <= kSampleMaxTopLogprobs, [&] { return at + "n_logprobs outside [-1, 20]"; });
    check(r.greedy || (r.top_p > 0.0f && r.top_p <= 1.0f), [&] { return at + "top_p outside (0, 1]"; });
  }
}

}  // namespace

std::vector<SampleRowResult> CudaSampler::sample(Tensor& logits, std::span<const SampleRowParams> rows,
                                                 std::span<const SampleEdit> edits) {
  check(logits.device() == Device::Cuda, "CudaSampler: logits must be on the CUDA device");
  check(logits.shape().size() == 2, [&] { return "CudaSampler: logits must be 2-D [n_rows, vocab], got " + shape_str(logits.shape()); });
  validate_rows(logits, rows, edits.size());
  std::vector<SampleRowResult> out(rows.size());
  if (rows.empty()) return out;
  CudaContext& ctx = CudaContext::get();
  cudaStream_t s = ctx.stream();
  ensure(rows_, rows.size_bytes());
  ensure(edits_, edits.size_bytes() + sizeof(SampleEdit));
  ensure(results_, rows.size() * sizeof(SampleRowResult));
  rows_.upload(rows.data(), rows.size_bytes(), s);
  if (!edits.empty()) edits_.upload(edits.data(), edits.size_bytes(), s);
  const bool greedy_only = std::all_of(rows.begin(), rows.end(),
                                       [](const SampleRowParams& r) { return r.greedy != 0 && r.n_logprobs < 0; });
  launch_sample({.logits = logits.data(), .rows = rows_.as<SampleRowParams>(), .edits = edits_.as<SampleEdit>(),
                 .results = results_.as<SampleRowResult>(), .n_rows = static_cast<int32_t>(rows.size()),
                 .vocab = static_cast<int32_t>(logits.dim(1)), .greedy_only = greedy_only ? 1 : 0},
                s);
  ctx.download_bytes(out.data(), results_.data(), rows.size() * sizeof(SampleRowResult));
  for (size_t k = 0; k < out.size(); ++k)
    check(out[k].error == kSampleOk, [&] { return "CudaSampler: row " + std::to_string(k) + " (logits row " +
                                         std::to_string(rows[k].logits_row) + ") has " +
                                         (out[k].error == kSampleNonFinite ? "NaN or +inf" : "no finite value"); });
  return out;
}

}  // namespace dsv4::cuda
