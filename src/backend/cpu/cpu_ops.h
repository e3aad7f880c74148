// CpuOps: the reference implementation of backend::Ops. f32 arithmetic with fixed summation orders (results
// do not depend on how many rows are processed together, so chunked prefill, decode and batching give
// bitwise-identical rows), weights dequantized on the fly a block of rows at a time, work spread over all
// cores with parallel_for. Rounds to bf16 / FP8-act-quantizes exactly where Numerics says.
#pragma once
#include "backend/ops.h"

namespace dsv4::backend {

class CpuOps final : public Ops {
 public:
  explicit CpuOps(Numerics numerics) : numerics_(numerics) {}

  void linear(const HostTensor& x, const Weight& w, HostTensor& y, LinearKind kind) override;
  void grouped_linear(const HostTensor& x, const Weight& w, int64_t groups, HostTensor& y) override;
  void embed(const Weight& table, std::span<const int32_t> ids, HostTensor& out) override;
  void rms_norm(HostTensor& x, int64_t dim, const Weight* w, float eps) override;
  void rope(HostTensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos,
            const RopeTable& table, bool inverse) override;
  void kv_round(HostTensor& x, int64_t dim, int64_t rope_dim, KvCacheDtype dt) override;
  void indexer_round(HostTensor& x, int64_t dim, IndexerDtype dt) override;
  void hc_pre(const HostTensor& X, const HcWeights& w, const HcParams& p, HostTensor& x, HostTensor& post,
              HostTensor& comb) override;
  void hc_post(const HostTensor& a, const HostTensor& R, const HostTensor& post, const HostTensor& comb,
               HostTensor& out) override;
  void hc_head(const HostTensor& X, const HcWeights& w, const HcParams& p, HostTensor& y) override;
  void sparse_attention(const AttentionKeys& keys, int64_t n_heads, int64_t dim, const Weight& sink, float scale,
                        HostTensor& out) override;
  void indexer_topk(const HostTensor& q, const HostTensor& w, std::span<const SeqEntries> seqs,
                    std::span<const int64_t> n_keys, const IndexerDims& dims, IndexTensor& selected) override;
  void expert_ffn(const HostTensor& x, const weights::ExpertWeights& e, const float* weight,
                  float swiglu_limit, HostTensor& y) override;
  void route(const HostTensor& logits, const Weight* bias, const Weight* tid2eid,
             std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
             std::vector<int32_t>& sel, std::vector<float>& weight) override;
  void moe_experts(const HostTensor& x, const HostTensor& logits, const weights::MoEWeights& w, bool hash,
                   std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                   float swiglu_limit, HostTensor& out) override;
  void softmax_pool(std::span<const float* const> a_rows, std::span<const float* const> g_rows,
                    std::span<const int64_t> offsets, int64_t dim, HostTensor& out) override;
  void copy_rows(std::span<const float* const> src, std::span<float* const> dst, int64_t width) override;
  void pack_rows_mxfp4(std::span<const float* const> src, std::span<float* const> dst, int64_t dim) override;
  void pack_rows_fp8kv(std::span<const float* const> src, std::span<float* const> dst, int64_t dim,
                       int64_t rope_dim) override;
  void hc_expand(const HostTensor& h, int64_t hc, HostTensor& X) override;
  void gather_rows(const HostTensor& x, std::span<const int64_t> rows, HostTensor& out) override;
  void add(HostTensor& y, const HostTensor& x) override;
  void scale(HostTensor& x, float s) override;
  void add_position_rows(HostTensor& x, const Weight& table, std::span<const int64_t> pos) override;
  void round_act(HostTensor& x) override;
  const Numerics& numerics() const override { return numerics_; }
  Device device() const override { return Device::Host; }

 private:
  bool bf16_acts() const { return numerics_.act == ActDtype::Bf16; }
  Numerics numerics_;
};

// Dot product with a fixed summation order (8 interleaved partial sums, combined pairwise).
float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace dsv4::backend
