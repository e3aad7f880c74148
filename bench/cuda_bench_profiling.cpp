// ProfilingOps; see cuda_bench_profiling.h.
#include "cuda_bench_profiling.h"

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/ops/context.h"

namespace dsv4::bench {

namespace {

// "layers.12.attn.wq_b.weight" -> "attn.wq_b".
std::string short_name(const std::string& name) {
  std::string s = name;
  if (s.rfind("layers.", 0) == 0) {
    const size_t dot = s.find('.', 7);
    if (dot != std::string::npos) s = s.substr(dot + 1);
  }
  const std::string suffix = ".weight";
  if (s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0)
    s.resize(s.size() - suffix.size());
  return s;
}

std::string label(const char* op, const Weight* w) {
  return w && !w->name.empty() ? std::string(op) + "[" + short_name(w->name) + "]" : std::string(op);
}

}  // namespace

// Event pair around one forwarded call (Ops mode only).
class ProfilingOps::Scope {
 public:
  Scope(ProfilingOps& p, std::string label) : p_(p) {
    if (p_.mode_ != Mode::Ops) return;
    rec_ = {p_.segment_, std::move(label), p_.next_event(), nullptr, 0.0};
    DSV4_CUDA_CHECK(cudaEventRecord(rec_.start, p_.stream_));
    active_ = true;
    t0_ = std::chrono::steady_clock::now();
  }
  ~Scope() {
    if (!active_) return;
    rec_.host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
    rec_.end = p_.next_event();
    cudaEventRecord(rec_.end, p_.stream_);
    p_.records_.push_back(std::move(rec_));
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  ProfilingOps& p_;
  OpRecord rec_{};
  bool active_ = false;
  std::chrono::steady_clock::time_point t0_;
};

ProfilingOps::ProfilingOps(backend::CudaOps& inner, std::vector<std::string> block_kinds)
    : inner_(inner), kinds_(std::move(block_kinds)), stream_(cuda::CudaContext::get().stream()) {
  // Segments of a graph step, one per break point (set_split_every_break): the embed (s = 0), then two per block
  // (attention half, MoE half: block k ends with segment 2k + 2), then the head, whose end is end_step().
  inner_.graphs().set_split_every_break(true);
  inner_.graphs().set_on_launch([this](int64_t s) {
    if (graph_ && s % 2 == 0 && s <= 2 * static_cast<int64_t>(kinds_.size()))
      record_boundary(1 + static_cast<size_t>(s / 2));
  });
}

ProfilingOps::~ProfilingOps() {
  inner_.graphs().set_on_launch({});
  inner_.graphs().set_split_every_break(false);
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

void ProfilingOps::graph_begin(int64_t n_rows) {
  graph_ = false;
  if (mode_ != Mode::Layers) return;
  inner_.graph_begin(n_rows);
  graph_ = inner_.graph_active();
}

cudaEvent_t ProfilingOps::next_event() {
  if (used_ == events_.size()) {
    cudaEvent_t e = nullptr;
    DSV4_CUDA_CHECK(cudaEventCreate(&e));
    events_.push_back(e);
  }
  return events_[used_++];
}

void ProfilingOps::record_boundary(size_t slot) {
  bounds_.at(slot) = next_event();
  DSV4_CUDA_CHECK(cudaEventRecord(bounds_[slot], stream_));
}

std::string ProfilingOps::segment_kind(int segment) const {
  if (segment < 0) return "embed";
  if (segment >= static_cast<int>(kinds_.size())) return "head";
  return kinds_[static_cast<size_t>(segment)];
}

void ProfilingOps::begin_step() {
  used_ = 0;
  records_.clear();
  bounds_.assign(kinds_.size() + 3, nullptr);
  n_hc_pre_ = n_hc_post_ = 0;
  segment_ = -1;
  record_boundary(0);
}

void ProfilingOps::end_step() {
  record_boundary(kinds_.size() + 2);
  graph_ = false;
}

std::vector<double> ProfilingOps::collect() {
  const size_t n = kinds_.size();
  cudaEvent_t last = bounds_.back();
  check(last != nullptr, "ProfilingOps::collect without end_step");
  DSV4_CUDA_CHECK(cudaEventSynchronize(last));
  auto ms = [](cudaEvent_t a, cudaEvent_t b) {
    float t = 0;
    if (a && b) DSV4_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    return static_cast<double>(t);
  };
  std::vector<double> seg(n + 2, 0.0);
  seg[0] = ms(bounds_[0], bounds_[1]);
  for (size_t k = 0; k < n; ++k) seg[1 + k] = ms(bounds_[1 + k], bounds_[2 + k]);
  seg[n + 1] = ms(bounds_[n + 1], bounds_[n + 2]);
  for (const OpRecord& r : records_) {
    OpTotal& t = op_totals_[{segment_kind(r.segment), r.label}];
    t.ms += ms(r.start, r.end);
    t.host_ms += r.host_ms;
    t.calls += 1;
  }
  records_.clear();
  return seg;
}

void ProfilingOps::linear(const Tensor& x, const Weight& w, Tensor& y, backend::LinearKind kind) {
  Scope s(*this, label("linear", &w));
  inner_.linear(x, w, y, kind);
}

void ProfilingOps::linear_pair(const Tensor& x, const Weight& w1, const Weight& w2, Tensor& y1, Tensor& y2,
                               backend::LinearKind kind) {
  Scope s(*this, label("linear_pair", &w1));
  inner_.linear_pair(x, w1, w2, y1, y2, kind);
}

void ProfilingOps::grouped_linear(const Tensor& x, const Weight& w, int64_t groups, Tensor& y) {
  Scope s(*this, label("grouped_linear", &w));
  inner_.grouped_linear(x, w, groups, y);
}

void ProfilingOps::embed(const Weight& table, std::span<const int32_t> ids, Tensor& out) {
  Scope s(*this, "embed");
  inner_.embed(table, ids, out);
}

void ProfilingOps::rms_norm(Tensor& x, int64_t dim, const Weight* w, float eps) {
  Scope s(*this, w ? label("rms_norm", w) : "rms_norm[q heads]");
  inner_.rms_norm(x, dim, w, eps);
}

void ProfilingOps::rope(Tensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos,
                        const backend::RopeTable& table, bool inverse) {
  Scope s(*this, inverse ? "rope[inverse]" : "rope[d=" + std::to_string(dim) + "]");
  inner_.rope(x, dim, rope_dim, pos, table, inverse);
}

void ProfilingOps::finish_rows(Tensor& x, int64_t dim, std::span<const int64_t> pos, const backend::RowFinish& f) {
  Scope s(*this, "finish_rows[d=" + std::to_string(dim) + "]");
  inner_.finish_rows(x, dim, pos, f);
}

void ProfilingOps::kv_round(Tensor& x, int64_t dim, int64_t rope_dim, backend::KvCacheDtype dt) {
  Scope s(*this, "kv_round");
  inner_.kv_round(x, dim, rope_dim, dt);
}

void ProfilingOps::indexer_round(Tensor& x, int64_t dim, backend::IndexerDtype dt) {
  Scope s(*this, "indexer_round");
  inner_.indexer_round(x, dim, dt);
}

void ProfilingOps::note_hc_pre() {
  if (n_hc_pre_ % 2 == 0) {
    const int block = n_hc_pre_ / 2;
    if (block < static_cast<int>(kinds_.size()) && !graph_) record_boundary(1 + static_cast<size_t>(block));
    segment_ = block;
  }
  ++n_hc_pre_;
}

void ProfilingOps::hc_pre(const Tensor& X, const HcWeights& w, const backend::HcParams& p, Tensor& x, Tensor& post,
                          Tensor& comb) {
  note_hc_pre();
  Scope s(*this, label("hc_pre", &w.fn));
  inner_.hc_pre(X, w, p, x, post, comb);
}

void ProfilingOps::hc_pre_norm(const Tensor& X, const HcWeights& w, const backend::HcParams& p, const Weight& norm,
                               float eps, Tensor& x, Tensor& post, Tensor& comb) {
  note_hc_pre();
  Scope s(*this, label("hc_pre_norm", &w.fn));
  inner_.hc_pre_norm(X, w, p, norm, eps, x, post, comb);
}

void ProfilingOps::hc_post(const Tensor& a, const Tensor& R, const Tensor& post, const Tensor& comb, Tensor& out) {
  {
    Scope s(*this, "hc_post");
    inner_.hc_post(a, R, post, comb, out);
  }
  ++n_hc_post_;
  if (n_hc_post_ == 2 * static_cast<int>(kinds_.size())) {
    if (!graph_) record_boundary(kinds_.size() + 1);
    segment_ = static_cast<int>(kinds_.size());
  }
}

void ProfilingOps::hc_head(const Tensor& X, const HcWeights& w, const backend::HcParams& p, Tensor& y) {
  Scope s(*this, "hc_head");
  inner_.hc_head(X, w, p, y);
}

void ProfilingOps::sparse_attention(const backend::AttentionKeys& keys, int64_t n_heads, int64_t dim,
                                    const Weight& sink, float scale, Tensor& out) {
  Scope s(*this, "sparse_attention");
  inner_.sparse_attention(keys, n_heads, dim, sink, scale, out);
}

void ProfilingOps::indexer_topk(const Tensor& q, const Tensor& w, std::span<const backend::SeqEntries> seqs,
                                std::span<const int64_t> n_keys, const backend::IndexerDims& dims,
                                IndexTensor& selected) {
  Scope s(*this, "indexer_topk");
  inner_.indexer_topk(q, w, seqs, n_keys, dims, selected);
}

void ProfilingOps::expert_ffn(const Tensor& x, const weights::ExpertWeights& e, const float* weight,
                              float swiglu_limit, Tensor& y) {
  std::string l = label("expert_ffn", &e.w1);
  if (l.size() > 4 && l.compare(l.size() - 4, 4, ".w1]") == 0) l.replace(l.size() - 4, 4, "]");
  Scope s(*this, std::move(l));
  inner_.expert_ffn(x, e, weight, swiglu_limit, y);
}

void ProfilingOps::route(const Tensor& logits, const Weight* bias, const Weight* tid2eid,
                         std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                         std::vector<int32_t>& sel, std::vector<float>& weight) {
  Scope s(*this, "route");
  inner_.route(logits, bias, tid2eid, tokens, top_k, normalize, route_scale, sel, weight);
}

void ProfilingOps::moe_experts(const Tensor& x, const Tensor& logits, const weights::MoEWeights& w, bool hash,
                               std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                               float swiglu_limit, Tensor& out) {
  Scope s(*this, "moe_experts[routed]");
  inner_.moe_experts(x, logits, w, hash, tokens, top_k, normalize, route_scale, swiglu_limit, out);
}

void ProfilingOps::softmax_pool(std::span<const float* const> a_rows, std::span<const float* const> g_rows,
                                std::span<const int64_t> offsets, int64_t dim, Tensor& out) {
  Scope s(*this, "softmax_pool[d=" + std::to_string(dim) + "]");
  inner_.softmax_pool(a_rows, g_rows, offsets, dim, out);
}

void ProfilingOps::copy_rows(std::span<const float* const> src, std::span<float* const> dst, int64_t width) {
  Scope s(*this, "copy_rows");
  inner_.copy_rows(src, dst, width);
}

void ProfilingOps::pack_rows_fp8kv(std::span<const float* const> src, std::span<float* const> dst, int64_t dim,
                                   int64_t rope_dim) {
  Scope s(*this, "pack_rows_fp8kv");
  inner_.pack_rows_fp8kv(src, dst, dim, rope_dim);
}

void ProfilingOps::pack_rows_mxfp4(std::span<const float* const> src, std::span<float* const> dst, int64_t dim) {
  Scope s(*this, "pack_rows_mxfp4");
  inner_.pack_rows_mxfp4(src, dst, dim);
}

void ProfilingOps::hc_expand(const Tensor& h, int64_t hc, Tensor& X) {
  Scope s(*this, "hc_expand");
  inner_.hc_expand(h, hc, X);
}

void ProfilingOps::gather_rows(const Tensor& x, std::span<const int64_t> rows, Tensor& out) {
  Scope s(*this, "gather_rows");
  inner_.gather_rows(x, rows, out);
}

void ProfilingOps::add(Tensor& y, const Tensor& x) {
  Scope s(*this, "add");
  inner_.add(y, x);
}

void ProfilingOps::add_round(Tensor& y, const Tensor& x) {
  Scope s(*this, "add_round");
  inner_.add_round(y, x);
}

void ProfilingOps::scale_round(Tensor& x, float s) {
  Scope sc(*this, "scale_round");
  inner_.scale_round(x, s);
}

void ProfilingOps::scale(Tensor& x, float s_) {
  Scope s(*this, "scale");
  inner_.scale(x, s_);
}

void ProfilingOps::add_position_rows(Tensor& x, const Weight& table, std::span<const int64_t> pos) {
  Scope s(*this, label("add_position_rows", &table));
  inner_.add_position_rows(x, table, pos);
}

void ProfilingOps::round_act(Tensor& x) {
  Scope s(*this, "round_act");
  inner_.round_act(x);
}

}  // namespace dsv4::bench
