// ProfilingOps: backend::Ops that forwards every call to a CudaOps and times the forward on the CudaContext
// stream with CUDA events, for the GPU benchmark (bench/cuda_bench.cpp).
// Segments: the block boundaries are found by counting calls (each block calls hc_pre twice and hc_post twice,
// Transformer::forward calls embed first and the head after the last block), so one step's stream timeline is
// cut into "embed" (embed + hc_expand), one segment per block (from its first hc_pre to the next block's first
// hc_pre, the last block to its second hc_post) and "head" (row gather, hc_head, norm, head linear and the
// logits copy to the host, until end_step()). Segments tile the step: host work between ops (pointer lists,
// plan uploads) shows up as time of the segment it happens in.
// Ops mode additionally brackets every op with an event pair and aggregates by (layer kind, op label); an op's
// time is then max(its GPU time, its host time) as the stream saw it, host-side syncs included; its host time
// (wall time of the forwarded call on the CPU: plan building, uploads, allocations, launches) is kept apart.
// With graphs (Layers mode), the boundaries are recorded right after each segment's graph launch instead.
// Invariant: a step is begin_step() → Transformer::forward (one pass, no MTP) → end_step() → collect().
#pragma once
#include <cuda_runtime_api.h>

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/ops/cuda_ops.h"

namespace dsv4::bench {

using weights::HcWeights;
using weights::Weight;

class ProfilingOps final : public backend::Ops {
 public:
  enum class Mode { Layers, Ops };
  struct OpTotal {
    double ms = 0;       // between the op's events on the stream
    double host_ms = 0;  // in the forwarded call on the CPU
    int64_t calls = 0;
  };

  // block_kinds[k]: the kind label ("swa", "csa", "hca") of block k of the forward.
  ProfilingOps(backend::CudaOps& inner, std::vector<std::string> block_kinds);
  ~ProfilingOps() override;

  void set_mode(Mode m) { mode_ = m; }
  void begin_step();
  void end_step();
  // Waits for the step's events; returns its segment times in ms: [embed, block 0 .. n-1, head].
  std::vector<double> collect();
  // Per-op totals accumulated by collect() since the last reset_ops(), keyed by (kind or "embed"/"head", label).
  const std::map<std::pair<std::string, std::string>, OpTotal>& op_totals() const { return op_totals_; }
  void reset_ops() { op_totals_.clear(); }

  void linear(const Tensor& x, const Weight& w, Tensor& y, backend::LinearKind kind) override;
  void linear_pair(const Tensor& x, const Weight& w1, const Weight& w2, Tensor& y1, Tensor& y2,
                   backend::LinearKind kind) override;
  void grouped_linear(const Tensor& x, const Weight& w, int64_t groups, Tensor& y) override;
  void embed(const Weight& table, std::span<const int32_t> ids, Tensor& out) override;
  void rms_norm(Tensor& x, int64_t dim, const Weight* w, float eps) override;
  void rope(Tensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos, const backend::RopeTable& table,
            bool inverse) override;
  void finish_rows(Tensor& x, int64_t dim, std::span<const int64_t> pos, const backend::RowFinish& f) override;
  void kv_round(Tensor& x, int64_t dim, int64_t rope_dim, backend::KvCacheDtype dt) override;
  void indexer_round(Tensor& x, int64_t dim, backend::IndexerDtype dt) override;
  void hc_pre(const Tensor& X, const HcWeights& w, const backend::HcParams& p, Tensor& x, Tensor& post,
              Tensor& comb) override;
  void hc_pre_norm(const Tensor& X, const HcWeights& w, const backend::HcParams& p, const Weight& norm, float eps,
                   Tensor& x, Tensor& post, Tensor& comb) override;
  void hc_post(const Tensor& a, const Tensor& R, const Tensor& post, const Tensor& comb, Tensor& out) override;
  void hc_head(const Tensor& X, const HcWeights& w, const backend::HcParams& p, Tensor& y) override;
  void sparse_attention(const backend::AttentionKeys& keys, int64_t n_heads, int64_t dim, const Weight& sink,
                        float scale, Tensor& out) override;
  void indexer_topk(const Tensor& q, const Tensor& w, std::span<const backend::SeqEntries> seqs,
                    std::span<const int64_t> n_keys, const backend::IndexerDims& dims,
                    IndexTensor& selected) override;
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
  // Layers mode: the step runs as the inner backend's graphs (when it captures it) and the segment boundaries
  // are recorded between the segment launches; Ops mode runs the step eagerly (an event pair per op).
  void graph_begin(int64_t n_rows) override;
  void graph_break() override { inner_.graph_break(); }
  void graph_end() override { inner_.graph_end(); }
  void graph_abort() noexcept override { inner_.graph_abort(); }
  // Branches reach the inner backend in Layers mode; Ops mode times each op between events on one stream, so it
  // runs them in order.
  void branch_fork() override {
    if (mode_ == Mode::Layers) inner_.branch_fork();
  }
  void branch_side(bool on) override {
    if (mode_ == Mode::Layers) inner_.branch_side(on);
  }
  void branch_mark() override {
    if (mode_ == Mode::Layers) inner_.branch_mark();
  }
  void branch_wait_mark() override {
    if (mode_ == Mode::Layers) inner_.branch_wait_mark();
  }
  void branch_join() override { inner_.branch_join(); }
  Device device() const override { return inner_.device(); }
  void round_act(Tensor& x) override;
  const backend::Numerics& numerics() const override { return inner_.numerics(); }

 private:
  class Scope;
  struct OpRecord {
    int segment;  // -1 embed, k block k, n_blocks head
    std::string label;
    cudaEvent_t start, end;
    double host_ms;
  };
  cudaEvent_t next_event();
  void record_boundary(size_t slot);
  void note_hc_pre();  // block boundaries: every block calls hc_pre (or hc_pre_norm) twice
  std::string segment_kind(int segment) const;

  backend::CudaOps& inner_;
  std::vector<std::string> kinds_;
  cudaStream_t stream_;
  Mode mode_ = Mode::Layers;
  std::vector<cudaEvent_t> events_;  // reusable pool
  size_t used_ = 0;
  // Boundary events: [0] step start, [1 + k] block k start, [1 + n] after the last block, [2 + n] step end.
  std::vector<cudaEvent_t> bounds_;
  int n_hc_pre_ = 0, n_hc_post_ = 0;
  int segment_ = -1;
  bool graph_ = false;  // this step is captured: boundaries come from the segment launches
  std::vector<OpRecord> records_;
  std::map<std::pair<std::string, std::string>, OpTotal> op_totals_;
};

}  // namespace dsv4::bench
