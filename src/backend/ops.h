// The op interface of dsv4 (STYLE rule 1): model code calls ops.<op>(...) and never touches a backend
// directly. backend/cpu is the reference implementation (f32 arithmetic, weights dequantized on the fly,
// multi-threaded); a CUDA backend implements the same interface and is checked against it op by op.
// Every tensor argument states dtype and shape. Activations are f32 Tensors on the backend's device(); their
// values are rounded to bf16 at the reference's rounding points when Numerics::act == ActDtype::Bf16.
// Outputs are resized onto the backend's device. Host spans (ids, positions, pointer lists, row blocks) are plan
// data the backend copies to its device; pointers in them address the backend's device memory. Index outputs
// (the indexer's selections) stay on the device: no op of a decode step returns device data to the host.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/index_tensor.h"
#include "core/result.h"
#include "core/row_blocks.h"
#include "core/tensor.h"
#include "weights/model_weights.h"

namespace dsv4::backend {

using weights::HcWeights;
using weights::Weight;

// Activation precision. F32: no rounding anywhere (the setting used to compare with HF in float32).
// Bf16: values rounded to bf16 where the official reference rounds (spec §10.3), and FP8 act_quant
// (blocks of 128, ue8m0 scales) on the input of every FP8/FP4 linear (spec §2.6-2.7).
enum class ActDtype : uint8_t { F32, Bf16 };
// Cache precision of the KV rows (window and compressed). Fp8: no-RoPE dims FP8 fake-quantized in blocks
// of 64 (spec §5.3 step 4), the official numerics and the default.
enum class KvCacheDtype : uint8_t { F32, Bf16, Fp8 };
// Precision of the lightning indexer's q and keys. Fp4: Hadamard rotation then FP4 fake-quant in blocks of
// 32 (spec §5.8), the official numerics and the default.
enum class IndexerDtype : uint8_t { F32, Bf16, Fp4 };

struct Numerics {
  ActDtype act = ActDtype::Bf16;
  KvCacheDtype kv_cache = KvCacheDtype::Fp8;
  IndexerDtype indexer = IndexerDtype::Fp4;
  // Everything in f32, no cache rounding: what HF transformers computes in float32.
  static Numerics exact_f32() { return {ActDtype::F32, KvCacheDtype::F32, IndexerDtype::F32}; }
};

Result<KvCacheDtype> parse_kv_cache_dtype(const std::string& s);   // "f32" | "bf16" | "fp8"
Result<IndexerDtype> parse_indexer_dtype(const std::string& s);    // "f32" | "bf16" | "fp4"
Result<ActDtype> parse_act_dtype(const std::string& s);            // "f32" | "bf16"
std::string to_string(KvCacheDtype d);
std::string to_string(IndexerDtype d);
std::string to_string(ActDtype d);

// How a linear's output is produced (spec §2.1 dtype policy).
enum class LinearKind : uint8_t {
  Quantized,  // FP8/FP4-class: act_quant(x) in Bf16 mode, bf16 output
  Bf16,       // bf16 weight, bf16 output (indexer weights_proj, wo_a einsum)
  F32,        // f32 math and f32 output (compressor, router, head)
};

// Per-row RoPE frequencies of one table (n_pairs = rope_dim / 2).
struct RopeTable {
  std::vector<float> freqs;  // f32 [rope_dim / 2]
};

// Parameters of hc_pre / hc_head (spec §4).
struct HcParams {
  int64_t hc = 4;
  int64_t sinkhorn_iters = 20;
  float hc_eps = 1e-6f;
  float norm_eps = 1e-6f;
};

// The rows [row_begin, row_begin + n_rows) of a batched call belong to one sequence whose entries (compressed
// KV rows, or indexer keys) are `entries`. A call's chunks cover its rows in order.
struct SeqEntries {
  int64_t row_begin = 0;
  int64_t n_rows = 0;
  RowBlocks entries;  // rows on the backend's device: f32 [dim], Mxfp4 rows (indexer keys) or Fp8Kv rows (KV entries)
};

// One query's attention inputs (spec §5.5): its window rows (host-built, at most sliding_window), then
// n_compressed compressed entries of its sequence (AttentionKeys).
struct AttentionQuery {
  const float* q = nullptr;                    // f32 [H, d]
  std::span<const float* const> window;        // each one row in AttentionKeys::window_format, oldest first
  int64_t n_compressed = 0;
};

// Keys of a sparse_attention call (K = V). Query i (a row of chunk c) attends its window rows, then the
// entries e_j, j < n_compressed, of chunk c's `entries`: e_j = j (selected == nullptr: all of the first
// n_vis entries, HCA layers) or e_j = selected[i, j] (CSA layers: the indexer's selections).
// Window rows are f32 [d] rows, or Fp8Kv rows (window_format, with window_rope_dim bf16 values: the FP8 KV
// cache's packed rows, decoded exactly as the entries are).
struct AttentionKeys {
  std::span<const AttentionQuery> queries;
  std::span<const SeqEntries> seqs;
  const IndexTensor* selected = nullptr;  // i32 [n_q, >= max n_compressed] on the backend's device, or nullptr
  RowFormat window_format = RowFormat::F32;
  int64_t window_rope_dim = 0;
};

// Shape of a lightning-indexer call.
struct IndexerDims {
  int64_t n_heads = 0;
  int64_t head_dim = 0;
  int64_t top_k = 0;
};

// Post-processing of segments of `dim` values (the q and kv heads, compressor entries), in this order:
// round_act (round_input), rms_norm (norm; norm_weight may be null), RoPE on the last rope_dim values of every
// segment of row t at pos[t] (rope_dim > 0), then the cache rounding (kv_round with rope_dim, or indexer_round,
// in the backend's numerics).
struct RowFinish {
  enum class Round : uint8_t { None, Kv, Indexer };
  bool round_input = false;
  bool norm = false;
  const Weight* norm_weight = nullptr;
  float eps = 0.0f;
  int64_t rope_dim = 0;
  const RopeTable* rope = nullptr;
  Round round = Round::None;
};

class Ops {
 public:
  virtual ~Ops() = default;

  // y = x · Wᵀ. x f32 [T, K], W [N, K] any checkpoint format, y f32 [T, N] (resized).
  virtual void linear(const Tensor& x, const Weight& w, Tensor& y, LinearKind kind) = 0;
  // y1 = linear(x, w1), y2 = linear(x, w2): two linears of one input and kind (the query and KV projections).
  // The results are those of the two calls; a backend may compute both in one launch.
  virtual void linear_pair(const Tensor& x, const Weight& w1, const Weight& w2, Tensor& y1, Tensor& y2,
                           LinearKind kind) {
    linear(x, w1, y1, kind);
    linear(x, w2, y2, kind);
  }
  // y[t] = W_g · x_g for group g: x f32 [T, G, K/G]... grouped output projection wo_a (spec §5.6):
  // x f32 [T, G * Kg], W [G * R, Kg], y f32 [T, G * R].
  virtual void grouped_linear(const Tensor& x, const Weight& w, int64_t groups, Tensor& y) = 0;
  // out f32 [T, D] = embed[ids].
  virtual void embed(const Weight& table, std::span<const int32_t> ids, Tensor& out) = 0;
  // In-place RMSNorm over consecutive segments of `dim` values in x (x.numel() % dim == 0). With w == nullptr
  // the norm is unweighted (the per-head q norm).
  virtual void rms_norm(Tensor& x, int64_t dim, const Weight* w, float eps) = 0;
  // In-place interleaved RoPE on the last rope_dim values of every segment of `dim` values of x.
  // Segment s of row t uses position pos[t]. inverse rotates by -angle.
  virtual void rope(Tensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos,
                    const RopeTable& table, bool inverse) = 0;
  // RowFinish f on x f32 [T, segs * dim] (pos: T positions). The default runs the ops above in order, which
  // defines the result; a backend may fuse them (CUDA: one kernel, bitwise equal to its own op sequence).
  virtual void finish_rows(Tensor& x, int64_t dim, std::span<const int64_t> pos, const RowFinish& f);
  // Cache rounding of KV rows x f32 [n, d] (no-RoPE dims for Fp8; all dims for Bf16).
  virtual void kv_round(Tensor& x, int64_t dim, int64_t rope_dim, KvCacheDtype dt) = 0;
  // Indexer rounding of rows x f32 [n, dim]: Hadamard + FP4 fake-quant (Fp4), bf16 rounding (Bf16), none.
  virtual void indexer_round(Tensor& x, int64_t dim, IndexerDtype dt) = 0;
  // mHC (spec §4.1): X f32 [T, hc, D] -> x f32 [T, D], post f32 [T, hc], comb f32 [T, hc, hc].
  virtual void hc_pre(const Tensor& X, const HcWeights& w, const HcParams& p, Tensor& x,
                      Tensor& post, Tensor& comb) = 0;
  // hc_pre, then rms_norm(x, D, &norm, eps) (a sublayer's input norm). The default runs the two ops; a backend
  // may fuse them (CUDA at decode sizes: one kernel, bitwise equal to its two).
  virtual void hc_pre_norm(const Tensor& X, const HcWeights& w, const HcParams& p, const Weight& norm, float eps,
                           Tensor& x, Tensor& post, Tensor& comb);
  // mHC (spec §4.2): out f32 [T, hc, D] = post ⊗ a + combᵀ R.
  virtual void hc_post(const Tensor& a, const Tensor& R, const Tensor& post,
                       const Tensor& comb, Tensor& out) = 0;
  // mHC head (spec §4.4): X f32 [T, hc, D] -> y f32 [T, D].
  virtual void hc_head(const Tensor& X, const HcWeights& w, const HcParams& p, Tensor& y) = 0;
  // Sparse attention with sink (spec §5.5) for each query of keys.queries: out f32 [n_q, H, d]; sink f32 [H].
  // Every query has at least one key. Window rows are f32 [d]; compressed entries are f32 [d] rows or Fp8Kv rows
  // (per chunk entries.format, with entries.rope_dim) read as their decoded values, which are exact: the keys are
  // those of f32 rows holding the same values (the CPU reference gives bitwise the same output). Mxfp4 entries are
  // rejected.
  virtual void sparse_attention(const AttentionKeys& keys, int64_t n_heads, int64_t dim, const Weight& sink,
                                float scale, Tensor& out) = 0;
  // Lightning indexer selection (spec §5.8 step 6-7): for query row t of chunk c, score[s] =
  // Σ_h w[t,h]·relu(q[t,h]·K[s]) over the n_keys[t] entries K[s] = c.entries.row(s) (f32 [head_dim] or the
  // decoded Mxfp4 row, per c.entries.format),
  // then the top min(top_k, n_keys[t]) entries s by score, ties to the lower index, in descending score order.
  // q f32 [T, nh, hd], w f32 [T, nh]; the chunks cover rows [0, T) in order. selected: i32 [T, top_k] on the
  // backend's device (resized), row t's first min(top_k, n_keys[t]) slots the selection, the rest -1. Nothing
  // returns to the host: the caller knows each row's count from its position.
  virtual void indexer_topk(const Tensor& q, const Tensor& w, std::span<const SeqEntries> seqs,
                            std::span<const int64_t> n_keys, const IndexerDims& dims, IndexTensor& selected) = 0;
  // Expert FFN with clamped SwiGLU (spec §6.2) for rows x f32 [n, D]:
  // y f32 [n, D] = w2( weight[i] · silu(min(w1 x, lim)) · clamp(w3 x, ±lim) ). weight == nullptr means 1
  // (the shared expert); weight is a host array. swiglu_limit <= 0 disables the clamp.
  virtual void expert_ffn(const Tensor& x, const weights::ExpertWeights& e, const float* weight,
                          float swiglu_limit, Tensor& y) = 0;
  // MoE router (spec §6.1): logits f32 [T, E] -> sel [T, k] expert ids, weight f32 [T, k] (host vectors).
  // s = sqrt(softplus(z)); selection by tid2eid[token] (hash layers, tid2eid != nullptr) or top-k of s + bias;
  // weights s[sel] normalised to sum 1 (when normalize), times route_scale.
  virtual void route(const Tensor& logits, const Weight* bias, const Weight* tid2eid,
                     std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                     std::vector<int32_t>& sel, std::vector<float>& weight) = 0;
  // The routed experts of a MoE sublayer (spec §6): route(logits) then out f32 [T, D] = Σ_k expert_ffn of
  // row t through its k selected experts with their weights, summed in ascending expert id order.
  virtual void moe_experts(const Tensor& x, const Tensor& logits, const weights::MoEWeights& w,
                           bool hash, std::span<const int32_t> tokens, int64_t top_k, bool normalize,
                           float route_scale, float swiglu_limit, Tensor& out) = 0;
  // Compressor pooling (spec §5.7), n entries at once: out[i][k] = Σ_j softmax_j(g_j[k]) · a_j[k] over the
  // candidate rows j in [offsets[i], offsets[i+1]). a_rows/g_rows: pointers to f32 [dim] values on this
  // backend's device. out f32 [n, dim], n = offsets.size() - 1.
  virtual void softmax_pool(std::span<const float* const> a_rows, std::span<const float* const> g_rows,
                            std::span<const int64_t> offsets, int64_t dim, Tensor& out) = 0;
  // Row copies between tensors and caches: dst[i][0, width) = src[i][0, width), in order (a later copy
  // to the same destination wins). Pointers on this backend's device.
  virtual void copy_rows(std::span<const float* const> src, std::span<float* const> dst, int64_t width) = 0;
  // Indexer key stores in the Mxfp4 row format (core/row_blocks.h): row dst[i] = fp4_pack of src[i][0, dim)
  // (codes, scales, zero pad: mxfp4_row_bytes(dim) bytes), dim % 32 == 0. Lossless for FP4-fake-quantized rows.
  virtual void pack_rows_mxfp4(std::span<const float* const> src, std::span<float* const> dst, int64_t dim) = 0;
  // Compressed KV entry stores in the Fp8Kv row format (core/row_blocks.h): row dst[i] = fp8kv_pack_row of
  // src[i][0, dim) (fp8kv_row_bytes(dim, rope_dim) bytes), (dim - rope_dim) % 64 == 0. Lossless for rows that the
  // FP8 KV rounding (RowFinish::Round::Kv with KvCacheDtype::Fp8) produced.
  virtual void pack_rows_fp8kv(std::span<const float* const> src, std::span<float* const> dst, int64_t dim,
                               int64_t rope_dim) = 0;
  // X f32 [T, hc, D]: every stream a copy of h f32 [T, D].
  virtual void hc_expand(const Tensor& h, int64_t hc, Tensor& X) = 0;
  // out f32 [rows.size(), row_size] = x[rows].
  virtual void gather_rows(const Tensor& x, std::span<const int64_t> rows, Tensor& out) = 0;
  // y += x, elementwise; x has y's element count, or y.numel() is a multiple of it (x repeated).
  virtual void add(Tensor& y, const Tensor& x) = 0;
  // x *= s.
  virtual void scale(Tensor& x, float s) = 0;
  // add(y, x) then round_act(y), and scale(x, s) then round_act(x); the defaults run the two ops, a backend may
  // fuse each pair (CUDA: one elementwise kernel, bitwise the same).
  virtual void add_round(Tensor& y, const Tensor& x);
  virtual void scale_round(Tensor& x, float s);
  // x[t] += table[pos[t] % table.rows()] for every row t; table f32 [m, x.row_size()] (compressor ape).
  virtual void add_position_rows(Tensor& x, const Weight& table, std::span<const int64_t> pos) = 0;
  // Decode-step graphs (the CUDA backend captures a step's ops and runs them as CUDA graphs; other backends run
  // ops as they come): graph_begin(T) before the first op of a step of T single-row chunks, graph_break()
  // between segments (a segment may start running while the host issues the next; outside a graph step it
  // does nothing), graph_end() after the last op, before anything reads the step's outputs on the host;
  // graph_abort() after an exception.
  virtual void graph_begin(int64_t /*n_rows*/) {}
  virtual void graph_break() {}
  virtual void graph_end() {}
  virtual void graph_abort() noexcept {}
  // Branches, a concurrency hint (the CUDA backend queues side ops on a second stream; other backends run ops in
  // order and ignore it): ops issued after branch_fork() and branch_side(true), until branch_side(false), form a
  // side branch that starts from the fork point and may run beside the main ops issued meanwhile; branch_join()
  // makes every later op wait for it. Between fork and join neither branch may write what the other one reads or
  // writes; host plan data and results are unchanged, so outputs are the same as in order.
  // branch_mark() notes the side branch's current end; branch_wait_mark() makes later main ops wait for it (a
  // partial join: the side branch goes on). Without a fork both do nothing.
  virtual void branch_fork() {}
  virtual void branch_side(bool /*on*/) {}
  virtual void branch_mark() {}
  virtual void branch_wait_mark() {}
  virtual void branch_join() {}
  // The device this backend's tensors and cache memory live on.
  virtual Device device() const = 0;
  // Rounds every value to bf16 when activations are bf16; no-op in f32 mode.
  virtual void round_act(Tensor& x) = 0;
  virtual const Numerics& numerics() const = 0;
};

}  // namespace dsv4::backend
