// CudaOps: backend::Ops on an NVIDIA H200 (sm_90a). Activations are f32 Tensors on Device::Cuda (values
// rounded to bf16 exactly where the CPU reference rounds them), weights stay in their checkpoint formats
// (DeviceWeights), and every op is queued on the CudaContext stream; only results the host needs (logits,
// routing or top-k lists consumed as plan data) are copied back. Each op is checked against CpuOps by
// tests/gpu (op test) and the whole model against the CPU reference and HF goldens (tests/gpu e2e).
// Implementations are split by area: ops_linear.cu (linear, grouped_linear, embed), ops_attention.cu
// (sparse_attention, indexer_topk, softmax_pool, copy_rows, kv_round, indexer_round, rope, finish_rows),
// ops_hc.cu (hc_*, rms_norm, round_act, hc_expand, gather_rows, add, scale, add_position_rows), ops_moe.cu
// (route, expert_ffn, moe_experts). Decode steps run as CUDA graphs through StepGraphs (step_graphs.h).
#pragma once
#include <cuda_bf16.h>

#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/ops/context.h"
#include "backend/cuda/ops/device_weights.h"
#include "backend/cuda/ops/step_graphs.h"
#include "backend/ops.h"

namespace dsv4::backend {

class CudaOps final : public Ops {
 public:
  explicit CudaOps(Numerics numerics);
  ~CudaOps() override;

  // Uploads all weights now (else each is uploaded on first use).
  void upload_weights(const weights::ModelWeights& w, const cuda::DeviceWeights::Progress& progress = {});
  cuda::DeviceWeights& weights() { return dw_; }

  void linear(const Tensor& x, const Weight& w, Tensor& y, LinearKind kind) override;
  void linear_pair(const Tensor& x, const Weight& w1, const Weight& w2, Tensor& y1, Tensor& y2,
                   LinearKind kind) override;
  void grouped_linear(const Tensor& x, const Weight& w, int64_t groups, Tensor& y) override;
  void embed(const Weight& table, std::span<const int32_t> ids, Tensor& out) override;
  void rms_norm(Tensor& x, int64_t dim, const Weight* w, float eps) override;
  void rope(Tensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos, const RopeTable& table,
            bool inverse) override;
  void finish_rows(Tensor& x, int64_t dim, std::span<const int64_t> pos, const RowFinish& f) override;
  void kv_round(Tensor& x, int64_t dim, int64_t rope_dim, KvCacheDtype dt) override;
  void indexer_round(Tensor& x, int64_t dim, IndexerDtype dt) override;
  void hc_pre(const Tensor& X, const HcWeights& w, const HcParams& p, Tensor& x, Tensor& post,
              Tensor& comb) override;
  void hc_pre_norm(const Tensor& X, const HcWeights& w, const HcParams& p, const Weight& norm, float eps, Tensor& x,
                   Tensor& post, Tensor& comb) override;
  void hc_post(const Tensor& a, const Tensor& R, const Tensor& post, const Tensor& comb, Tensor& out) override;
  void hc_head(const Tensor& X, const HcWeights& w, const HcParams& p, Tensor& y) override;
  void sparse_attention(const AttentionKeys& keys, int64_t n_heads, int64_t dim, const Weight& sink, float scale,
                        Tensor& out) override;
  void indexer_topk(const Tensor& q, const Tensor& w, std::span<const SeqEntries> seqs,
                    std::span<const int64_t> n_keys, const IndexerDims& dims, IndexTensor& selected) override;
  void expert_ffn(const Tensor& x, const weights::ExpertWeights& e, const float* weight, float swiglu_limit,
                  Tensor& y) override;
  void route(const Tensor& logits, const Weight* bias, const Weight* tid2eid, std::span<const int32_t> tokens,
             int64_t top_k, bool normalize, float route_scale, std::vector<int32_t>& sel,
             std::vector<float>& weight) override;
  void moe_experts(const Tensor& x, const Tensor& logits, const weights::MoEWeights& w, bool hash,
                   std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                   float swiglu_limit, Tensor& out) override;
  void softmax_pool(std::span<const float* const> a_rows, std::span<const float* const> g_rows,
                    std::span<const int64_t> offsets, int64_t dim, Tensor& out) override;
  void copy_rows(std::span<const float* const> src, std::span<float* const> dst, int64_t width) override;
  void pack_rows_mxfp4(std::span<const float* const> src, std::span<float* const> dst, int64_t dim) override;
  void pack_rows_fp8kv(std::span<const float* const> src, std::span<float* const> dst, int64_t dim,
                       int64_t rope_dim) override;
  void hc_expand(const Tensor& h, int64_t hc, Tensor& X) override;
  void gather_rows(const Tensor& x, std::span<const int64_t> rows, Tensor& out) override;
  void add(Tensor& y, const Tensor& x) override;
  void scale(Tensor& x, float s) override;
  void add_round(Tensor& y, const Tensor& x) override;
  void scale_round(Tensor& x, float s) override;
  void add_position_rows(Tensor& x, const Weight& table, std::span<const int64_t> pos) override;
  void round_act(Tensor& x) override;
  void graph_begin(int64_t n_rows) override { graphs_.begin(n_rows); }
  void graph_break() override { graphs_.next_segment(); }
  void graph_end() override { graphs_.end(); }
  void graph_abort() noexcept override { graphs_.abort(); }  // a branch scope has joined while unwinding
  void branch_fork() override {
    if (cuda::kernel_paths().branches) ctx_.branch_fork();
  }
  void branch_side(bool on) override {
    if (cuda::kernel_paths().branches) ctx_.branch_side(on);
  }
  void branch_mark() override { ctx_.branch_mark(); }
  void branch_wait_mark() override { ctx_.branch_wait_mark(); }
  void branch_join() override { ctx_.branch_join(); }
  // Whether the current step is being captured (between graph_begin and graph_end).
  bool graph_active() const { return graphs_.active(); }
  const cuda::GraphStats& graph_stats() const { return graphs_.stats(); }
  cuda::StepGraphs& graphs() { return graphs_; }
  const Numerics& numerics() const override { return numerics_; }
  Device device() const override { return Device::Cuda; }

 private:
  bool bf16_acts() const { return numerics_.act == ActDtype::Bf16; }
  // y bf16 [M, w.rows()] = the block-scaled FP8 GEMM (spec §2.6) of act_quant'ed rows (q e4m3 [M, w.cols()], scale
  // f32 [w.cols()/128, M]) with the FP8 weight w: cuBLASLt above the mma kernel's row limit (ops_linear.cu).
  void fp8_gemm_bf16(const uint8_t* q, const float* scale, int64_t M, const Weight& w, __nv_bfloat16* y);
  // linear_pair of the Bf16 / F32 kinds as one GEMV launch (ops_linear.cu); false: not taken.
  bool gemv_pair(const Tensor& x, const Weight& w1, const Weight& w2, Tensor& y1, Tensor& y2, LinearKind kind);
  // expert_ffn through act_quant + fp8_gemm_bf16 (FP8 experts at n >= KernelPaths::expert_ffn_lt_min_n).
  void expert_ffn_fp8_gemm(const Tensor& x, const weights::ExpertWeights& e, const float* weight, float swiglu_limit,
                           Tensor& y);
  cuda::CudaContext& ctx_;
  Numerics numerics_;
  cuda::DeviceWeights dw_;
  cuda::StepGraphs graphs_;
};

// Output helper for op implementations: y on the device with shape s (reallocated only when needed).
inline void on_device(Tensor& y, Shape s) { y.resize_on(Device::Cuda, std::move(s)); }

}  // namespace dsv4::backend
