// The op interface of dsv4 (STYLE rule 1): model code calls ops.<op>(...) and never touches a backend
// directly. backend/cpu is the reference implementation (f32 arithmetic, weights dequantized on the fly,
// multi-threaded); a CUDA backend implements the same interface and is checked against it op by op.
// Every tensor argument states dtype and shape. Activations are f32 HostTensors on the CPU backend; their
// values are rounded to bf16 at the reference's rounding points when Numerics::act == ActDtype::Bf16.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
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

// One query's attention inputs (spec §5.5): keys are rows of `kv` (K = V), selected by `index` (-1 skipped).
struct AttentionQuery {
  const float* q;               // f32 [H, d]
  std::span<const float* const> keys;  // each f32 [d]; window rows then compressed rows
};

class Ops {
 public:
  virtual ~Ops() = default;

  // y = x · Wᵀ. x f32 [T, K], W [N, K] any checkpoint format, y f32 [T, N] (resized).
  virtual void linear(const HostTensor& x, const Weight& w, HostTensor& y, LinearKind kind) = 0;
  // y[t] = W_g · x_g for group g: x f32 [T, G, K/G]... grouped output projection wo_a (spec §5.6):
  // x f32 [T, G * Kg], W [G * R, Kg], y f32 [T, G * R].
  virtual void grouped_linear(const HostTensor& x, const Weight& w, int64_t groups, HostTensor& y) = 0;
  // out f32 [T, D] = embed[ids].
  virtual void embed(const Weight& table, std::span<const int32_t> ids, HostTensor& out) = 0;
  // In-place RMSNorm over consecutive segments of `dim` values in x (x.numel() % dim == 0). With w == nullptr
  // the norm is unweighted (the per-head q norm).
  virtual void rms_norm(HostTensor& x, int64_t dim, const Weight* w, float eps) = 0;
  // In-place interleaved RoPE on the last rope_dim values of every segment of `dim` values of x.
  // Segment s of row t uses position pos[t]. inverse rotates by -angle.
  virtual void rope(HostTensor& x, int64_t dim, int64_t rope_dim, std::span<const int64_t> pos,
                    const RopeTable& table, bool inverse) = 0;
  // Cache rounding of KV rows x f32 [n, d] (no-RoPE dims for Fp8; all dims for Bf16).
  virtual void kv_round(HostTensor& x, int64_t dim, int64_t rope_dim, KvCacheDtype dt) = 0;
  // Indexer rounding of rows x f32 [n, dim]: Hadamard + FP4 fake-quant (Fp4), bf16 rounding (Bf16), none.
  virtual void indexer_round(HostTensor& x, int64_t dim, IndexerDtype dt) = 0;
  // mHC (spec §4.1): X f32 [T, hc, D] -> x f32 [T, D], post f32 [T, hc], comb f32 [T, hc, hc].
  virtual void hc_pre(const HostTensor& X, const HcWeights& w, const HcParams& p, HostTensor& x,
                      HostTensor& post, HostTensor& comb) = 0;
  // mHC (spec §4.2): out f32 [T, hc, D] = post ⊗ a + combᵀ R.
  virtual void hc_post(const HostTensor& a, const HostTensor& R, const HostTensor& post,
                       const HostTensor& comb, HostTensor& out) = 0;
  // mHC head (spec §4.4): X f32 [T, hc, D] -> y f32 [T, D].
  virtual void hc_head(const HostTensor& X, const HcWeights& w, const HcParams& p, HostTensor& y) = 0;
  // Sparse attention with sink (spec §5.5) for each query: out f32 [n_q, H, d].
  virtual void sparse_attention(std::span<const AttentionQuery> queries, int64_t n_heads, int64_t dim,
                                const float* sink, float scale, HostTensor& out) = 0;
  // Indexer scores (spec §5.8 step 6): for query t, score[s] = Σ_h w[t,h]·relu(q[t,h]·K[s]) over the
  // first n_keys[t] of the key rows (each f32 [ihd]). q f32 [T, nh, ihd], w f32 [T, nh]; scores[t] resized.
  virtual void indexer_scores(const HostTensor& q, const HostTensor& w, std::span<const float* const> keys,
                              std::span<const int64_t> n_keys, int64_t n_heads, int64_t head_dim,
                              std::vector<std::vector<float>>& scores) = 0;
  // Expert FFN with clamped SwiGLU (spec §6.2) for rows x f32 [n, D]:
  // y f32 [n, D] = w2( weight[i] · silu(min(w1 x, lim)) · clamp(w3 x, ±lim) ). weight == nullptr means 1
  // (the shared expert). swiglu_limit <= 0 disables the clamp.
  virtual void expert_ffn(const HostTensor& x, const weights::ExpertWeights& e, const float* weight,
                          float swiglu_limit, HostTensor& y) = 0;
  // MoE router (spec §6.1): logits f32 [T, E] -> sel [T, k] expert ids, weight f32 [T, k].
  // s = sqrt(softplus(z)); selection by tid2eid[token] (hash layers, tid2eid != nullptr) or top-k of s + bias;
  // weights s[sel] normalised to sum 1 (when normalize), times route_scale.
  virtual void route(const HostTensor& logits, const Weight* bias, const Weight* tid2eid,
                     std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                     std::vector<int32_t>& sel, std::vector<float>& weight) = 0;
  // Compressor pooling (spec §5.7): out[k] = Σ_i softmax_i(g_i[k]) · a_i[k] over n candidate rows.
  // a_rows/g_rows: n pointers to f32 [dim] values. out f32 [dim].
  virtual void softmax_pool(std::span<const float* const> a_rows, std::span<const float* const> g_rows,
                            int64_t dim, float* out) = 0;
  // Rounds every value to bf16 when activations are bf16; no-op in f32 mode.
  virtual void round_act(HostTensor& x) = 0;
  virtual const Numerics& numerics() const = 0;
};

}  // namespace dsv4::backend
