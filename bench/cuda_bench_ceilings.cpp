// Device info and ceilings; see cuda_bench_ceilings.h.
#include "cuda_bench_ceilings.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "backend/cuda/common/ceilings.h"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/common/timing.h"
#include "backend/cuda/ops/context.h"
#include "core/dtype.h"

namespace dsv4::bench {

using cuda::DeviceBuffer;

namespace {

// Random bytes for the GEMM operands: bf16 values in [-1, 1] or e4m3 codes without NaN.
std::vector<uint8_t> random_operand(size_t elems, bool fp8, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(elems * (fp8 ? 1 : 2));
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const size_t block = std::min<size_t>(v.size(), 8u << 20);
  for (size_t i = 0; i < block; i += fp8 ? 1 : 2) {
    if (fp8) {
      v[i] = f32_to_e4m3(uni(rng) * 4.0f);
    } else {
      const uint16_t b = f32_to_bf16(uni(rng));
      v[i] = static_cast<uint8_t>(b & 0xFF);
      v[i + 1] = static_cast<uint8_t>(b >> 8);
    }
  }
  for (size_t off = block; off < v.size(); off += block)
    std::copy(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(block, v.size() - off)),
              v.begin() + static_cast<std::ptrdiff_t>(off));
  return v;
}

double dense_gemm_tflops(bool fp8, uint64_t seed) {
  const int64_t n = 8192;
  cuda::CudaContext& ctx = cuda::CudaContext::get();
  const size_t elem = fp8 ? 1 : 2;
  DeviceBuffer a(n * n * elem), b(n * n * elem);
  const auto ha = random_operand(static_cast<size_t>(n * n), fp8, seed + 1);
  const auto hb = random_operand(static_cast<size_t>(n * n), fp8, seed + 2);
  a.upload(ha.data(), ha.size(), ctx.stream());
  b.upload(hb.data(), hb.size(), ctx.stream());
  const cuda::DenseGemmTiming g = cuda::time_dense_gemm(ctx.lt(), ctx.stream(), fp8, a.data(), b.data(), n);
  if (!g.timing) {
    std::fprintf(stderr, "cuda_bench: no cuBLASLt algorithm ran for the %s ceiling GEMM\n", fp8 ? "fp8" : "bf16");
    return 0;
  }
  return 2.0 * n * n * n / (g.timing->median_ms * 1e-3) * 1e-12;
}

}  // namespace

DeviceInfo device_info() {
  DeviceInfo d;
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return d;
  cudaDeviceProp prop{};
  DSV4_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  d.name = prop.name;
  d.sm_count = prop.multiProcessorCount;
  d.mem_gib = static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  cudaDriverGetVersion(&d.driver);
  cudaRuntimeGetVersion(&d.runtime);
  return d;
}

Ceilings measure_ceilings(uint64_t seed) {
  Ceilings c;
  cuda::CudaContext& ctx = cuda::CudaContext::get();
  {
    const size_t bytes = 2ull << 30;
    DeviceBuffer src(bytes), dst(bytes);
    src.fill_bytes(0x5A, ctx.stream());
    const cuda::Timing t = cuda::time_device_copy(ctx.stream(), dst.data(), src.data(), bytes, 10);
    c.copy_gbps = 2.0 * static_cast<double>(bytes) / (t.median_ms * 1e-3) * 1e-9;
    ctx.sync();
  }
  c.bf16_tflops = dense_gemm_tflops(false, seed);
  c.fp8_tflops = dense_gemm_tflops(true, seed + 10);
  return c;
}

}  // namespace dsv4::bench
