// CudaOps, MoE: route, expert_ffn, moe_experts (moe/ kernels), checked against cpu_moe.cpp. moe_experts keeps
// the routing on the device: route (sel/weight) -> moe_align (slots grouped by expert, tile list) -> gate/up
// grouped GEMM with the clamped SwiGLU and routing weight fused -> down grouped GEMM scattering rows to slots
// -> combine (per token, its k slot outputs summed in ascending expert order, as the CPU accumulates).
// Rounding points follow CpuOps::linear / expert_ffn: in Bf16 numerics the input of an FP8/FP4 linear with
// K % 128 == 0 is FP8 fake-quantized, g, u, h and y are rounded to bf16. Paths per linear (moe/plan.h): the
// bf16 mma.sync kernels when the linear is act-quantized and its weights are MXFP4 / FP8 with e8m0 scales,
// N % 64 == 0 (decode tile below 32 slots per used expert, prefill tile above); else the generic f32 kernel
// (any weight format F32/BF16/F16/FP8/MXFP4, any N, K; the tiny test models and exact-f32 numerics).
// Decode (moe/moe_gemv.cuh, unless DSV4_MOE_GEMV=0): where the mma paths apply and N % 32 == 0, routed steps
// averaging at most 8 slots per used expert and expert_ffn with at most 64 rows take the swap-AB gemv kernels
// (each used expert's weights streamed once, no shared-memory staging), same rounding points.
// Fused decode (unless DSV4_MOE_FUSE=0): on the gemv paths the kernels read f32 activations and FP8
// fake-quantize them on load (no fake-quant launches, bit-identical operands), and moe_experts routes and aligns
// in one single-CTA kernel when E <= 256 and T * top_k <= 1024 (4 launches: route+align, gate/up, down, combine).
// Capabilities: E <= 1024 routed experts, top_k <= 16; all experts of a call share format and shape.
// expert_ffn on FP8 weights from KernelPaths::expert_ffn_lt_min_n rows (the shared expert in prefill) runs
// act_quant + three cuBLASLt block-scaled FP8 GEMMs (expert_ffn_fp8_gemm; H200 run 98: 4096 rows 263 µs against
// 693 µs on the wgmma kernel).
// Prefill of MXFP4 experts (MmaPrefill, KernelPaths::moe_fp8): act_quant to e4m3 codes + f32 scales and the FP8
// wgmma kernel (moe/moe_gemm_fp8.cuh) when the expert set's e8m0 scales meet its exactness condition
// (fp8_scales_ok, checked once per expert set); else the bf16 wgmma kernel on bf16 fake-quant values.
// Expert layouts and device pointer tables are cached per (DeviceWeights, expert array) (expert_set); a call's
// temporaries come from one stream-ordered Scratch.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/gemm/fp8_gemm_limits.h"
#include "backend/cuda/gemm/launch.h"
#include "backend/cuda/gemm/linear_launch.h"
#include "backend/cuda/gemm/plan.h"
#include "backend/cuda/moe/launch.h"
#include "backend/moe_fp8_scales.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/check.h"

namespace dsv4::backend {
namespace {

using cuda::MoeGemmPath;
using cuda::MoeScaleDtype;
using cuda::MoeWeightFormat;
using cuda::Scratch;

void require_cuda(const Tensor& t, const char* op, const char* name) {
  check(t.device() == Device::Cuda, [&] { return std::string(op) + ": " + name + " is not a CUDA tensor"; });
}

struct WeightLayout {
  MoeWeightFormat format = MoeWeightFormat::F32;
  MoeScaleDtype scale_dtype = MoeScaleDtype::E8m0;
  int64_t N = 0, K = 0;
  bool quantized = false;
  bool operator==(const WeightLayout&) const = default;
};

WeightLayout describe(const Weight& w) {
  if (!(w.present() && w.shape.size() == 2)) check(false,
                                                   [&] { return "moe: expert weight " + w.name + " missing or not 2-D"; });
  WeightLayout l;
  l.N = w.rows();
  l.K = w.cols();
  l.quantized = w.quant != weights::Quant::None;
  switch (w.quant) {
    case weights::Quant::None:
      if (!(w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16))
        check(false,
              [&] { return "moe: expert weight " + w.name + " has unsupported dtype " + std::string(dtype_name(w.dtype)); });
      l.format = w.dtype == DType::F32 ? MoeWeightFormat::F32
                 : w.dtype == DType::BF16 ? MoeWeightFormat::Bf16 : MoeWeightFormat::F16;
      return l;
    case weights::Quant::Fp8Block128: l.format = MoeWeightFormat::Fp8; break;
    case weights::Quant::Mxfp4:
      l.format = MoeWeightFormat::Mxfp4;
      if (l.K % 32 != 0) check(false,
                               [&] { return "moe: MXFP4 weight " + w.name + " in_features not a multiple of 32"; });
      break;
  }
  if (w.scale == nullptr) check(false, [&] { return "moe: quantized expert weight " + w.name + " has no scale"; });
  if (!(w.scale_dtype == DType::F8_E8M0 || w.scale_dtype == DType::F32 || w.scale_dtype == DType::BF16))
    check(false, [&] { return "moe: expert weight " + w.name + " has unsupported scale dtype"; });
  l.scale_dtype = w.scale_dtype == DType::F8_E8M0 ? MoeScaleDtype::E8m0
                  : w.scale_dtype == DType::F32   ? MoeScaleDtype::F32 : MoeScaleDtype::Bf16;
  return l;
}

// The kernel path of one linear and whether its input is FP8 fake-quantized (CpuOps::linear's rule); fp8: the
// FP8 prefill kernel (A as e4m3 codes + act_quant scales).
struct LinearPlan {
  WeightLayout layout;
  bool act_quant = false;
  MoeGemmPath path = MoeGemmPath::Simt;
  bool fp8 = false;
  const uint32_t* fp8_ref = nullptr;  // the FP8 kernel's tensor references (MoeGemmParams::fp8_ref) or null
};

// Gemv dispatch (moe_gemv.cuh), unless DSV4_MOE_GEMV=0: a single expert (expert_ffn) with at most 64 rows
// (one tile of 16 or 64), or a routed decode step whose slots average at most 8 per used expert (tiles of 16).
LinearPlan plan_linear(const WeightLayout& l, bool bf16, int64_t n_slots, int64_t n_experts, bool single) {
  LinearPlan p;
  p.layout = l;
  p.act_quant = bf16 && l.quantized && l.K % 128 == 0;
  if (p.act_quant && cuda::moe_mma_unsupported(l.format, l.scale_dtype, l.N, l.K).empty()) {
    p.path = cuda::moe_mma_tile(n_slots, n_experts);
    if (cuda::moe_gemv_enabled() && cuda::moe_gemv_unsupported(l.format, l.scale_dtype, l.N, l.K).empty()) {
      const int64_t used = std::max<int64_t>(1, std::min(n_slots, n_experts));
      if (single && n_slots <= 64) p.path = n_slots <= 16 ? MoeGemmPath::MmaGemv : MoeGemmPath::MmaGemvWide;
      else if (!single && n_slots <= 8 * used) p.path = MoeGemmPath::MmaGemv;
    }
  }
  return p;
}

bool is_gemv(MoeGemmPath p) { return p == MoeGemmPath::MmaGemv || p == MoeGemmPath::MmaGemvWide; }

// A operand of a grouped GEMM: bf16 fake-quant values (mma), f32 fake-quant values, x itself, or e4m3 codes with
// their act_quant scales (q, q_scale f32 [K/128, q_rows]; the FP8 prefill kernel).
struct GemmInput {
  Scratch buf;
  const __nv_bfloat16* bf16 = nullptr;
  const float* f32 = nullptr;
  const uint8_t* q = nullptr;
  const float* q_scale = nullptr;
  int64_t q_rows = 0;
};

// Byte offset of the act_quant scales after rows x K e4m3 codes (FP8 kernel input).
size_t fp8_scale_offset(int64_t rows, int64_t K) { return (static_cast<size_t>(rows * K) + 255) / 256 * 256; }

// Fused input quant (DSV4_MOE_FUSE, default on): the gemv kernels read f32 x and fake-quantize it themselves.
bool quant_in_gemv(const LinearPlan& lp) { return is_gemv(lp.path) && cuda::moe_fuse_enabled(); }

// Bytes of the converted input prepare_input writes (0: x is read directly).
size_t input_bytes(int64_t rows, int64_t K, const LinearPlan& lp) {
  if ((lp.path == MoeGemmPath::Simt && !lp.act_quant) || quant_in_gemv(lp)) return 0;
  if (lp.fp8) return fp8_scale_offset(rows, K) + static_cast<size_t>(K / 128 * rows) * 4;
  return static_cast<size_t>(rows * K) * (lp.path != MoeGemmPath::Simt ? 2 : 4);
}

// The A operand of x; mem: input_bytes() of device memory (nullptr: a Scratch of its own). x_bf16 (FP8 kernel
// only, x null): the rows as bf16, quantized by act_quant.cuh's kernel.
GemmInput prepare_input(const float* x, int64_t rows, int64_t K, const LinearPlan& lp, cudaStream_t stream,
                        void* mem = nullptr, const __nv_bfloat16* x_bf16 = nullptr) {
  check(!x_bf16 || lp.fp8, "moe: bf16 GEMM input only on the FP8 kernel");
  GemmInput in;
  if ((lp.path == MoeGemmPath::Simt && !lp.act_quant) || quant_in_gemv(lp)) {
    in.f32 = x;
    return in;
  }
  const bool mma = lp.path != MoeGemmPath::Simt;
  if (!mem) {
    in.buf = Scratch(input_bytes(rows, K, lp));
    mem = in.buf.data();
  }
  if (lp.fp8) {  // codes [rows, K], scales [K/128, rows]
    auto* const codes = static_cast<uint8_t*>(mem);
    auto* const scales = reinterpret_cast<float*>(codes + fp8_scale_offset(rows, K));
    in.q = codes;
    in.q_scale = scales;
    in.q_rows = rows;
    if (x_bf16) {
      cuda::ActQuantParams q;
      q.x = x_bf16;
      q.q = codes;
      q.scale = scales;
      q.M = rows;
      q.K = static_cast<int32_t>(K);
      q.scale_stride_m = 1;
      q.scale_stride_kb = rows;
      cuda::launch_act_quant(q, stream);
    } else {
      cuda::ActQuantF32Params q;
      q.x = x;
      q.q = codes;
      q.scale = scales;
      q.M = rows;
      q.K = static_cast<int32_t>(K);
      cuda::launch_act_quant_f32(q, stream);
    }
    return in;
  }
  cuda::MoeFakeQuantParams q;
  q.x = x;
  q.rows = rows;
  q.K = static_cast<int32_t>(K);
  if (mma) q.out_bf16 = static_cast<__nv_bfloat16*>(mem);
  else q.out_f32 = static_cast<float*>(mem);
  cuda::launch_moe_fake_quant(q, stream);
  in.bf16 = q.out_bf16;
  in.f32 = q.out_f32;
  return in;
}

// A tile list on the device (tiles [max_tiles, 3] and n_tiles [1]); tiles == nullptr: the gemv paths' single
// tile of `single_rows` rows of expert 0.
struct Tiles {
  Scratch tiles_buf, n_tiles_buf;
  int32_t* tiles = nullptr;
  int32_t* n_tiles = nullptr;
  int64_t max_tiles = 0;
  int32_t single_rows = 0;
};

// Tiles of one expert's n consecutive rows, built on the host (expert_ffn).
Tiles host_tiles(cuda::CudaContext& ctx, int64_t n, int bm) {
  std::vector<int32_t> t;
  for (int64_t r = 0; r < n; r += bm)
    t.insert(t.end(), {0, static_cast<int32_t>(r), static_cast<int32_t>(std::min<int64_t>(bm, n - r))});
  Tiles out;
  out.max_tiles = static_cast<int64_t>(t.size() / 3);
  const int32_t count = static_cast<int32_t>(out.max_tiles);
  out.tiles_buf = ctx.upload(std::span<const int32_t>(t));
  out.n_tiles_buf = ctx.upload(std::span<const int32_t>(&count, 1));
  out.tiles = out.tiles_buf.as<int32_t>();
  out.n_tiles = out.n_tiles_buf.as<int32_t>();
  return out;
}

void run_gemm(const GemmInput& in, const LinearPlan& lp, const cuda::MoeWeightPtr* w1, const cuda::MoeWeightPtr* w3,
              const Tiles& tiles, const int32_t* perm, bool gather, int64_t top_k, const float* weight, bool round,
              float limit, float* out, cudaStream_t stream, __nv_bfloat16* out_bf16 = nullptr) {
  cuda::MoeGemmParams g;
  g.a_bf16 = in.bf16;
  g.a_f32 = in.f32;
  g.a_q = in.q;
  g.a_scale = in.q_scale;
  g.a_rows = static_cast<int32_t>(in.q_rows);
  g.w1 = w1;
  g.w3 = w3;
  g.perm = perm;
  g.tiles = tiles.tiles;
  g.n_tiles = tiles.n_tiles;
  g.single_rows = tiles.single_rows;
  g.weight = weight;
  g.out = out;
  g.out_bf16 = out_bf16;
  g.N = static_cast<int32_t>(lp.layout.N);
  g.K = static_cast<int32_t>(lp.layout.K);
  g.top_k = static_cast<int32_t>(top_k);
  g.gather = gather;
  g.gate_up = w3 != nullptr;
  g.round_bf16 = round;
  g.fp8_ref = lp.fp8 ? lp.fp8_ref : nullptr;
  g.fp8_stage = cuda::kernel_paths().moe_fp8_stage ? 1 : 0;
  g.fp8_pair_stores = cuda::kernel_paths().moe_fp8_pair_stores ? 1 : 0;
  g.limit = limit;
  g.format = lp.layout.format;
  g.scale_dtype = lp.layout.scale_dtype;
  cuda::launch_moe_gemm(g, lp.path, tiles.max_tiles, stream);
}

// Layouts of w1/w3/w2 of a set of experts (all equal, checked against D) and the device pointer table
// [w1 x E][w3 x E][w2 x E], cached per (DeviceWeights, expert array): describing 3 E weights and uploading the
// table from pageable memory on every call cost more host time than the whole decode step. An entry is keyed by
// the DeviceWeights' unique id (not its address: a new CudaOps at a recycled address, with its weights at
// recycled device addresses, once reused another checkpoint's entry, whose layouts differed: wrong MoE outputs,
// e2e runs 38-39) and reused while the host arrays of the first and last experts are the same and the
// DeviceWeights still maps them to the cached device buffers without uploading anything.
struct ExpertSet {
  WeightLayout l1, l2;
  bool fp8_scales = false;  // fp8_scales_ok: the FP8 prefill kernel is exact on these experts
  cuda::DeviceBuffer fp8_ref;  // u32 [2][E]: its tensor references (MoeGemmParams::fp8_ref), or empty
  cuda::DeviceBuffer table;
  const void* host_first = nullptr;
  const void* host_last = nullptr;
  const void* dev_first = nullptr;
  const void* dev_last = nullptr;
  int64_t D = 0;
};

const ExpertSet& expert_set(cuda::CudaContext& ctx, cuda::DeviceWeights& dw,
                            std::span<const weights::ExpertWeights> experts, int64_t D) {
  using Key = std::tuple<uint64_t, const void*, size_t>;
  static std::map<Key, std::unique_ptr<ExpertSet>> cache;
  const Key key{dw.id(), experts.data(), experts.size()};
  auto it = cache.find(key);
  if (it != cache.end()) {
    ExpertSet& es = *it->second;
    if (es.D == D && es.host_first == experts.front().w1.data && es.host_last == experts.back().w2.data) {
      const int64_t before = dw.bytes();
      const void* f = dw.get(experts.front().w1).raw.data();
      const void* l = dw.get(experts.back().w2).raw.data();
      if (dw.bytes() == before && f == es.dev_first && l == es.dev_last) return es;
    }
    static std::vector<std::unique_ptr<ExpertSet>> retired;  // replaced while a graph was captured: kept
    if (ctx.capturing())
      retired.push_back(std::move(it->second));
    else
      ctx.sync();  // the stale table may still be read by queued kernels
    cache.erase(it);
  }
  auto es = std::make_unique<ExpertSet>();
  const WeightLayout l1 = describe(experts[0].w1), l3 = describe(experts[0].w3), l2 = describe(experts[0].w2);
  if (!(l1 == l3)) check(false,
                         [&] { return "moe: w1 and w3 of " + experts[0].w1.name + " differ in format or shape"; });
  if (!(l1.K == D && l2.N == D && l2.K == l1.N))
    check(false,
          [&] { return "moe: expert shapes of " + experts[0].w1.name + " do not match hidden size " + std::to_string(D); });
  for (const auto& e : experts)
    if (!(describe(e.w1) == l1 && describe(e.w3) == l3 && describe(e.w2) == l2))
      check(false,
            [&] { return "moe: expert " + e.w1.name + " differs in format or shape from " + experts[0].w1.name; });
  es->l1 = l1;
  es->l2 = l2;
  es->D = D;
  std::vector<uint32_t> tensor_ref;
  es->fp8_scales = fp8_scales_ok(experts, tensor_ref);
  if (!tensor_ref.empty()) {
    es->fp8_ref = cuda::DeviceBuffer(tensor_ref.size() * 4);
    ctx.upload_now(es->fp8_ref.data(), tensor_ref.data(), tensor_ref.size() * 4);
  }
  const size_t E = experts.size();
  std::vector<cuda::MoeWeightPtr> t(3 * E);
  auto ptr = [&](const Weight& w) {
    cuda::DeviceWeight& d = dw.get(w);
    return cuda::MoeWeightPtr{d.raw.as<uint8_t>(), d.raw_scale.as<uint8_t>()};
  };
  for (size_t e = 0; e < E; ++e) {
    t[e] = ptr(experts[e].w1);
    t[E + e] = ptr(experts[e].w3);
    t[2 * E + e] = ptr(experts[e].w2);
  }
  es->table = cuda::DeviceBuffer(t.size() * sizeof(cuda::MoeWeightPtr));
  ctx.upload_now(es->table.data(), t.data(), t.size() * sizeof(cuda::MoeWeightPtr));
  es->host_first = experts.front().w1.data;
  es->host_last = experts.back().w2.data;
  es->dev_first = t[0].data;
  es->dev_last = t[3 * E - 1].data;
  return *cache.emplace(key, std::move(es)).first->second;
}

struct ExpertPlan {
  LinearPlan up, down;  // up: w1 and w3
};

ExpertPlan plan_experts(const ExpertSet& es, bool bf16, int64_t n_slots, int64_t n_experts, bool single) {
  ExpertPlan p{plan_linear(es.l1, bf16, n_slots, n_experts, single),
               plan_linear(es.l2, bf16, n_slots, n_experts, single)};
  const cuda::KernelPaths& kp = cuda::kernel_paths();
  auto fp8 = [&](const LinearPlan& lp, bool gate_up) {
    const WeightLayout& l = lp.layout;
    return kp.moe_fp8 && kp.moe_wgmma && es.fp8_scales && lp.act_quant && lp.path == MoeGemmPath::MmaPrefill &&
           cuda::moe_fp8_shape_unsupported(l.format, l.scale_dtype, l.N, l.K, gate_up).empty();
  };
  p.up.fp8 = fp8(p.up, true);
  p.down.fp8 = fp8(p.down, false);
  if (kp.moe_fp8_tensor_ref && es.fp8_ref.bytes() > 0) {  // [E] gate_up words, then [E] down words
    const uint32_t* r = es.fp8_ref.as<uint32_t>();
    p.up.fp8_ref = r;
    p.down.fp8_ref = r + es.fp8_ref.bytes() / 8;
  }
  return p;
}

// The FP8 kernel's input quantization (act_quant_f32) reads x in 16-byte vectors: an unaligned x (a view into a
// larger tensor) keeps the gate/up GEMM on the bf16 kernel. h, the down GEMM's input, is call scratch (aligned).
void fp8_input_alignment(ExpertPlan& ep, const float* x) {
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0) ep.up.fp8 = false;
}

// An expert_ffn call's routing weights f32 [n] uploaded to dst (in the call's scratch), or null without them.
float* routing_weights_to(cuda::CudaContext& ctx, const float* weight, int64_t n, uint8_t* dst) {
  if (!weight) return nullptr;
  ctx.upload_bytes(dst, weight, static_cast<size_t>(n) * 4);
  return reinterpret_cast<float*>(dst);
}

// Bump allocation of one call's temporaries from a single stream-ordered Scratch (one cudaMallocAsync).
struct Arena {
  size_t bytes = 0;
  size_t take(size_t n) {
    const size_t off = bytes;
    bytes += (n + 255) / 256 * 256;
    return off;
  }
};

// Router parameters (validated; hash-layer tokens uploaded into `tok`): sel i32 [T, top_k], weight f32 [T, top_k].
cuda::RouteParams route_params(cuda::CudaContext& ctx, cuda::DeviceWeights& dw, const Tensor& logits,
                               const Weight* bias, const Weight* tid2eid, std::span<const int32_t> tokens,
                               int64_t top_k, bool normalize, float route_scale, int32_t* sel, float* weight,
                               Scratch& tok) {
  require_cuda(logits, "route", "logits");
  const int64_t T = logits.shape().empty() ? 0 : logits.dim(0), E = logits.row_size();
  cuda::RouteParams p;
  if (tid2eid) {
    check(tid2eid->present() && (tid2eid->dtype == DType::I64 || tid2eid->dtype == DType::I32),
          [&] { return "route: tid2eid " + tid2eid->name + " must be an I64 or I32 table"; });
    check(tid2eid->cols() == top_k,
          [&] { return "route: tid2eid " + tid2eid->name + " has " + std::to_string(tid2eid->cols()) +
                                        " columns, top_k is " + std::to_string(top_k); });
    check(static_cast<int64_t>(tokens.size()) >= T, "route: fewer tokens than logits rows");
    for (int64_t t = 0; t < T; ++t)
      check(tokens[static_cast<size_t>(t)] >= 0 && tokens[static_cast<size_t>(t)] < tid2eid->rows(),
            [&] { return "route: token id " + std::to_string(tokens[static_cast<size_t>(t)]) + " outside tid2eid"; });
    tok = ctx.upload(tokens.subspan(0, static_cast<size_t>(T)));
    p.tid2eid = dw.get(*tid2eid).raw.data();
    p.tid2eid_i64 = tid2eid->dtype == DType::I64;
    p.tokens = tok.as<int32_t>();
  }
  if (bias && bias->present()) {
    check(shape_numel(bias->shape) == E, [&] { return "route: bias " + bias->name + " does not have E entries"; });
    p.bias = dw.f32(*bias);
  }
  p.logits = logits.data();
  p.sel = sel;
  p.weight = weight;
  p.T = static_cast<int32_t>(T);
  p.E = static_cast<int32_t>(E);
  p.top_k = static_cast<int32_t>(top_k);
  p.normalize = normalize;
  p.route_scale = route_scale;
  p.rank = cuda::kernel_paths().route_rank;
  return p;
}

// Router on the device: sel i32 [T, top_k], weight f32 [T, top_k].
void route_on_device(cuda::CudaContext& ctx, cuda::DeviceWeights& dw, const Tensor& logits, const Weight* bias,
                     const Weight* tid2eid, std::span<const int32_t> tokens, int64_t top_k, bool normalize,
                     float route_scale, int32_t* sel, float* weight, Scratch& tok) {
  const cuda::RouteParams p =
      route_params(ctx, dw, logits, bias, tid2eid, tokens, top_k, normalize, route_scale, sel, weight, tok);
  cuda::launch_route(p, ctx.stream());
}

}  // namespace

void CudaOps::route(const Tensor& logits, const Weight* bias, const Weight* tid2eid, std::span<const int32_t> tokens,
                    int64_t top_k, bool normalize, float route_scale, std::vector<int32_t>& sel,
                    std::vector<float>& weight) {
  const int64_t n = logits.shape().empty() ? 0 : logits.dim(0) * top_k;
  Scratch dsel(static_cast<size_t>(n) * 4), dweight(static_cast<size_t>(n) * 4), tok;
  route_on_device(ctx_, dw_, logits, bias, tid2eid, tokens, top_k, normalize, route_scale, dsel.as<int32_t>(),
                  dweight.as<float>(), tok);
  sel.assign(static_cast<size_t>(n), 0);
  weight.assign(static_cast<size_t>(n), 0.0f);
  ctx_.download_bytes(sel.data(), dsel.data(), static_cast<size_t>(n) * 4);
  ctx_.download_bytes(weight.data(), dweight.data(), static_cast<size_t>(n) * 4);
}

// expert_ffn at many rows on FP8 weights (the shared expert in prefill): act_quant(x), [g | u] by two block-scaled
// FP8 GEMMs (cuBLASLt) with bf16 outputs, h = bf16(clamped SwiGLU [· weight]) fused into h's act_quant, the down
// GEMM, widened to f32 — CpuOps::expert_ffn's rounding points, FP8 tensor-core accumulation inside each 128-block
// as every FP8 linear of the fp8 path.
void CudaOps::expert_ffn_fp8_gemm(const Tensor& x, const weights::ExpertWeights& e, const float* weight,
                                  float swiglu_limit, Tensor& y) {
  const int64_t D = e.w1.cols(), I = e.w1.rows(), n = x.numel() / D;
  on_device(y, {n, D});
  cudaStream_t s = ctx_.stream();
  Arena ar;
  const size_t o_xq = ar.take(static_cast<size_t>(n * D)), o_xs = ar.take(static_cast<size_t>(n * (D / 128)) * 4);
  const size_t o_g = ar.take(static_cast<size_t>(n * I) * 2), o_u = ar.take(static_cast<size_t>(n * I) * 2);
  const size_t o_hq = ar.take(static_cast<size_t>(n * I)), o_hs = ar.take(static_cast<size_t>(n * (I / 128)) * 4);
  const size_t o_y = ar.take(static_cast<size_t>(n * D) * 2), o_w = ar.take(weight ? static_cast<size_t>(n) * 4 : 0);
  Scratch mem(ar.bytes);
  auto at = [&](size_t off) { return static_cast<uint8_t*>(mem.data()) + off; };
  float* wdev = routing_weights_to(ctx_, weight, n, at(o_w));
  auto* g = reinterpret_cast<__nv_bfloat16*>(at(o_g));
  auto* u = reinterpret_cast<__nv_bfloat16*>(at(o_u));
  auto* yb = reinterpret_cast<__nv_bfloat16*>(at(o_y));
  cuda::ActQuantF32Params aq;
  aq.x = x.data();
  aq.q = at(o_xq);
  aq.scale = reinterpret_cast<float*>(at(o_xs));
  aq.M = n;
  aq.K = static_cast<int32_t>(D);
  cuda::launch_act_quant_f32(aq, s);
  fp8_gemm_bf16(aq.q, aq.scale, n, e.w1, g);
  fp8_gemm_bf16(aq.q, aq.scale, n, e.w3, u);
  cuda::ActQuantF32Params hq;
  hq.g = g;
  hq.u = u;
  hq.glu_weight = wdev;
  hq.glu_limit = swiglu_limit;
  hq.q = at(o_hq);
  hq.scale = reinterpret_cast<float*>(at(o_hs));
  hq.M = n;
  hq.K = static_cast<int32_t>(I);
  cuda::launch_act_quant_f32(hq, s);
  fp8_gemm_bf16(hq.q, hq.scale, n, e.w2, yb);
  cuda::WidenBf16Params wp;
  wp.in = yb;
  wp.y = y.data();
  wp.n = n * D;
  cuda::launch_widen_bf16(wp, s);
}

void CudaOps::expert_ffn(const Tensor& x, const weights::ExpertWeights& e, const float* weight, float swiglu_limit,
                         Tensor& y) {
  require_cuda(x, "expert_ffn", "x");
  const int64_t D = describe(e.w1).K;
  if (x.numel() % D != 0)
    check(false, [&] { return "expert_ffn " + e.w1.name + ": input width does not match " + std::to_string(D); });
  const int64_t n = x.numel() / D;
  // FP8 decode path (1 <= n <= DSV4_CUDA_PATHS expert_ffn_fp8_decode_max_n, default 1, at most 16): Bf16
  // numerics, FP8 w1/w3/w2 with e8m0 or f32 block scales, D and I multiples of 128. Two fp8_decode launches
  // (gemm/fp8_decode.cuh) with CpuOps::expert_ffn's rounding points: [g | u] = bf16(act_quant(x) · [w1 | w3]ᵀ) in
  // one launch (w3 stacked below w1), then y = bf16(act_quant(h) · w2ᵀ) with h = bf16(silu(min(g, L)) ·
  // clamp(u, ±L) [· weight]) computed in the second kernel's act_quant prologue.
  auto fp8 = [](const Weight& w) {
    return w.quant == weights::Quant::Fp8Block128 && w.dtype == DType::F8_E4M3 && w.shape.size() == 2 &&
           (w.scale_dtype == DType::F8_E8M0 || w.scale_dtype == DType::F32);
  };
  const bool fp8_ffn = bf16_acts() && fp8(e.w1) && fp8(e.w3) && fp8(e.w2) && e.w3.rows() == e.w1.rows() &&
                       e.w3.cols() == D && e.w2.rows() == D && e.w2.cols() == e.w1.rows() && D % 128 == 0 &&
                       e.w1.rows() % 128 == 0 && 2 * e.w1.rows() <= INT32_MAX && D <= INT32_MAX &&
                       reinterpret_cast<uintptr_t>(x.data()) % 16 == 0;
  const int64_t lt_min_n = cuda::kernel_paths().expert_ffn_lt_min_n;
  if (fp8_ffn && lt_min_n > 0 && n >= lt_min_n) {
    expert_ffn_fp8_gemm(x, e, weight, swiglu_limit, y);
    return;
  }
  const int64_t fp8_decode_max_n = std::min<int64_t>(16, cuda::kernel_paths().expert_ffn_fp8_decode_max_n);
  if (fp8_ffn && n >= 1 && n <= fp8_decode_max_n) {
    const int64_t I = e.w1.rows();
    const cuda::Fp8DecodeSchedule s1 = cuda::fp8_decode_schedule_for_device({n, 2 * I, D}, ctx_.sm_count());
    const cuda::Fp8DecodeSchedule s2 = cuda::fp8_decode_schedule_for_device({n, D, I}, ctx_.sm_count());
    if (s1.ok && s2.ok) {
      on_device(y, {n, D});
      cudaStream_t s = ctx_.stream();
      const size_t gu_bytes = static_cast<size_t>(n * 2 * I) * 4;
      Scratch mem(gu_bytes + (weight ? static_cast<size_t>(n) * 4 : 0));
      float* gu = mem.as<float>();
      float* wdev = routing_weights_to(ctx_, weight, n, static_cast<uint8_t*>(mem.data()) + gu_bytes);
      // [g | u] = act_quant(x) · [w1 | w3]ᵀ: w3 stacked below w1 (rows [I, 2I)).
      const auto* w1_raw = static_cast<const uint8_t*>(dw_.get(e.w1).raw.data());
      cuda::Fp8DecodeParams p1 =
          cuda::fp8_decode_params(s1, x.data(), D, w1_raw, dw_.fp8_scale_f32(e.w1), gu, 2 * I, n, 2 * I, D);
      p1.w_hi = static_cast<const uint8_t*>(dw_.get(e.w3).raw.data());
      p1.w_scale_hi = dw_.fp8_scale_f32(e.w3);
      p1.n_split = static_cast<int32_t>(I);
      cuda::launch_fp8_decode(s1, p1, s);
      // y = act_quant(h) · w2ᵀ, h = SwiGLU(g, u) [· weight] in the prologue.
      const auto* w2_raw = static_cast<const uint8_t*>(dw_.get(e.w2).raw.data());
      cuda::Fp8DecodeParams p2 =
          cuda::fp8_decode_params(s2, gu, 2 * I, w2_raw, dw_.fp8_scale_f32(e.w2), y.data(), D, n, D, I);
      p2.x_up = gu + I;
      p2.glu_weight = wdev;
      p2.glu_limit = swiglu_limit;
      cuda::launch_fp8_decode(s2, p2, s);
      return;
    }
  }
  const ExpertSet& es = expert_set(ctx_, dw_, std::span<const weights::ExpertWeights>(&e, 1), D);
  ExpertPlan ep = plan_experts(es, bf16_acts(), n, 1, true);
  fp8_input_alignment(ep, x.data());
  on_device(y, {n, D});
  if (n == 0) return;
  cudaStream_t s = ctx_.stream();
  const auto* tab = es.table.as<cuda::MoeWeightPtr>();
  const int64_t I = ep.up.layout.N;

  Arena ar;
  const size_t o_w = weight ? ar.take(static_cast<size_t>(n) * 4) : 0;
  const size_t o_h = ar.take(static_cast<size_t>(n * I) * 4);
  const size_t o_xin = ar.take(input_bytes(n, D, ep.up));
  const size_t o_hin = ar.take(input_bytes(n, I, ep.down));
  Scratch mem(ar.bytes);
  auto at = [&](size_t off) { return static_cast<uint8_t*>(mem.data()) + off; };
  float* wdev = routing_weights_to(ctx_, weight, n, at(o_w));
  auto tiles_for = [&](const LinearPlan& lp) {
    if (!is_gemv(lp.path)) return host_tiles(ctx_, n, cuda::moe_gemm_bm(lp.path));
    Tiles t;  // one tile of all n rows
    t.single_rows = static_cast<int32_t>(n);
    return t;
  };
  const Tiles t_up = tiles_for(ep.up);
  const Tiles t_down = tiles_for(ep.down);
  float* h = reinterpret_cast<float*>(at(o_h));
  {
    const GemmInput in = prepare_input(x.data(), n, D, ep.up, s, at(o_xin));
    run_gemm(in, ep.up, tab, tab + 1, t_up, nullptr, false, 1, wdev, bf16_acts(), swiglu_limit, h, s);
  }
  const GemmInput in = prepare_input(h, n, I, ep.down, s, at(o_hin));
  run_gemm(in, ep.down, tab + 2, nullptr, t_down, nullptr, false, 1, nullptr, bf16_acts(), 0.0f, y.data(), s);
}

void CudaOps::moe_experts(const Tensor& x, const Tensor& logits, const weights::MoEWeights& w, bool hash,
                          std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                          float swiglu_limit, Tensor& out) {
  require_cuda(x, "moe_experts", "x");
  const int64_t T = x.shape().empty() ? 0 : x.dim(0), D = x.row_size();
  const int64_t E = static_cast<int64_t>(w.experts.size());
  if (!(E > 0 && logits.numel() == T * E))
    check(false, [&] { return "moe_experts: logits are not [T, " + std::to_string(E) + "]"; });
  on_device(out, {T, D});
  if (T == 0) return;
  const int64_t n_slots = T * top_k;
  check(n_slots <= INT32_MAX / 2, "moe_experts: too many slots");
  cudaStream_t s = ctx_.stream();
  const ExpertSet& es = expert_set(ctx_, dw_, w.experts, D);
  ExpertPlan ep = plan_experts(es, bf16_acts(), n_slots, E, false);
  fp8_input_alignment(ep, x.data());
  const int64_t I = ep.up.layout.N;
  const auto* tab = es.table.as<cuda::MoeWeightPtr>();
  const int bm_up = cuda::moe_gemm_bm(ep.up.path), bm_down = cuda::moe_gemm_bm(ep.down.path);
  const int64_t mt_up = cuda::moe_max_tiles(n_slots, E, bm_up), mt_down = cuda::moe_max_tiles(n_slots, E, bm_down);
  // Both GEMMs on the FP8 kernel (Bf16 numerics: h and y are bf16-rounded): h and y stored as bf16, which halves
  // their bytes in HBM (Flash T = 4096: 0.6 GB of f32 written and read back per call).
  const bool bf16_io = ep.up.fp8 && ep.down.fp8 && cuda::kernel_paths().moe_fp8_bf16_io;
  const size_t io_bytes = bf16_io ? 2 : 4;

  // All temporaries of the call in one allocation.
  Arena ar;
  const size_t o_sel = ar.take(static_cast<size_t>(n_slots) * 4), o_weight = ar.take(static_cast<size_t>(n_slots) * 4);
  const size_t o_counts = ar.take(static_cast<size_t>(E) * 4), o_offsets = ar.take(static_cast<size_t>(E + 1) * 4);
  const size_t o_perm = ar.take(static_cast<size_t>(n_slots) * 4);
  const size_t o_tiles_up = ar.take(static_cast<size_t>(mt_up) * 12), o_nt_up = ar.take(4);
  const size_t o_tiles_down = bm_down != bm_up ? ar.take(static_cast<size_t>(mt_down) * 12) : 0;
  const size_t o_nt_down = bm_down != bm_up ? ar.take(4) : 0;
  const size_t o_xin = ar.take(input_bytes(T, D, ep.up));
  const size_t o_h = ar.take(static_cast<size_t>(n_slots * I) * io_bytes);
  const size_t o_hin = ar.take(input_bytes(n_slots, I, ep.down));
  const size_t o_y = ar.take(static_cast<size_t>(n_slots * D) * io_bytes);
  Scratch mem(ar.bytes);
  auto at = [&](size_t off) { return static_cast<uint8_t*>(mem.data()) + off; };
  int32_t* sel = reinterpret_cast<int32_t*>(at(o_sel));
  float* weight = reinterpret_cast<float*>(at(o_weight));
  int32_t* perm = reinterpret_cast<int32_t*>(at(o_perm));

  Scratch tok;
  // Decode with the gemv paths on both linears (one tile height): route and align in one launch.
  const bool fused_route = cuda::moe_fuse_enabled() && is_gemv(ep.up.path) && is_gemv(ep.down.path) &&
                           bm_up == bm_down && cuda::moe_route_align_unsupported(E, top_k, n_slots).empty();
  const cuda::RouteParams rp = route_params(ctx_, dw_, logits, hash ? nullptr : &w.gate_bias,
                                            hash ? &w.tid2eid : nullptr, tokens, top_k, normalize, route_scale,
                                            sel, weight, tok);
  if (!fused_route) cuda::launch_route(rp, s);

  // Slots grouped by expert; one tile list per distinct tile height.
  auto align = [&](int bm, int64_t max_tiles, size_t o_tiles, size_t o_nt, Tiles& t, bool place) {
    t.max_tiles = max_tiles;
    t.tiles = reinterpret_cast<int32_t*>(at(o_tiles));
    t.n_tiles = reinterpret_cast<int32_t*>(at(o_nt));
    cuda::MoeAlignParams a;
    a.sel = sel;
    a.counts = reinterpret_cast<int32_t*>(at(o_counts));
    a.offsets = reinterpret_cast<int32_t*>(at(o_offsets));
    a.perm = perm;
    a.tiles = t.tiles;
    a.n_tiles = t.n_tiles;
    a.n_slots = static_cast<int32_t>(n_slots);
    a.E = static_cast<int32_t>(E);
    a.bm = bm;
    a.max_tiles = static_cast<int32_t>(t.max_tiles);
    if (place) cuda::launch_moe_align(a, s);
    else cuda::launch_moe_align_tiles(a, s);
  };
  Tiles t_up, t_down;
  if (fused_route) {
    t_up.max_tiles = mt_up;
    t_up.tiles = reinterpret_cast<int32_t*>(at(o_tiles_up));
    t_up.n_tiles = reinterpret_cast<int32_t*>(at(o_nt_up));
    cuda::MoeRouteAlignParams ra;
    ra.route = rp;
    ra.align.sel = sel;
    ra.align.counts = reinterpret_cast<int32_t*>(at(o_counts));
    ra.align.offsets = reinterpret_cast<int32_t*>(at(o_offsets));
    ra.align.perm = perm;
    ra.align.tiles = t_up.tiles;
    ra.align.n_tiles = t_up.n_tiles;
    ra.align.n_slots = static_cast<int32_t>(n_slots);
    ra.align.E = static_cast<int32_t>(E);
    ra.align.bm = bm_up;
    ra.align.max_tiles = static_cast<int32_t>(mt_up);
    cuda::launch_moe_route_align(ra, s);
  } else {
    align(bm_up, mt_up, o_tiles_up, o_nt_up, t_up, true);
  }
  if (bm_down != bm_up) align(bm_down, mt_down, o_tiles_down, o_nt_down, t_down, false);
  const Tiles& td = bm_down != bm_up ? t_down : t_up;

  float* h = bf16_io ? nullptr : reinterpret_cast<float*>(at(o_h));
  auto* h_bf16 = bf16_io ? reinterpret_cast<__nv_bfloat16*>(at(o_h)) : nullptr;
  {
    const GemmInput in = prepare_input(x.data(), T, D, ep.up, s, at(o_xin));
    run_gemm(in, ep.up, tab, tab + E, t_up, perm, true, top_k, weight, bf16_acts(), swiglu_limit, h, s, h_bf16);
  }
  float* y = bf16_io ? nullptr : reinterpret_cast<float*>(at(o_y));
  auto* y_bf16 = bf16_io ? reinterpret_cast<__nv_bfloat16*>(at(o_y)) : nullptr;
  {
    const GemmInput in = prepare_input(h, n_slots, I, ep.down, s, at(o_hin), h_bf16);
    run_gemm(in, ep.down, tab + 2 * E, nullptr, td, perm, false, top_k, nullptr, bf16_acts(), 0.0f, y, s, y_bf16);
  }
  cuda::MoeCombineParams c;
  c.y = y;
  c.y_bf16 = y_bf16;
  c.sel = sel;
  c.out = out.data();
  c.T = static_cast<int32_t>(T);
  c.D = static_cast<int32_t>(D);
  c.top_k = static_cast<int32_t>(top_k);
  cuda::launch_moe_combine(c, s);
}

}  // namespace dsv4::backend
