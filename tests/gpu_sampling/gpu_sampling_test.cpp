// GPU sampler vs the host reference (label gpu; skipped without a CUDA device). Random logits rows (vocab 6144
// and 129280, 1..256 rows; gaussian, quantized with many ties, flat, huge-magnitude, rows with -inf entries) and
// random parameters (greedy, temperature, top-k, top-p, min-p and their combinations, repetition / presence /
// frequency penalties over random prompt and output histories, logit_bias in [-100, 100], logprobs none or
// 0..20, random seeds and steps) go through runtime::DeviceSampler on the device and sampling::Sampler on the
// host: tokens and top-logprob ids must be identical, logprobs within 1e-5. Then the engine on the embedded
// model on CUDA must give the same tokens and logprobs with device sampling on and off (requests one at a time).
// Prints "[gpu-sampling] PASS|FAIL ..." lines for tools/gpu_run.sh.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <random>
#include <string>

#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/ops/context.h"
#include "runtime/device_sampler.h"
#include "runtime/engine.h"
#include "sampling/sampler.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;
using sampling::SamplingParams;
using sampling::SamplingState;

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// One row of logits of a random kind.
void fill_row(std::mt19937_64& rng, float* row, int64_t V) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  const int kind = static_cast<int>(rng() % 6);
  const float sigma = std::array<float, 4>{1.0f, 3.0f, 8.0f, 0.3f}[rng() % 4];
  for (int64_t i = 0; i < V; ++i) {
    float v = g(rng) * sigma;
    if (kind == 1) v = std::round(v * 2.0f) * 0.5f;        // many ties
    if (kind == 2) v = 1.25f;                               // flat
    if (kind == 3) v = g(rng) * 2e4f;                       // huge: most weights underflow
    if (kind == 4 && rng() % 7 == 0) v = -std::numeric_limits<float>::infinity();
    if (kind == 5) v = std::round(v) + ((rng() % 50 == 0) ? 12.0f : 0.0f);  // a few high ties
    row[i] = v;
  }
  if (kind == 4) row[rng() % V] = 2.0f;  // at least one finite value
}

// greedy: temperature 0 and no logprobs (the rows sample_greedy_kernel takes when a whole batch is like that).
SamplingParams random_params(std::mt19937_64& rng, int64_t V, bool greedy) {
  SamplingParams p;
  auto pick = [&](auto... v) {
    const std::array<float, sizeof...(v)> a{static_cast<float>(v)...};
    return a[rng() % a.size()];
  };
  const int mode = static_cast<int>(rng() % 8);
  p.temperature = mode == 0 ? 0.0f : pick(0.7, 1.0, 1.5, 0.25, 2.0);
  if (mode == 2 || mode == 5 || mode == 7) p.top_k = static_cast<int32_t>(pick(1, 2, 5, 50, 1000, V, V + 7, -1));
  if (mode == 3 || mode == 5 || mode == 6) p.top_p = pick(0.1, 0.5, 0.9, 0.95, 0.999, 1.0);
  if (mode == 4 || mode == 6 || mode == 7) p.min_p = pick(0.0, 0.01, 0.05, 0.3, 1.0);
  if (rng() % 3 == 0) p.repetition_penalty = pick(1.3, 0.8, 2.0);
  if (rng() % 3 == 0) p.presence_penalty = pick(-2.0, -0.5, 0.7, 2.0);
  if (rng() % 3 == 0) p.frequency_penalty = pick(-1.0, 0.3, 2.0);
  if (rng() % 3 == 0) {
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i)
      p.logit_bias[static_cast<int32_t>(rng() % V)] =
          rng() % 4 == 0 ? pick(-100, 100) : std::uniform_real_distribution<float>(-100, 100)(rng);
  }
  if (rng() % 2 == 0) p.logprobs = static_cast<int32_t>(rng() % 21);
  if (greedy) p.temperature = 0.0f, p.logprobs.reset();
  return p;
}

SamplingState random_state(std::mt19937_64& rng, const SamplingParams& p, int64_t V) {
  std::vector<int32_t> prompt(rng() % 300);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % (rng() % 2 ? 64 : V));
  SamplingState st(p, prompt, rng());
  const int n_out = static_cast<int>(rng() % 200);
  for (int i = 0; i < n_out; ++i) st.append(static_cast<int32_t>(rng() % (rng() % 2 ? 64 : V)));
  return st;
}

struct Tally {
  int64_t rows = 0, token_mismatch = 0, logprob_mismatch = 0, top_mismatch = 0;
  double max_logprob_err = 0;
};

// One batch: the same rows through both samplers; mismatches are counted and the first few printed.
void compare_batch(std::mt19937_64& rng, int64_t V, int64_t n_rows, runtime::DeviceSampler& dev, Tally& t,
                   bool greedy) {
  HostTensor logits({n_rows, V});
  std::vector<SamplingParams> params;
  std::vector<SamplingState> states;
  params.reserve(static_cast<size_t>(n_rows));
  states.reserve(static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r) {
    fill_row(rng, logits.row(r), V);
    params.push_back(random_params(rng, V, greedy));
    states.push_back(random_state(rng, params.back(), V));
  }
  std::vector<sampling::SampleRow> rows;
  std::vector<int64_t> logit_rows;
  for (int64_t r = 0; r < n_rows; ++r) {
    rows.push_back({&params[static_cast<size_t>(r)], &states[static_cast<size_t>(r)]});
    logit_rows.push_back(r);
  }
  // Device rows in reverse order of the logits rows: the result must not depend on the row position.
  std::reverse(logit_rows.begin(), logit_rows.end());
  std::vector<sampling::SampleRow> dev_rows(rows.rbegin(), rows.rend());
  Tensor d = logits.to(Device::Cuda);
  const auto want = sampling::Sampler(V).sample({.logits = TensorView{logits.data(), DType::F32, logits.shape()},
                                                 .rows = rows});
  auto got = dev.sample(d, logit_rows, dev_rows);
  std::reverse(got.begin(), got.end());
  for (size_t k = 0; k < want.size(); ++k) {
    ++t.rows;
    const auto &w = want[k], &g = got[k];
    const SamplingParams& p = params[k];
    bool bad = false;
    if (w.token != g.token) ++t.token_mismatch, bad = true;
    if (w.has_logprobs != g.has_logprobs || w.top_logprobs.size() != g.top_logprobs.size()) {
      ++t.top_mismatch, bad = true;
    } else if (w.has_logprobs) {
      double err = std::abs(static_cast<double>(w.logprob) - g.logprob);
      bool ids_ok = true;
      for (size_t i = 0; i < w.top_logprobs.size(); ++i) {
        ids_ok &= w.top_logprobs[i].token == g.top_logprobs[i].token;
        err = std::max(err, std::abs(static_cast<double>(w.top_logprobs[i].logprob) - g.top_logprobs[i].logprob));
      }
      if (!(err <= 1e-5)) ++t.logprob_mismatch, bad = true;
      if (!ids_ok) ++t.top_mismatch, bad = true;
      if (std::isfinite(err)) t.max_logprob_err = std::max(t.max_logprob_err, err);
    }
    if (bad && t.token_mismatch + t.top_mismatch + t.logprob_mismatch <= 10)
      std::printf("[gpu-sampling] mismatch V=%lld row %zu: host %d gpu %d (T=%g k=%d p=%g min_p=%g rep=%g pres=%g "
                  "freq=%g bias=%zu logprobs=%d step=%lld)\n",
                  static_cast<long long>(V), k, w.token, g.token, p.temperature, p.top_k, p.top_p, p.min_p,
                  p.repetition_penalty, p.presence_penalty, p.frequency_penalty, p.logit_bias.size(),
                  p.logprobs.value_or(-1), static_cast<long long>(states[k].n_output()));
  }
}

void run_random(int64_t V, int n_batches, uint64_t seed, bool greedy = false) {
  cuda::CudaContext::get();
  runtime::DeviceSampler dev(V);
  std::mt19937_64 rng(seed);
  Tally t;
  const auto t0 = std::chrono::steady_clock::now();
  for (int b = 0; b < n_batches; ++b) {
    const int64_t n_rows = std::array<int64_t, 6>{1, 2, 7, 64, 129, 256}[static_cast<size_t>(b) % 6];
    compare_batch(rng, V, n_rows, dev, t, greedy);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bool ok = t.token_mismatch == 0 && t.logprob_mismatch == 0 && t.top_mismatch == 0;
  std::printf("[gpu-sampling] %s random%s V=%lld: %lld rows, token mismatches %lld, logprob mismatches %lld, "
              "top-id mismatches %lld, max logprob err %.3g (%.1f s)\n",
              ok ? "PASS" : "FAIL", greedy ? " greedy" : "", static_cast<long long>(V), static_cast<long long>(t.rows),
              static_cast<long long>(t.token_mismatch), static_cast<long long>(t.logprob_mismatch),
              static_cast<long long>(t.top_mismatch), t.max_logprob_err, s);
  EXPECT_EQ(t.token_mismatch, 0);
  EXPECT_EQ(t.logprob_mismatch, 0);
  EXPECT_EQ(t.top_mismatch, 0);
}

TEST(GpuSampling, MatchesHostSamplerSmallVocab) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  run_random(6144, 60, 1);
}

TEST(GpuSampling, MatchesHostSamplerDeepSeekVocab) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  run_random(129280, 12, 2);
}

// Whole batches of greedy rows (penalties, biases, ties, -inf rows as above): one cluster per row up to 16 rows
// (batches of 1, 2 and 7 rows), one CTA per row above (64, 129, 256).
TEST(GpuSampling, GreedyBatchesMatchHostSampler) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  run_random(129280, 12, 3, true);
  run_random(6144, 12, 4, true);  // below the cluster kernel's vocabulary: one CTA per row
  run_random(32770, 6, 5, true);  // vocab % 4 != 0: unaligned rows, chunks of 4100
}

TEST(GpuSampling, NonFiniteRowFails) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  cuda::CudaContext::get();
  const int64_t V = 1000;
  HostTensor logits({1, V});
  logits.row(0)[17] = std::numeric_limits<float>::quiet_NaN();
  SamplingParams p;
  SamplingState st(p, {}, 1);
  const sampling::SampleRow row{&p, &st};
  const int64_t lr = 0;
  Tensor d = logits.to(Device::Cuda);
  runtime::DeviceSampler dev(V);
  bool threw = false;
  try {
    dev.sample(d, {&lr, 1}, {&row, 1});
  } catch (const std::exception&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  std::printf("[gpu-sampling] %s NaN row is an error\n", threw ? "PASS" : "FAIL");
}

// The cluster kernel's errors: a NaN in the last chunk of a greedy row, then a row of -inf only.
TEST(GpuSampling, GreedyClusterRowErrors) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  cuda::CudaContext::get();
  const int64_t V = 129280;
  SamplingParams p;
  p.temperature = 0.0f;
  SamplingState st(p, {}, 1);
  const sampling::SampleRow row{&p, &st};
  const int64_t lr = 0;
  runtime::DeviceSampler dev(V);
  for (int c = 0; c < 2; ++c) {
    HostTensor logits({1, V});
    if (c == 0) {
      logits.row(0)[V - 3] = std::numeric_limits<float>::quiet_NaN();
    } else {
      for (int64_t i = 0; i < V; ++i) logits.row(0)[i] = -std::numeric_limits<float>::infinity();
    }
    Tensor d = logits.to(Device::Cuda);
    std::string msg;
    try {
      dev.sample(d, {&lr, 1}, {&row, 1});
    } catch (const std::exception& e) {
      msg = e.what();
    }
    const bool ok = msg.find(c == 0 ? "NaN or +inf" : "no finite value") != std::string::npos;
    EXPECT_TRUE(ok) << msg;
    std::printf("[gpu-sampling] %s greedy row with %s is an error\n", ok ? "PASS" : "FAIL",
                c == 0 ? "a NaN" : "only -inf");
  }
}

struct EngineRun {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<float>> logprobs;
};

EngineRun run_engine(const fs::path& model, bool device_sampling) {
  auto eng = runtime::Engine::create({.model_dir = model, .numerics = backend::Numerics{}, .device = Device::Cuda,
                                      .kv_memory_bytes = int64_t{256} << 20, .max_running = 8,
                                      .max_tokens_per_step = 256, .max_prefill_chunk = 64,
                                      .device_sampling = device_sampling});
  EXPECT_TRUE(eng.ok()) << eng.message();
  EngineRun out;
  if (!eng.ok()) return out;
  // One request at a time: each one's batches (and so its logits) do not depend on the engine loop's timing.
  for (int i = 0; i < 6; ++i) {
    SamplingParams p;
    p.temperature = std::array<float, 6>{0.0f, 0.8f, 1.0f, 0.6f, 1.2f, 0.9f}[i];
    if (i == 2) p.top_k = 40;
    if (i == 3) p.top_p = 0.9f;
    if (i == 4) p.min_p = 0.05f, p.repetition_penalty = 1.2f;
    if (i == 5) p.presence_penalty = 0.5f, p.frequency_penalty = 0.4f, p.logit_bias = {{5, 3.0f}, {9, -100.0f}};
    if (i % 3 == 0) p.logprobs = 3;
    p.seed = 1000 + static_cast<uint64_t>(i);
    p.max_tokens = 40;
    p.ignore_eos = true;
    std::vector<int32_t> prompt;
    for (int t = 0; t < 10 + 7 * i; ++t) prompt.push_back((37 * t + 11 * i + 3) % 200 + 10);
    auto s = std::make_shared<runtime::RequestStream>();
    auto id = (*eng)->submit({.prompt = prompt, .params = p}, s);
    EXPECT_TRUE(id.ok()) << id.message();
    std::vector<int32_t> toks;
    std::vector<float> lps;
    runtime::Event e;
    while (id.ok() && s->next(e, std::chrono::milliseconds(120000))) {
      if (e.kind == runtime::EventKind::Token) {
        toks.insert(toks.end(), e.token_ids.begin(), e.token_ids.end());
        if (e.logprobs) lps.push_back(e.logprobs->logprob);
      }
      if (e.final()) break;
    }
    out.tokens.push_back(toks);
    out.logprobs.push_back(lps);
  }
  return out;
}

TEST(GpuSampling, EngineTokensMatchHostSampling) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const char* env = std::getenv("DSV4_TEST_DATA_DIR");  // the binary runs on another machine (gpu_run.sh)
  const fs::path model = fs::path(env ? env : DSV4_TEST_DATA).parent_path().parent_path() / "models" / "dsv4-tiny";
  if (!fs::exists(model / "config.json")) GTEST_SKIP() << model << " not present";
  cuda::kernel_paths().dense_autotune = false;  // the same cuBLASLt algorithms in both engines
  const EngineRun host = run_engine(model, false), dev = run_engine(model, true);
  ASSERT_EQ(host.tokens.size(), dev.tokens.size());
  int mismatched = 0;
  for (size_t i = 0; i < host.tokens.size(); ++i) {
    EXPECT_EQ(host.tokens[i], dev.tokens[i]) << "request " << i;
    mismatched += host.tokens[i] != dev.tokens[i];
    ASSERT_EQ(host.logprobs[i].size(), dev.logprobs[i].size());
    for (size_t t = 0; t < host.logprobs[i].size(); ++t) EXPECT_NEAR(host.logprobs[i][t], dev.logprobs[i][t], 1e-5);
  }
  std::printf("[gpu-sampling] %s engine on dsv4-tiny: %zu requests, %d with different tokens (host vs device "
              "sampling), %zu tokens in request 0\n",
              mismatched == 0 ? "PASS" : "FAIL", host.tokens.size(), mismatched,
              host.tokens.empty() ? size_t{0} : host.tokens[0].size());
}

}  // namespace
}  // namespace dsv4
