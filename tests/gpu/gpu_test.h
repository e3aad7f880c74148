// Shared pieces of the GPU op test (dsv4_gpu_ops, CTest label `gpu`, run on the GPU machine by
// tools/gpu_check.sh): CPU-vs-CUDA comparison, the result report, random inputs, and the measured ceilings.
// Every op check follows STYLE.md "Kernels": fresh random inputs (seed printed), outputs poisoned with NaN
// before the run (an unwritten element fails), relative error against the CPU reference, NaN never passes.
// Every benchmark prints achieved GB/s or TFLOP/s and the ratio to a ceiling measured in the same run.
// testlib/compare.h is not used because it pulls in gtest, which this program must build without (the GPU
// machine's image may lack it; gpu_check.sh can build this program with nvcc/g++ alone).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/common/timing.h"
#include "core/tensor.h"
#include "backend/cuda/gemm/plan.h"

namespace dsv4::gpu_test {

// Tolerances of the precision recipe (relative L2 error vs the CPU reference), not of individual tests.
inline constexpr double kTolBf16Rowwise = 2e-3;  // f32 math, one bf16 rounding; only sum order differs
inline constexpr double kTolFp8Gemm = 5e-3;      // + FP8 tensor-core accumulation inside a 128-block
// Attention with bf16 probabilities: the online softmax rounds p = exp(z - running max) to bf16 against a
// different max than the CPU's two-pass softmax, so each p can differ by one bf16 ulp (measured 2.2e-3-2.3e-3).
inline constexpr double kTolAttentionBf16 = 5e-3;

struct Compare {
  size_t n = 0;
  double rel_err = 0;
  double max_abs = 0;
  size_t nonfinite = 0;  // NaN/Inf in the tested values (poison left unwritten shows up here)
  size_t ref_nonfinite = 0;
};
Compare compare(const float* got, const float* ref, size_t n);

struct Ceilings {
  double copy_gbps = 0;     // device-to-device memcpy, bytes read + written
  double bf16_tflops = 0;   // cuBLASLt bf16 GEMM 8192^3
  double fp8_tflops = 0;    // cuBLASLt FP8 e4m3 GEMM 8192^3, per-tensor scales (the dense FP8 peak we reach)
};

class Report {
 public:
  // A correctness row; prints one line at once. pass = finite && rel_err <= tol && extra_ok.
  bool check(const std::string& name, const std::string& detail, const Compare& c, double tol, bool extra_ok = true,
             const std::string& note = "");
  // An exact (bitwise) check: mismatches must be 0.
  bool exact(const std::string& name, const std::string& detail, size_t n, size_t mismatches,
             const std::string& note = "");
  void skip(const std::string& name, const std::string& detail, const std::string& why);
  // A timing row. gbps/tflops <= 0 are not shown; the ratio is taken against the ceiling named by `vs`.
  void perf(const std::string& name, const std::string& detail, const cuda::Timing& t, double bytes, double flops,
            const Ceilings& ceil);
  void note(const std::string& line);
  int failures() const { return failures_; }
  void print_summary(FILE* f) const;
  void write(const std::string& dir) const;  // summary.md and results.csv

 private:
  struct Row {
    std::string kind, name, detail, status, metric, note;
  };
  std::vector<Row> checks_, perfs_;
  std::vector<std::string> notes_;
  int failures_ = 0;
};

struct Env {
  uint64_t seed = 0;
  std::mt19937_64 rng;
  cuda::Stream stream;
  cuda::CublasLt lt;
  Ceilings ceil;
  Report report;
  bool quick = false;
  bool perf = true;      // --no-perf: the MoE suite checks only, no timing loops (e.g. under ncu)
  std::string match;     // --match S: the MoE suite runs only the cases whose label contains S
  int device_sms = 0;
  size_t l2_bytes = 0;
};

// Host random helpers (values exactly representable in the named format).
std::vector<float> random_bf16_values(std::mt19937_64& rng, size_t n, float sigma);  // normal, rounded to bf16
// Rows of x with per-row magnitudes spread over 2^-4..2^4 (exercises the per-block scales).
std::vector<float> random_activations(std::mt19937_64& rng, int64_t rows, int64_t cols);
std::vector<uint16_t> to_bf16_bits(const std::vector<float>& v);
std::vector<float> bf16_bits_to_f32(const std::vector<uint16_t>& v);

// Device fills for timing-only buffers (no host copy needed). Codes avoid NaN patterns.
void fill_random_e4m3(void* dst, size_t n, uint64_t seed, cudaStream_t stream);
void fill_random_bytes(void* dst, size_t n, uint64_t seed, cudaStream_t stream);
void fill_random_bf16(void* dst, size_t n, uint64_t seed, cudaStream_t stream);  // uniform(-1, 1)

// Suites (each appends to env.report).
void measure_ceilings(Env& env);
void test_rms_norm(Env& env);
void test_act_quant(Env& env);    // act_quant bit-exactness + the cuBLASLt scale-layout probe
void test_fp8_gemm(Env& env, cuda::Fp8GemmPath path);
// CudaOps vs CpuOps, op by op (backend::Ops interface), one suite per implementation file.
void test_ops_linear(Env& env);     // ops_linear_test.cpp: linear, grouped_linear, embed
void test_ops_attention(Env& env);  // ops_attention_test.cpp: sparse_attention, indexer_topk, softmax_pool, ...
void test_ops_hc(Env& env);         // ops_hc_test.cpp: hc_pre/post/head, rms_norm, round_act, small ops
void test_ops_moe(Env& env);        // ops_moe_test.cpp: route, expert_ffn, moe_experts
void test_moe_fp8_convert(Env& env);  // moe_fp8_cvt_test.cu: the FP8 expert kernel's weight conversion, bitwise

std::string fmt(const char* f, ...);

// ---- shared by the CudaOps op tests (ops_*_test.cpp) ----
// splitmix64: fast enough to fill GB-sized test weights.
struct FastRng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};
// A host tensor holding v (v.size() == numel of s).
Tensor host_tensor(Shape s, std::vector<float> v);
// A device tensor of shape s filled with NaN: an output element the op leaves unwritten fails the comparison.
Tensor poisoned(Shape s);
// Downloads got_dev and compares it with ref; a different element count compares as a failure.
Compare compare_tensors(const Tensor& got_dev, const Tensor& ref);

// Sets one kernel-path switch (cuda::kernel_paths()) while alive and restores its previous value.
template <typename T>
struct PathSwitch {
  PathSwitch(T& flag, T value) : flag_(flag), old_(flag) { flag_ = value; }
  ~PathSwitch() { flag_ = old_; }
  PathSwitch(const PathSwitch&) = delete;
  PathSwitch& operator=(const PathSwitch&) = delete;
  T& flag_;
  T old_;
};

}  // namespace dsv4::gpu_test
