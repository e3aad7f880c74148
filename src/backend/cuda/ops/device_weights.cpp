// DeviceWeights; see device_weights.h.
#include "backend/cuda/ops/device_weights.h"

#include <atomic>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/plan.h"
#include "backend/cuda/ops/context.h"
#include "core/check.h"
#include "core/dtype.h"
#include "weights/quant/dequant.h"

namespace dsv4::cuda {
namespace {

int64_t stored_bytes(const weights::Weight& w) {
  if (w.quant == weights::Quant::Mxfp4) return w.rows() * w.cols() / 2;
  return shape_numel(w.shape) * static_cast<int64_t>(dtype_size(w.dtype));
}

int64_t scale_bytes(const weights::Weight& w) {
  if (w.quant == weights::Quant::None || w.scale == nullptr) return 0;
  return shape_numel(w.scale_shape) * static_cast<int64_t>(dtype_size(w.scale_dtype));
}

void for_each_weight(const weights::ModelWeights& mw, const std::function<void(const weights::Weight&)>& f) {
  auto hc = [&](const weights::HcWeights& h) { f(h.fn); f(h.base); f(h.scale); };
  auto cmp = [&](const weights::CompressorWeights& c) { f(c.wkv); f(c.wgate); f(c.ape); f(c.norm); };
  auto ex = [&](const weights::ExpertWeights& e) { f(e.w1); f(e.w2); f(e.w3); };
  auto block = [&](const weights::BlockWeights& b) {
    hc(b.hc_attn); hc(b.hc_ffn); f(b.attn_norm); f(b.ffn_norm);
    const auto& a = b.attn;
    f(a.attn_sink); f(a.wq_a); f(a.q_norm); f(a.wq_b); f(a.wkv); f(a.kv_norm); f(a.wo_a); f(a.wo_b);
    if (a.compressor) cmp(*a.compressor);
    if (a.indexer) { f(a.indexer->wq_b); f(a.indexer->weights_proj); cmp(a.indexer->compressor); }
    f(b.ffn.gate_weight); f(b.ffn.gate_bias); f(b.ffn.tid2eid);
    for (const auto& e : b.ffn.experts) ex(e);
    ex(b.ffn.shared);
  };
  f(mw.embed); f(mw.head); f(mw.norm); hc(mw.hc_head);
  for (const auto& b : mw.layers) block(b);
  for (const auto& m : mw.mtp) {
    block(m.block); f(m.e_proj); f(m.h_proj); f(m.enorm); f(m.hnorm); f(m.norm); hc(m.hc_head);
  }
}

}  // namespace

DeviceWeights::DeviceWeights() {
  static std::atomic<uint64_t> next{1};
  id_ = next++;
}

void DeviceWeights::upload_all(const weights::ModelWeights& mw, const Progress& progress) {
  int64_t total = 0, done = 0;
  for_each_weight(mw, [&](const weights::Weight& w) {
    if (w.present()) total += stored_bytes(w) + scale_bytes(w);
  });
  for_each_weight(mw, [&](const weights::Weight& w) {
    if (!w.present() || map_.count(w.data)) return;
    get(w);
    done += stored_bytes(w) + scale_bytes(w);
    if (progress) progress(done, total);
  });
  CudaContext::get().sync();
}

DeviceWeight& DeviceWeights::get(const weights::Weight& w) {
  check(w.present(), [&] { return "CUDA backend: weight " + w.name + " is not present"; });
  auto it = map_.find(w.data);
  if (it != map_.end()) return *it->second;
  auto dw = std::make_unique<DeviceWeight>();
  dw->host = &w;
  // Synchronous copies on the context's side stream (the host bytes are mmapped pages; nothing queued uses the
  // new buffers yet), so a first use inside a captured graph step uploads for real, not into the graph.
  CudaContext& ctx = CudaContext::get();
  const int64_t nb = stored_bytes(w), sb = scale_bytes(w);
  dw->raw = DeviceBuffer(static_cast<size_t>(nb));
  ctx.upload_now(dw->raw.data(), w.data, static_cast<size_t>(nb));
  if (sb > 0) {
    dw->raw_scale = DeviceBuffer(static_cast<size_t>(sb));
    ctx.upload_now(dw->raw_scale.data(), w.scale, static_cast<size_t>(sb));
  }
  bytes_ += nb + sb;
  DeviceWeight& ref = *dw;
  map_.emplace(w.data, std::move(dw));
  return ref;
}

const float* DeviceWeights::f32(const weights::Weight& w) {
  DeviceWeight& dw = get(w);
  if (dw.f32.bytes() == 0) {
    std::vector<float> v = weights::dequant_all(w);
    dw.f32 = DeviceBuffer(v.size() * sizeof(float));
    CudaContext::get().upload_now(dw.f32.data(), v.data(), v.size() * sizeof(float));
  }
  return dw.f32.as<float>();
}

const float* DeviceWeights::fp8_scale_f32(const weights::Weight& w) {
  check(w.quant == weights::Quant::Fp8Block128,
        [&] { return "fp8_scale_f32: " + w.name + " is not FP8 block-scaled"; });
  DeviceWeight& dw = get(w);
  if (dw.fp8_scale.bytes() == 0) {
    const int64_t N = w.rows(), K = w.cols();
    const int64_t nb = (N + 127) / 128, kb = (K + 127) / 128, ld = fp8_weight_scale_ld(K);
    check(w.scale_shape.size() == 2 && w.scale_shape[0] == nb && w.scale_shape[1] == kb,
          [&] { return "fp8_scale_f32: " + w.name + " scale shape " + shape_str(w.scale_shape); });
    std::vector<float> v(static_cast<size_t>(nb * ld), 0.0f);
    for (int64_t i = 0; i < nb; ++i)
      for (int64_t j = 0; j < kb; ++j) {
        const int64_t k = i * kb + j;
        v[i * ld + j] = w.scale_dtype == DType::F8_E8M0 ? e8m0_to_f32(static_cast<const uint8_t*>(w.scale)[k])
                                                        : static_cast<const float*>(w.scale)[k];
      }
    dw.fp8_scale = DeviceBuffer(v.size() * sizeof(float));
    CudaContext::get().upload_now(dw.fp8_scale.data(), v.data(), v.size() * sizeof(float));
  }
  return dw.fp8_scale.as<float>();
}

}  // namespace dsv4::cuda
