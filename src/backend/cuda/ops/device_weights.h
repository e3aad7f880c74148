// DeviceWeights: the checkpoint's tensors on the GPU in their stored formats (FP8 e4m3 codes with e8m0 block
// scales, MXFP4 nibbles with per-32 e8m0 scales, BF16/F32/I64 values), keyed by the host Weight they mirror.
// upload_all() streams every tensor of a ModelWeights to the device once, reporting progress; get() uploads
// a tensor missing from the cache on first use (tests build weights on the fly). Derived forms are built on
// first use and cached: f32() (every value dequantized, for small tensors and the f32-exact numerics) and
// fp8_scale_f32() (the cuBLASLt block-scale layout of gemm/params.h); DeviceWeight::bf16 is filled by the dense
// linear path on first use (a bf16 copy of a quantized weight, so no per-call conversion).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "backend/cuda/common/device_buffer.h"
#include "weights/model_weights.h"

namespace dsv4::cuda {

struct DeviceWeight {
  const weights::Weight* host = nullptr;  // the checkpoint view this mirrors (shape, dtype, quant)
  DeviceBuffer raw;        // data bytes as stored
  DeviceBuffer raw_scale;  // scale bytes as stored (Fp8Block128, Mxfp4), else empty
  DeviceBuffer f32;        // derived on demand: f32 [numel] dequantized values
  DeviceBuffer fp8_scale;  // derived on demand: f32 [ceil(N/128), fp8_weight_scale_ld(K)] (Fp8Block128)
  DeviceBuffer bf16;       // derived on demand by CUDA linear (ops_linear.cu): bf16 [numel] dequantized values of
                           // an FP8/MXFP4 weight for the dense bf16 tensor-core path (exact), built once
};

class DeviceWeights {
 public:
  using Progress = std::function<void(int64_t bytes_done, int64_t bytes_total)>;
  DeviceWeights();
  // Unique per instance for the process (caches keyed by a DeviceWeights must not mistake a new instance at a
  // recycled address, whose weights may sit at recycled device addresses too, for the old one).
  uint64_t id() const { return id_; }
  // Uploads every present tensor (main layers, MTP blocks, embed, head).
  void upload_all(const weights::ModelWeights& w, const Progress& progress = {});
  DeviceWeight& get(const weights::Weight& w);
  // Dequantized f32 values of w on the device (built once).
  const float* f32(const weights::Weight& w);
  // Block scales of an Fp8Block128 weight in the cuBLASLt f32 layout (built once).
  const float* fp8_scale_f32(const weights::Weight& w);
  int64_t bytes() const { return bytes_; }

 private:
  std::unordered_map<const void*, std::unique_ptr<DeviceWeight>> map_;
  int64_t bytes_ = 0;
  uint64_t id_ = 0;
};

}  // namespace dsv4::cuda
