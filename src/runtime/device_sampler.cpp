// DeviceSampler (device_sampler.h): SamplingParams + SamplingState -> SampleRowParams + SampleEdit lists
// (device_sample_rows.h), CudaSampler, SampleRowResult -> SampleResult.
#include "runtime/device_sampler.h"

#include "core/check.h"
#include "runtime/device_sample_rows.h"
#ifdef DSV4_HAVE_CUDA
#include "backend/cuda/sampling/cuda_sampler.h"
#endif

namespace dsv4::runtime {

#ifdef DSV4_HAVE_CUDA
namespace {

sampling::SampleResult to_result(const cuda::SampleRowResult& r, bool logprobs) {
  sampling::SampleResult out;
  out.token = r.token;
  if (!logprobs) return out;
  out.has_logprobs = true;
  out.logprob = r.logprob;
  for (int32_t i = 0; i < r.n_top; ++i) out.top_logprobs.push_back({r.top_ids[i], r.top_logprobs[i]});
  return out;
}

}  // namespace

struct DeviceSampler::Impl {
  cuda::CudaSampler sampler;
  DeviceSampleRows plain;
};

DeviceSampler::DeviceSampler(int64_t vocab_size) : vocab_size_(vocab_size), impl_(std::make_unique<Impl>()) {}

std::vector<sampling::SampleResult> DeviceSampler::sample(Tensor& logits, std::span<const int64_t> logit_rows,
                                                          std::span<const sampling::SampleRow> rows) {
  check(logit_rows.size() == rows.size(), "DeviceSampler: one logits row per sampled row");
  check(logits.shape().size() == 2 && logits.dim(1) == vocab_size_,
        "DeviceSampler: logits must be [n, " + std::to_string(vocab_size_) + "], got " + shape_str(logits.shape()));
  Impl& m = *impl_;
  build_device_rows(rows, logit_rows, m.plain);
  const auto res = m.sampler.sample(logits, m.plain.rows, m.plain.edits);
  std::vector<sampling::SampleResult> out;
  out.reserve(res.size());
  for (size_t k = 0; k < res.size(); ++k) out.push_back(to_result(res[k], rows[k].params->logprobs.has_value()));
  return out;
}

#else

struct DeviceSampler::Impl {};

DeviceSampler::DeviceSampler(int64_t vocab_size) : vocab_size_(vocab_size) {
  panic("DeviceSampler: this build has no CUDA backend (configure with -DDSV4_CUDA=ON)");
}

std::vector<sampling::SampleResult> DeviceSampler::sample(Tensor&, std::span<const int64_t>,
                                                          std::span<const sampling::SampleRow>) {
  panic("DeviceSampler: this build has no CUDA backend");
}

#endif

DeviceSampler::~DeviceSampler() = default;

}  // namespace dsv4::runtime
