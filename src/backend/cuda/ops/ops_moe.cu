// CudaOps, MoE: route, expert_ffn, moe_experts (moe/ kernels), checked against cpu_moe.cpp. moe_experts keeps
// the routing on the device: route (sel/weight) -> moe_align (slots grouped by expert, tile list) -> gate/up
// grouped GEMM with the clamped SwiGLU and routing weight fused -> down grouped GEMM scattering rows to slots
// -> combine (per token, its k slot outputs summed in ascending expert order, as the CPU accumulates).
// Rounding points follow CpuOps::linear / expert_ffn: in Bf16 numerics the input of an FP8/FP4 linear with
// K % 128 == 0 is FP8 fake-quantized, g, u, h and y are rounded to bf16. Paths per linear (moe/plan.h): the
// bf16 mma.sync kernels when the linear is act-quantized and its weights are MXFP4 / FP8 with e8m0 scales,
// N % 64 == 0 (decode tile below 32 slots per used expert, prefill tile above); else the generic f32 kernel
// (any weight format F32/BF16/F16/FP8/MXFP4, any N, K; the tiny test models and exact-f32 numerics).
// Capabilities: E <= 1024 routed experts, top_k <= 16; all experts of a call share format and shape.
// Per call, expert pointer tables (3 E entries) and plan data are uploaded as stream-ordered scratch.
#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/moe/launch.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/check.h"

namespace dsv4::backend {
namespace {

using cuda::MoeGemmPath;
using cuda::MoeScaleDtype;
using cuda::MoeWeightFormat;
using cuda::Scratch;

void require_cuda(const Tensor& t, const char* op, const char* name) {
  check(t.device() == Device::Cuda, std::string(op) + ": " + name + " is not a CUDA tensor");
}

struct WeightLayout {
  MoeWeightFormat format = MoeWeightFormat::F32;
  MoeScaleDtype scale_dtype = MoeScaleDtype::E8m0;
  int64_t N = 0, K = 0;
  bool quantized = false;
  bool operator==(const WeightLayout&) const = default;
};

WeightLayout describe(const Weight& w) {
  check(w.present() && w.shape.size() == 2, "moe: expert weight " + w.name + " missing or not 2-D");
  WeightLayout l;
  l.N = w.rows();
  l.K = w.cols();
  l.quantized = w.quant != weights::Quant::None;
  switch (w.quant) {
    case weights::Quant::None:
      check(w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16,
            "moe: expert weight " + w.name + " has unsupported dtype " + std::string(dtype_name(w.dtype)));
      l.format = w.dtype == DType::F32 ? MoeWeightFormat::F32
                 : w.dtype == DType::BF16 ? MoeWeightFormat::Bf16 : MoeWeightFormat::F16;
      return l;
    case weights::Quant::Fp8Block128: l.format = MoeWeightFormat::Fp8; break;
    case weights::Quant::Mxfp4:
      l.format = MoeWeightFormat::Mxfp4;
      check(l.K % 32 == 0, "moe: MXFP4 weight " + w.name + " in_features not a multiple of 32");
      break;
  }
  check(w.scale != nullptr, "moe: quantized expert weight " + w.name + " has no scale");
  check(w.scale_dtype == DType::F8_E8M0 || w.scale_dtype == DType::F32 || w.scale_dtype == DType::BF16,
        "moe: expert weight " + w.name + " has unsupported scale dtype");
  l.scale_dtype = w.scale_dtype == DType::F8_E8M0 ? MoeScaleDtype::E8m0
                  : w.scale_dtype == DType::F32   ? MoeScaleDtype::F32 : MoeScaleDtype::Bf16;
  return l;
}

// The kernel path of one linear and whether its input is FP8 fake-quantized (CpuOps::linear's rule).
struct LinearPlan {
  WeightLayout layout;
  bool act_quant = false;
  MoeGemmPath path = MoeGemmPath::Simt;
};

LinearPlan plan_linear(const WeightLayout& l, bool bf16, int64_t n_slots, int64_t n_experts) {
  LinearPlan p;
  p.layout = l;
  p.act_quant = bf16 && l.quantized && l.K % 128 == 0;
  if (p.act_quant && cuda::moe_mma_unsupported(l.format, l.scale_dtype, l.N, l.K).empty())
    p.path = cuda::moe_mma_tile(n_slots, n_experts);
  return p;
}

// A operand of a grouped GEMM: bf16 fake-quant values (mma), f32 fake-quant values, or x itself.
struct GemmInput {
  Scratch buf;
  const __nv_bfloat16* bf16 = nullptr;
  const float* f32 = nullptr;
};

GemmInput prepare_input(const float* x, int64_t rows, int64_t K, const LinearPlan& lp, cudaStream_t stream) {
  GemmInput in;
  if (lp.path == MoeGemmPath::Simt && !lp.act_quant) {
    in.f32 = x;
    return in;
  }
  const bool mma = lp.path != MoeGemmPath::Simt;
  in.buf = Scratch(static_cast<size_t>(rows * K) * (mma ? 2 : 4));
  cuda::MoeFakeQuantParams q;
  q.x = x;
  q.rows = rows;
  q.K = static_cast<int32_t>(K);
  if (mma) q.out_bf16 = in.buf.as<__nv_bfloat16>();
  else q.out_f32 = in.buf.as<float>();
  cuda::launch_moe_fake_quant(q, stream);
  in.bf16 = q.out_bf16;
  in.f32 = q.out_f32;
  return in;
}

// A tile list on the device (tiles [max_tiles, 3] and n_tiles [1]).
struct Tiles {
  Scratch tiles, n_tiles;
  int64_t max_tiles = 0;
};

// Tiles of one expert's n consecutive rows, built on the host (expert_ffn).
Tiles host_tiles(cuda::CudaContext& ctx, int64_t n, int bm) {
  std::vector<int32_t> t;
  for (int64_t r = 0; r < n; r += bm)
    t.insert(t.end(), {0, static_cast<int32_t>(r), static_cast<int32_t>(std::min<int64_t>(bm, n - r))});
  Tiles out;
  out.max_tiles = static_cast<int64_t>(t.size() / 3);
  const int32_t count = static_cast<int32_t>(out.max_tiles);
  out.tiles = ctx.upload(std::span<const int32_t>(t));
  out.n_tiles = ctx.upload(std::span<const int32_t>(&count, 1));
  return out;
}

void run_gemm(const GemmInput& in, const LinearPlan& lp, const cuda::MoeWeightPtr* w1, const cuda::MoeWeightPtr* w3,
              const Tiles& tiles, const int32_t* perm, bool gather, int64_t top_k, const float* weight, bool round,
              float limit, float* out, cudaStream_t stream) {
  cuda::MoeGemmParams g;
  g.a_bf16 = in.bf16;
  g.a_f32 = in.f32;
  g.w1 = w1;
  g.w3 = w3;
  g.perm = perm;
  g.tiles = tiles.tiles.as<int32_t>();
  g.n_tiles = tiles.n_tiles.as<int32_t>();
  g.weight = weight;
  g.out = out;
  g.N = static_cast<int32_t>(lp.layout.N);
  g.K = static_cast<int32_t>(lp.layout.K);
  g.top_k = static_cast<int32_t>(top_k);
  g.gather = gather;
  g.gate_up = w3 != nullptr;
  g.round_bf16 = round;
  g.limit = limit;
  g.format = lp.layout.format;
  g.scale_dtype = lp.layout.scale_dtype;
  cuda::launch_moe_gemm(g, lp.path, tiles.max_tiles, stream);
}

// Layouts of w1/w3/w2 of a set of experts (all equal), checked against D.
struct ExpertPlan {
  LinearPlan up, down;  // up: w1 and w3
};

ExpertPlan plan_experts(std::span<const weights::ExpertWeights> experts, int64_t D, bool bf16, int64_t n_slots) {
  const WeightLayout l1 = describe(experts[0].w1), l3 = describe(experts[0].w3), l2 = describe(experts[0].w2);
  check(l1 == l3, "moe: w1 and w3 of " + experts[0].w1.name + " differ in format or shape");
  check(l1.K == D && l2.N == D && l2.K == l1.N, "moe: expert shapes of " + experts[0].w1.name +
                                                    " do not match hidden size " + std::to_string(D));
  for (const auto& e : experts)
    check(describe(e.w1) == l1 && describe(e.w3) == l3 && describe(e.w2) == l2,
          "moe: expert " + e.w1.name + " differs in format or shape from " + experts[0].w1.name);
  const int64_t E = static_cast<int64_t>(experts.size());
  return {plan_linear(l1, bf16, n_slots, E), plan_linear(l2, bf16, n_slots, E)};
}

// Device pointer tables: [w1 x E][w3 x E][w2 x E].
Scratch upload_tables(cuda::CudaContext& ctx, cuda::DeviceWeights& dw, std::span<const weights::ExpertWeights> experts) {
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
  return ctx.upload(std::span<const cuda::MoeWeightPtr>(t));
}

// Router on the device: sel i32 [T, top_k], weight f32 [T, top_k].
void route_on_device(cuda::CudaContext& ctx, cuda::DeviceWeights& dw, const Tensor& logits, const Weight* bias,
                     const Weight* tid2eid, std::span<const int32_t> tokens, int64_t top_k, bool normalize,
                     float route_scale, Scratch& sel, Scratch& weight) {
  require_cuda(logits, "route", "logits");
  const int64_t T = logits.shape().empty() ? 0 : logits.dim(0), E = logits.row_size();
  sel = Scratch(static_cast<size_t>(T * top_k) * 4);
  weight = Scratch(static_cast<size_t>(T * top_k) * 4);
  cuda::RouteParams p;
  Scratch tok;
  if (tid2eid) {
    check(tid2eid->present() && (tid2eid->dtype == DType::I64 || tid2eid->dtype == DType::I32),
          "route: tid2eid " + tid2eid->name + " must be an I64 or I32 table");
    check(tid2eid->cols() == top_k, "route: tid2eid " + tid2eid->name + " has " + std::to_string(tid2eid->cols()) +
                                        " columns, top_k is " + std::to_string(top_k));
    check(static_cast<int64_t>(tokens.size()) >= T, "route: fewer tokens than logits rows");
    for (int64_t t = 0; t < T; ++t)
      check(tokens[static_cast<size_t>(t)] >= 0 && tokens[static_cast<size_t>(t)] < tid2eid->rows(),
            "route: token id " + std::to_string(tokens[static_cast<size_t>(t)]) + " outside tid2eid");
    tok = ctx.upload(tokens.subspan(0, static_cast<size_t>(T)));
    p.tid2eid = dw.get(*tid2eid).raw.data();
    p.tid2eid_i64 = tid2eid->dtype == DType::I64;
    p.tokens = tok.as<int32_t>();
  }
  if (bias && bias->present()) {
    check(shape_numel(bias->shape) == E, "route: bias " + bias->name + " does not have E entries");
    p.bias = dw.f32(*bias);
  }
  p.logits = logits.data();
  p.sel = sel.as<int32_t>();
  p.weight = weight.as<float>();
  p.T = static_cast<int32_t>(T);
  p.E = static_cast<int32_t>(E);
  p.top_k = static_cast<int32_t>(top_k);
  p.normalize = normalize;
  p.route_scale = route_scale;
  cuda::launch_route(p, ctx.stream());
}

}  // namespace

void CudaOps::route(const Tensor& logits, const Weight* bias, const Weight* tid2eid, std::span<const int32_t> tokens,
                    int64_t top_k, bool normalize, float route_scale, std::vector<int32_t>& sel,
                    std::vector<float>& weight) {
  Scratch dsel, dweight;
  route_on_device(ctx_, dw_, logits, bias, tid2eid, tokens, top_k, normalize, route_scale, dsel, dweight);
  const int64_t n = logits.shape().empty() ? 0 : logits.dim(0) * top_k;
  sel.assign(static_cast<size_t>(n), 0);
  weight.assign(static_cast<size_t>(n), 0.0f);
  ctx_.download_bytes(sel.data(), dsel.data(), static_cast<size_t>(n) * 4);
  ctx_.download_bytes(weight.data(), dweight.data(), static_cast<size_t>(n) * 4);
}

void CudaOps::expert_ffn(const Tensor& x, const weights::ExpertWeights& e, const float* weight, float swiglu_limit,
                         Tensor& y) {
  require_cuda(x, "expert_ffn", "x");
  const int64_t D = describe(e.w1).K;
  check(x.numel() % D == 0, "expert_ffn " + e.w1.name + ": input width does not match " + std::to_string(D));
  const int64_t n = x.numel() / D;
  const ExpertPlan ep = plan_experts(std::span<const weights::ExpertWeights>(&e, 1), D, bf16_acts(), n);
  on_device(y, {n, D});
  if (n == 0) return;
  cudaStream_t s = ctx_.stream();
  Scratch tables = upload_tables(ctx_, dw_, std::span<const weights::ExpertWeights>(&e, 1));
  const auto* tab = tables.as<cuda::MoeWeightPtr>();
  Scratch wdev;
  if (weight) wdev = ctx_.upload(std::span<const float>(weight, static_cast<size_t>(n)));
  const int64_t I = ep.up.layout.N;

  const Tiles t_up = host_tiles(ctx_, n, cuda::moe_gemm_bm(ep.up.path));
  const Tiles t_down = host_tiles(ctx_, n, cuda::moe_gemm_bm(ep.down.path));
  Scratch h(static_cast<size_t>(n * I) * 4);
  {
    const GemmInput in = prepare_input(x.data(), n, D, ep.up, s);
    run_gemm(in, ep.up, tab, tab + 1, t_up, nullptr, false, 1, weight ? wdev.as<float>() : nullptr, bf16_acts(),
             swiglu_limit, h.as<float>(), s);
  }
  const GemmInput in = prepare_input(h.as<float>(), n, I, ep.down, s);
  run_gemm(in, ep.down, tab + 2, nullptr, t_down, nullptr, false, 1, nullptr, bf16_acts(), 0.0f, y.data(), s);
}

void CudaOps::moe_experts(const Tensor& x, const Tensor& logits, const weights::MoEWeights& w, bool hash,
                          std::span<const int32_t> tokens, int64_t top_k, bool normalize, float route_scale,
                          float swiglu_limit, Tensor& out) {
  require_cuda(x, "moe_experts", "x");
  const int64_t T = x.shape().empty() ? 0 : x.dim(0), D = x.row_size();
  const int64_t E = static_cast<int64_t>(w.experts.size());
  check(E > 0 && logits.numel() == T * E, "moe_experts: logits are not [T, " + std::to_string(E) + "]");
  on_device(out, {T, D});
  if (T == 0) return;
  const int64_t n_slots = T * top_k;
  check(n_slots <= INT32_MAX / 2, "moe_experts: too many slots");
  cudaStream_t s = ctx_.stream();
  Scratch sel, weight;
  route_on_device(ctx_, dw_, logits, hash ? nullptr : &w.gate_bias, hash ? &w.tid2eid : nullptr, tokens, top_k,
                  normalize, route_scale, sel, weight);
  const ExpertPlan ep = plan_experts(w.experts, D, bf16_acts(), n_slots);
  const int64_t I = ep.up.layout.N;
  Scratch tables = upload_tables(ctx_, dw_, w.experts);
  const auto* tab = tables.as<cuda::MoeWeightPtr>();

  // Slots grouped by expert; one tile list per distinct tile height.
  Scratch counts(static_cast<size_t>(E) * 4), offsets(static_cast<size_t>(E + 1) * 4), perm(static_cast<size_t>(n_slots) * 4);
  auto align = [&](int bm, Tiles& t, bool place) {
    t.max_tiles = cuda::moe_max_tiles(n_slots, E, bm);
    t.tiles = Scratch(static_cast<size_t>(t.max_tiles) * 12);
    t.n_tiles = Scratch(4);
    cuda::MoeAlignParams a;
    a.sel = sel.as<int32_t>();
    a.counts = counts.as<int32_t>();
    a.offsets = offsets.as<int32_t>();
    a.perm = perm.as<int32_t>();
    a.tiles = t.tiles.as<int32_t>();
    a.n_tiles = t.n_tiles.as<int32_t>();
    a.n_slots = static_cast<int32_t>(n_slots);
    a.E = static_cast<int32_t>(E);
    a.bm = bm;
    a.max_tiles = static_cast<int32_t>(t.max_tiles);
    if (place) cuda::launch_moe_align(a, s);
    else cuda::launch_moe_align_tiles(a, s);
  };
  Tiles t_up, t_down;
  const int bm_up = cuda::moe_gemm_bm(ep.up.path), bm_down = cuda::moe_gemm_bm(ep.down.path);
  align(bm_up, t_up, true);
  if (bm_down != bm_up) align(bm_down, t_down, false);
  const Tiles& td = bm_down != bm_up ? t_down : t_up;

  Scratch h(static_cast<size_t>(n_slots * I) * 4);
  {
    const GemmInput in = prepare_input(x.data(), T, D, ep.up, s);
    run_gemm(in, ep.up, tab, tab + E, t_up, perm.as<int32_t>(), true, top_k, weight.as<float>(), bf16_acts(),
             swiglu_limit, h.as<float>(), s);
  }
  Scratch y(static_cast<size_t>(n_slots * D) * 4);
  {
    const GemmInput in = prepare_input(h.as<float>(), n_slots, I, ep.down, s);
    run_gemm(in, ep.down, tab + 2 * E, nullptr, td, perm.as<int32_t>(), false, top_k, nullptr, bf16_acts(), 0.0f,
             y.as<float>(), s);
  }
  cuda::MoeCombineParams c;
  c.y = y.as<float>();
  c.sel = sel.as<int32_t>();
  c.out = out.data();
  c.T = static_cast<int32_t>(T);
  c.D = static_cast<int32_t>(D);
  c.top_k = static_cast<int32_t>(top_k);
  cuda::launch_moe_combine(c, s);
}

}  // namespace dsv4::backend
