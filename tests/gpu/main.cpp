// dsv4_gpu_ops: CUDA op tests and benchmarks (CTest label `gpu`; not run in CI). Each op is checked against the
// CPU reference on fresh random inputs and timed against ceilings measured in the same run. Exit status: 0 when
// every check passed, 1 on any failure, 77 (skip) when no CUDA device is present.
//   dsv4_gpu_ops [--seed N] [--out DIR] [--only ceil,rms,actq,gemm-lt,gemm-mma,ops-linear,ops-attn,ops-hc,ops-moe] [--quick]
//                [--no-perf] [--match S]
// --no-perf skips the MoE suite's timing loops (checks only: one launch per case, e.g. under ncu); --match S runs
// only the MoE cases whose label contains S. The other suites ignore both.
// --only selects suites (default all); tools/gpu_check.sh runs groups of them in separate processes so a sticky
// CUDA error (an illegal address) in one kernel cannot hide the results of the others.
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <random>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/ops/context.h"
#include "gpu_test.h"

using namespace dsv4::gpu_test;

int main(int argc, char** argv) {
  std::string out, only = "ceil,rms,actq,gemm-lt,gemm-mma,ops-linear,ops-attn,ops-hc,ops-moe";
  uint64_t seed = std::random_device{}() ^ static_cast<uint64_t>(
                      std::chrono::steady_clock::now().time_since_epoch().count());
  bool quick = false, perf = true;
  std::string match;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--quick") quick = true;
    else if (a == "--no-perf") perf = false;
    else if (a == "--match" && i + 1 < argc) match = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--seed N] [--out DIR] [--only ceil,rms,actq,gemm-lt,gemm-mma,ops-linear,ops-attn,ops-hc,ops-moe] [--quick] [--no-perf] [--match S]\n", argv[0]);
      return 2;
    }
  }
  int n_dev = 0;
  if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
    printf("no CUDA device: skipping\n");
    return 77;
  }
  try {
    Env env;
    env.seed = seed;
    env.rng.seed(seed);
    env.quick = quick;
    env.perf = perf;
    env.match = match;
    dsv4::cuda::CudaContext::get();  // registers device memory, whichever suite comes first (--only)
    cudaDeviceProp prop{};
    DSV4_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    env.device_sms = prop.multiProcessorCount;
    env.l2_bytes = static_cast<size_t>(prop.l2CacheSize);
    int runtime = 0, driver = 0;
    DSV4_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    DSV4_CUDA_CHECK(cudaDriverGetVersion(&driver));
    env.report.note(fmt("device %s, sm_%d%d, %d SMs, L2 %zu MiB, HBM %zu GiB; CUDA runtime %d, driver %d; seed %llu",
                        prop.name, prop.major, prop.minor, prop.multiProcessorCount, env.l2_bytes >> 20,
                        static_cast<size_t>(prop.totalGlobalMem) >> 30, runtime, driver,
                        static_cast<unsigned long long>(seed)));
    // A suite that throws (a failed check() or CUDA error) is recorded as a failure and the next one runs; a
    // sticky CUDA error will then fail the rest too, which the log makes plain.
    auto suite = [&](const char* key, const std::function<void(Env&)>& fn) {
      if (only.find(key) == std::string::npos) return;
      try {
        fn(env);
      } catch (const std::exception& e) {
        env.report.exact(std::string("suite ") + key, "aborted", 1, 1, e.what());
      }
    };
    suite("ceil", measure_ceilings);
    suite("rms", test_rms_norm);
    suite("actq", test_act_quant);
    suite("gemm-lt", [](Env& e) { test_fp8_gemm(e, dsv4::cuda::Fp8GemmPath::CublasLt); });
    suite("gemm-mma", [](Env& e) { test_fp8_gemm(e, dsv4::cuda::Fp8GemmPath::Mma); });
    suite("ops-linear", test_ops_linear);
    suite("ops-attn", test_ops_attention);
    suite("ops-hc", test_ops_hc);
    suite("ops-moe", test_ops_moe);
    env.report.print_summary(stdout);
    if (!out.empty()) env.report.write(out);
    return env.report.failures() == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    fprintf(stderr, "dsv4_gpu_ops: %s\n", e.what());
    return 1;
  }
}
