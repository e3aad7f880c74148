// Device description and ceilings measured in the same run as the GPU benchmark (method of tests/gpu/ceilings.cpp):
// HBM bandwidth from a 2 GiB device-to-device cudaMemcpy (bytes read + written per second), and the dense
// tensor-core rates from cuBLASLt 8192^3 GEMMs on random data, bf16 and FP8 e4m3 (per-tensor scales, "TN").
#pragma once
#include <cstdint>
#include <string>

namespace dsv4::bench {

struct DeviceInfo {
  std::string name;
  int sm_count = 0;
  double mem_gib = 0;
  int driver = 0, runtime = 0;
  int cc_major = 0, cc_minor = 0;
};

struct Ceilings {
  double copy_gbps = 0;    // D2D copy, read + write
  double bf16_tflops = 0;  // 0 when no algorithm ran
  double fp8_tflops = 0;
};

// Empty name when no CUDA device is present.
DeviceInfo device_info();
Ceilings measure_ceilings(uint64_t seed);

}  // namespace dsv4::bench
