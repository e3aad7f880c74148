// dsv4_sampling_bench: sampling time per step at vocab 129280 for B = 1, 8, 64, 256 rows, three settings
// (greedy; temperature 0.7 + top-p 0.9; the same with logprobs 5), on the GPU (runtime::DeviceSampler: parameter
// upload, sample_kernel, result download) next to the host path the engine used before (logits D2H copy +
// sampling::Sampler). Wall-clock per call, median of the repetitions; `--quick` runs fewer; `--out FILE` writes
// CSV. Runs on the GPU machine (tools/gpu_run.sh stage sampling_bench); results go to docs/perf.md.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/ops/context.h"
#include "runtime/device_sampler.h"
#include "sampling/sampler.h"

namespace {

using namespace dsv4;

struct Setting {
  const char* name;
  sampling::SamplingParams params;
};

std::vector<Setting> settings() {
  sampling::SamplingParams greedy;
  greedy.temperature = 0.0f;
  sampling::SamplingParams top_p;
  top_p.temperature = 0.7f;
  top_p.top_p = 0.9f;
  sampling::SamplingParams lp = top_p;
  lp.logprobs = 5;
  return {{"greedy", greedy}, {"t0.7_top_p0.9", top_p}, {"t0.7_top_p0.9_logprobs5", lp}};
}

template <typename F>
double median_ms(int reps, F&& f) {
  std::vector<double> ms;
  f();  // warm-up
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
  }
  int n_dev = 0;
  if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
    std::printf("no CUDA device\n");
    return 77;
  }
  cuda::CudaContext::get();
  const int64_t V = 129280;
  const int reps_gpu = quick ? 10 : 50, reps_host = quick ? 2 : 5;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> g(0.0f, 3.0f);
  std::string csv = "setting,rows,gpu_ms,host_ms,speedup\n";
  std::printf("%-26s %5s %10s %12s %8s\n", "setting", "B", "gpu ms", "host ms", "x");
  runtime::DeviceSampler dev(V);
  for (int64_t B : {1, 8, 64, 256}) {
    HostTensor logits({B, V});
    for (int64_t i = 0; i < B * V; ++i) logits.data()[i] = g(rng);
    Tensor d = logits.to(Device::Cuda);  // no bias or penalties: the sampler leaves it unchanged
    for (const Setting& s : settings()) {
      std::vector<sampling::SamplingState> states;
      for (int64_t r = 0; r < B; ++r) states.emplace_back(s.params, std::span<const int32_t>{}, 1000 + r);
      std::vector<sampling::SampleRow> rows;
      std::vector<int64_t> logit_rows;
      for (int64_t r = 0; r < B; ++r) {
        rows.push_back({&s.params, &states[static_cast<size_t>(r)]});
        logit_rows.push_back(r);
      }
      const double gpu = median_ms(reps_gpu, [&] { dev.sample(d, logit_rows, rows); });
      const sampling::Sampler host_sampler(V);
      const double host = median_ms(reps_host, [&] {
        Tensor h = d.to(Device::Host);
        host_sampler.sample({.logits = TensorView{h.data(), DType::F32, h.shape()}, .rows = rows});
      });
      std::printf("%-26s %5lld %10.3f %12.3f %8.1f\n", s.name, static_cast<long long>(B), gpu, host, host / gpu);
      csv += std::string(s.name) + "," + std::to_string(B) + "," + std::to_string(gpu) + "," + std::to_string(host) +
             "," + std::to_string(host / gpu) + "\n";
    }
  }
  if (!out.empty()) std::ofstream(out) << csv;
  return 0;
}
