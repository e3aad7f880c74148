// The CUDA sampler's plain rows (runtime/device_sample_rows.h) against the host reference: for random requests
// (logit bias, repetition penalty over prompt + output, presence / frequency over output counts, temperature,
// greedy), applying the built edits as sample_kernel does must give bit-identical processed logits to
// sampling::process_logits, and the row parameters must carry the seed, the step and the filters.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "runtime/device_sample_rows.h"
#include "sampling/logits_processor.h"

namespace dsv4::runtime {
namespace {

TEST(DeviceSampleRows, EditsReproduceProcessLogits) {
  std::mt19937_64 rng(5);
  const int64_t V = 512;
  for (int iter = 0; iter < 300; ++iter) {
    sampling::SamplingParams p;
    p.temperature = std::array<float, 4>{0.0f, 0.7f, 1.0f, 1.9f}[rng() % 4];
    if (rng() % 2) p.repetition_penalty = std::array<float, 3>{1.3f, 0.7f, 1.0f}[rng() % 3];
    if (rng() % 2) p.presence_penalty = 0.37f;
    if (rng() % 2) p.frequency_penalty = -0.61f;
    for (int i = static_cast<int>(rng() % 20); i > 0; --i)
      p.logit_bias[static_cast<int32_t>(rng() % V)] = std::uniform_real_distribution<float>(-100, 100)(rng);
    p.top_k = static_cast<int32_t>(rng() % 5);
    p.logprobs = static_cast<int32_t>(rng() % 21);
    std::vector<int32_t> prompt(rng() % 50);
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % 64);
    sampling::SamplingState st(p, prompt, rng());
    for (int i = static_cast<int>(rng() % 40); i > 0; --i) st.append(static_cast<int32_t>(rng() % 96));
    std::vector<float> want(V);
    std::normal_distribution<float> g(0.0f, 4.0f);
    for (float& v : want) v = g(rng);
    std::vector<float> got = want;
    sampling::process_logits(want, p, st);
    const sampling::SampleRow row{&p, &st};
    const int64_t logit_row = 3;
    DeviceSampleRows plain;
    build_device_rows({&row, 1}, {&logit_row, 1}, plain);
    ASSERT_EQ(plain.rows.size(), 1u);
    const cuda::SampleRowParams& r = plain.rows[0];
    EXPECT_EQ(r.logits_row, 3);
    EXPECT_EQ(r.seed, st.seed());
    EXPECT_EQ(r.step, static_cast<uint64_t>(st.n_output()));
    EXPECT_EQ(r.greedy, sampling::is_greedy(p) ? 1 : 0);
    EXPECT_EQ(r.top_k, p.top_k);
    EXPECT_EQ(r.n_logprobs, *p.logprobs);
    std::span<const cuda::SampleEdit> edits(plain.edits.data() + r.edit_begin, static_cast<size_t>(r.n_edits));
    for (size_t i = 1; i < edits.size(); ++i) ASSERT_LT(edits[i - 1].token, edits[i].token) << "sorted, distinct";
    apply_device_edits(got, r, edits);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), sizeof(float) * V), 0) << "iteration " << iter;
  }
}

}  // namespace
}  // namespace dsv4::runtime
