// CudaOps linear family (spec §2.1 dtype policy, §2.3 act_quant, §2.6 FP8 GEMM, §5.6 wo_a, §7.2 formats):
// linear, linear_pair, grouped_linear and embed, numerically following CpuOps (src/backend/cpu/cpu_linear.cpp):
//   act_quant  when act == Bf16, kind == Quantized, the weight is quantized (FP8/MXFP4) and K % 128 == 0: x is FP8
//              fake-quantized in blocks of 128 with ue8m0 scales (other K: no act_quant, as the CPU);
//   bf16 x     when act == Bf16 and kind is Bf16 or F32, and in grouped_linear: x is read as bf16(x) (round_x),
//              as CpuOps (the reference holds activations in bf16; a no-op on the model's tensors);
//   math       f32 dot products with the weight dequantized exactly;
//   output     rounded to bf16 when act == Bf16 and kind != F32 (grouped_linear: whenever act == Bf16).
// Paths, chosen per call:
//   fp8-decode fp8_decode_kernel (gemm/fp8_decode.cuh): the fp8 path's conditions with M <= fp8_decode_max_m(N, K)
//              (16 for N·K <= 4M weights like wq_a, 8 for K <= 4096, else 4: measured on the H200, the kernel's cost
//              grows ~1-3 µs per row while act_quant + cuBLASLt stays ~25 µs to M = 64) and a 16-byte aligned x:
//              act_quant fused into the kernel, f32 output written directly, one launch, no scratch.
//              DSV4_LINEAR_FP8_DECODE=0 takes the fp8 path instead (A/B timing, fallback);
//              DSV4_LINEAR_FP8_DECODE_MAX_M=<m> overrides the row limit (at most kFp8DecodeMaxM).
//   fp8        act_quant + FP8 block-scaled GEMM (gemm/plan.h), bf16 out widened to f32: Bf16 acts, Quantized, FP8
//              weight, K % 128 == 0, N % 16 == 0. mma.sync kernel for M <= 4 (M <= 16 for N·K <= 4M), cuBLASLt
//              block-scaled above (mma when cuBLASLt has no algorithm). The official numerics at every Flash FP8
//              linear.
//   gemv       linear_gemv_kernel, weight read in its stored format, f32 FMAs: M <= 16 otherwise (decode of bf16
//              weights, wo_a, the f32 numerics), and the fallback for any shape.
//   dense      cuBLASLt for M > 16 otherwise (M > 4 for weights of >= 256M elements: the head): Bf16 acts with
//              bf16-representable weights (BF16, FP8, MXFP4; FP8/MXFP4 read from a bf16 copy cached in
//              DeviceWeight::bf16, built on first use) run bf16 tensor cores on x
//              split into hi + lo bf16 halves. The halves are stacked as 2M rows of one GEMM (the weight is read
//              once, not twice), then y = lo + hi (+ bf16 rounding) in one elementwise pass; one plain launch on
//              the hi half when x is bf16 (after act_quant, or round_x). Else f32 (TF32 off) on
//              DeviceWeights::f32 (with round_x on a rounded copy of x). The plan's algorithm
//              is timed on first use (dense_plan.h). Fallbacks: DSV4_LINEAR_DENSE_STACKED=0 (two launches, beta =
//              1 for lo), DSV4_LINEAR_BF16_CACHE=0 (per-call weight conversion into scratch).
//   fp8-gemv   grouped_linear (no act_quant, f32 x) on FP8 weights at M <= fp8_gemv_max_m() (4): fp8_gemv_kernel
//              (gemm/fp8_gemv.cuh), 16-byte weight loads, f32 FMAs, deterministic reduction, one launch.
//              DSV4_CUDA_PATHS linear_fp8_gemv=0 takes the gemv path instead (A/B timing, fallback).
// linear_pair (the attention's wq_a and wkv of one x): one fp8_decode launch with the second weight stacked below
// the first and its rows written to the second output, when the stacked shape takes the fp8-decode path; else the
// two linear calls.
// Plans are built lazily per shape and cached for the process (cuBLASLt algorithm selection is slow).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/dense_plan.h"
#include "backend/cuda/gemm/fp8_gemm_limits.h"
#include "backend/cuda/gemm/launch.h"
#include "backend/cuda/gemm/linear_launch.h"
#include "backend/cuda/gemm/plan.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "backend/cuda/common/kernel_paths.h"
#include "core/check.h"

namespace dsv4::backend {
namespace {

using cuda::DenseGemmPlan;
using cuda::DenseGemmShape;
using cuda::DenseGemmType;
using cuda::Fp8GemmPath;
using cuda::Fp8GemmPlan;
using cuda::Scratch;
using cuda::WeightFormat;
using cuda::WeightRef;

constexpr int64_t kGemvMaxM = 16;                  // decode rows: the weight-streaming kernels win

// Rows up to which the fp8 path runs the mma.sync kernel rather than cuBLASLt (H200 run 1: mma 5.6 µs vs ~15 µs at
// M = 1, but its cost grows with M: wq_b 16 → 57 µs from M = 1 to 64 while cuBLASLt stays ~16 µs).
int64_t fp8_mma_max_m(int64_t N, int64_t K) { return N * K <= (int64_t{4} << 20) ? kGemvMaxM : 4; }

// Rows up to which the fused fp8_decode kernel beats act_quant + cuBLASLt + widen (~23-27 µs at any M <= 64).
// Measured (µs, M = 1 / 16 / 64): wq_a [1024x4096] 8.7 / 17.9 / 68.7, wq_b [32768x1024] 14.4 / 28.8 / 125,
// wo_b [4096x8192] 20.3 / 41.4 / 169.
int64_t fp8_decode_max_m(int64_t N, int64_t K) {
  const int64_t forced = cuda::kernel_paths().linear_fp8_decode_max_m;
  if (forced >= 0) return std::min<int64_t>(forced, cuda::kFp8DecodeMaxM);
  if (N * K <= (int64_t{4} << 20)) return 16;
  return K <= 4096 ? 8 : 4;
}
// Rows up to which grouped_linear on FP8 weights takes fp8_gemv_kernel (token tiles of <= 4: larger M re-reads
// the weight once per tile). DSV4_CUDA_PATHS linear_fp8_gemv_max_m=<m> overrides (at most kGemvMaxM).
int64_t fp8_gemv_max_m() {
  const int64_t forced = cuda::kernel_paths().linear_fp8_gemv_max_m;
  return forced >= 0 ? std::min<int64_t>(forced, kGemvMaxM) : 4;
}
// Rows up to which linear, gemv_pair and grouped_linear run a GEMV kernel rather than a dense GEMM (`rule`: the
// per-call default below). DSV4_CUDA_PATHS linear_gemv_max_m=<m> overrides it (the op test's A/B rows).
int64_t gemv_max_m(int64_t rule) {
  const int64_t forced = cuda::kernel_paths().linear_gemv_max_m;
  return forced >= 0 ? forced : rule;
}
// The GEMV's rows for a weight of n_elems in Bf16 numerics. Its time grows with M (it reads every x row per weight
// vector) while the dense GEMM's stays ~16 µs at M <= 16 for these sizes, so the crossover falls as the weight
// grows. H200 run 148 (µs, GEMV / dense): compressor 1024 x 4096 M=4 12.7 / 16.4, M=8 21.2 / 16.2, M=16 39.4 /
// 17.9; gate 256 x 4096 M=16 11.4 / 22.7; weights_proj 64 x 4096 M=16 10.3 / 25.2: the GEMV while M · n_elems
// <= 24 Mi (gate and weights_proj at every M <= 16, the compressor to M = 6). A weight as large as the Flash head
// (129280 x 4096) keeps the GEMV to M = 4 (bench run 31: 1.1 ms at M = 8 against 0.25 ms at M = 1, where the GEMV
// reads it at the copy rate). Other formats: the GEMV to kGemvMaxM.
int64_t bf16_gemv_max_m(WeightFormat f, int64_t n_elems) {
  if (f != WeightFormat::Bf16 || n_elems <= 0) return kGemvMaxM;
  if (n_elems >= (int64_t{256} << 20)) return 4;
  return std::clamp<int64_t>((int64_t{24} << 20) / n_elems, 1, kGemvMaxM);
}
constexpr size_t kMaxWorkspaceBytes = 32ull << 20;  // cuBLASLt workspace cap

struct PlanCache {
  std::mutex mu;
  std::unique_ptr<cuda::CublasLt> lt;  // FP8 plans take a CublasLt object
  std::map<std::tuple<int, int64_t, int64_t, int64_t>, std::unique_ptr<Fp8GemmPlan>> fp8;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int>, std::unique_ptr<DenseGemmPlan>>
      dense;
};

PlanCache& plans() {
  static PlanCache* c = new PlanCache();  // never destroyed: plans outlive every CudaOps
  return *c;
}

// FP8 GEMM plan for (M, N, K): mma for small M, cuBLASLt above, mma when cuBLASLt has no algorithm.
const Fp8GemmPlan& fp8_plan(int64_t M, int64_t N, int64_t K) {
  PlanCache& c = plans();
  std::lock_guard<std::mutex> lock(c.mu);
  auto get = [&](Fp8GemmPath path) -> const Fp8GemmPlan& {
    auto& slot = c.fp8[{static_cast<int>(path), M, N, K}];
    if (!slot) {
      if (!c.lt) c.lt = std::make_unique<cuda::CublasLt>();
      slot = std::make_unique<Fp8GemmPlan>(
          Fp8GemmPlan::create({M, N, K}, path, c.lt.get(), kMaxWorkspaceBytes));
    }
    return *slot;
  };
  if (M > fp8_mma_max_m(N, K)) {
    const Fp8GemmPlan& lt = get(Fp8GemmPath::CublasLt);
    if (lt.ok()) return lt;
  }
  return get(Fp8GemmPath::Mma);
}

// The fused decode kernel's schedule for (M, N, K) (cached by gemm/launch.h); ok false when it does not apply.
cuda::Fp8DecodeSchedule fp8_decode_schedule(int64_t M, int64_t N, int64_t K, int sm_count) {
  const bool enabled = cuda::kernel_paths().linear_fp8_decode;
  if (!enabled || M > cuda::kFp8DecodeMaxM || M > fp8_decode_max_m(N, K)) return {};
  return cuda::fp8_decode_schedule_for_device({M, N, K}, sm_count);
}

const DenseGemmPlan& dense_plan(const DenseGemmShape& s, cublasLtHandle_t handle) {
  PlanCache& c = plans();
  std::lock_guard<std::mutex> lock(c.mu);
  auto& slot = c.dense[{s.M, s.N, s.K, s.groups, s.x_ld, s.y_ld, static_cast<int>(s.type), s.align}];
  if (!slot) slot = std::make_unique<DenseGemmPlan>(DenseGemmPlan::create(s, handle, kMaxWorkspaceBytes));
  return *slot;
}

// Largest power of two (at most 16) dividing v.
int32_t align_of(uint64_t v) {
  int32_t a = 16;
  while (a > 1 && v % static_cast<uint64_t>(a) != 0) a /= 2;
  return a;
}

// The stored format of a checkpoint weight as the kernels read it (dw: its device copy).
WeightRef weight_ref(cuda::DeviceWeight& dw, const Weight& w) {
  WeightRef r;
  r.data = dw.raw.data();
  r.scale = dw.raw_scale.data();
  const std::string who = "CUDA linear: weight " + w.name;
  if (w.quant != weights::Quant::None) {
    switch (w.scale_dtype) {
      case DType::F8_E8M0: r.scale_format = cuda::ScaleFormat::E8m0; break;
      case DType::F32: r.scale_format = cuda::ScaleFormat::F32; break;
      case DType::BF16: r.scale_format = cuda::ScaleFormat::Bf16; break;
      default: panic(who + ": unsupported scale dtype " + std::string(dtype_name(w.scale_dtype)));
    }
    check(w.scale_shape.size() == 2, [&] { return who + ": scale shape " + shape_str(w.scale_shape) + " is not 2-D"; });
    r.scale_cols = static_cast<int32_t>(w.scale_shape[1]);
  }
  switch (w.quant) {
    case weights::Quant::None:
      switch (w.dtype) {
        case DType::F32: r.format = WeightFormat::F32; break;
        case DType::BF16: r.format = WeightFormat::Bf16; break;
        case DType::F16: r.format = WeightFormat::F16; break;
        default: panic(who + ": unsupported dtype " + std::string(dtype_name(w.dtype)));
      }
      break;
    case weights::Quant::Fp8Block128:
      check(w.dtype == DType::F8_E4M3, [&] { return who + ": Fp8Block128 weight must be F8_E4M3"; });
      check(w.scale_shape[0] == (w.rows() + 127) / 128 && w.scale_shape[1] == (w.cols() + 127) / 128,
            [&] { return who + ": scale shape " + shape_str(w.scale_shape) + " does not match " + shape_str(w.shape); });
      r.format = WeightFormat::Fp8;
      break;
    case weights::Quant::Mxfp4:
      check(w.cols() % 32 == 0 && w.scale_shape[0] == w.rows() && w.scale_shape[1] == w.cols() / 32,
            [&] { return who + ": MXFP4 scale shape " + shape_str(w.scale_shape) + " does not match " + shape_str(w.shape); });
      r.format = WeightFormat::Mxfp4;
      break;
  }
  return r;
}

// One linear problem: y[M, groups·N] = per group g, x[:, g·K : (g+1)·K] · W[g·N : (g+1)·N, :]ᵀ.
struct LinearProblem {
  const float* x = nullptr;  // f32 [M, groups·K] on the device
  float* y = nullptr;        // f32 [M, groups·N] on the device
  int64_t M = 0, N = 0, K = 0, groups = 1;
  bool round = false;        // bf16 output rounding
  bool x_bf16 = false;       // x known bf16-representable (after act_quant)
  bool round_x = false;      // x read as bf16(x) (Bf16 numerics, the Bf16 / F32 kinds and grouped_linear)
};

void run_gemv(const LinearProblem& lp, const WeightRef& ref, cudaStream_t stream) {
  cuda::LinearGemvParams p;
  p.x = lp.x;
  p.w = ref;
  p.y = lp.y;
  p.M = static_cast<int32_t>(lp.M);
  p.N = static_cast<int32_t>(lp.N * lp.groups);
  p.K = static_cast<int32_t>(lp.K);
  p.rows_per_group = static_cast<int32_t>(lp.N);
  p.x_ld = lp.groups * lp.K;
  p.x_group_stride = lp.groups > 1 ? lp.K : 0;
  p.y_ld = lp.groups * lp.N;
  p.round_bf16 = lp.round;
  p.round_x = lp.round_x;
  cuda::launch_linear_gemv(p, stream);
}

// The dense cuBLASLt path; false when cuBLASLt has no algorithm (the caller falls back to gemv).
bool run_dense(const LinearProblem& lp, const Weight& w, cuda::DeviceWeights& dw, const WeightRef& ref, bool bf16,
               cublasLtHandle_t handle, cudaStream_t stream) {
  const bool stacked_on = cuda::kernel_paths().linear_dense_stacked;
  const bool cache_on = cuda::kernel_paths().linear_bf16_cache;
  const int64_t rows = lp.N * lp.groups, x_n = lp.M * lp.groups * lp.K;
  const void* wp = nullptr;
  Scratch w_bf16, x_hi, x_lo, y2;
  const void* xs[2] = {lp.x, nullptr};
  const int64_t esize = bf16 ? 2 : 4;
  // Stacked hi/lo: x_hi holds the hi rows [0, M) and the lo rows [M, 2M) of one GEMM into y2 [2M, rows].
  const bool hi_only = lp.x_bf16 || lp.round_x;  // the bf16 hi half is x exactly, or the rounding asked for
  const bool stacked = bf16 && !hi_only && stacked_on;
  float* gemm_y = lp.y;
  int64_t gemm_m = lp.M;
  if (bf16) {
    if (ref.format == WeightFormat::Bf16) {
      wp = ref.data;
    } else {
      cuda::WeightToBf16Params c;
      c.w = ref;
      c.N = static_cast<int32_t>(rows);
      c.K = static_cast<int32_t>(lp.K);
      if (cache_on) {
        cuda::DeviceWeight& d = dw.get(w);
        if (d.bf16.bytes() == 0) {
          d.bf16 = cuda::DeviceBuffer(static_cast<size_t>(rows * lp.K * 2));
          c.out = d.bf16.as<__nv_bfloat16>();
          cuda::CudaContext& ctx = cuda::CudaContext::get();
          if (ctx.capturing()) {  // built for real now, not as a node of the graph being captured
            cuda::launch_weight_to_bf16(c, ctx.side_stream());
            ctx.sync_side();
          } else {
            cuda::launch_weight_to_bf16(c, stream);  // stream-ordered before every use
          }
        }
        wp = d.bf16.data();
      } else {
        w_bf16 = Scratch(static_cast<size_t>(rows * lp.K * 2));
        c.out = w_bf16.as<__nv_bfloat16>();
        cuda::launch_weight_to_bf16(c, stream);
        wp = w_bf16.data();
      }
    }
    cuda::SplitBf16Params sp;
    sp.x = lp.x;
    sp.n = x_n;
    if (stacked) {
      x_hi = Scratch(static_cast<size_t>(2 * x_n * 2));
      sp.hi = x_hi.as<__nv_bfloat16>();
      sp.lo = sp.hi + x_n;
      y2 = Scratch(static_cast<size_t>(2 * lp.M * rows * 4));
      gemm_y = y2.as<float>();
      gemm_m = 2 * lp.M;
    } else {
      x_hi = Scratch(static_cast<size_t>(x_n * 2));
      if (!hi_only) x_lo = Scratch(static_cast<size_t>(x_n * 2));
      sp.hi = x_hi.as<__nv_bfloat16>();
      sp.lo = hi_only ? nullptr : x_lo.as<__nv_bfloat16>();
    }
    cuda::launch_split_bf16(sp, stream);
    xs[0] = x_hi.data();
    xs[1] = (hi_only || stacked) ? nullptr : x_lo.data();
  } else {
    wp = ref.format == WeightFormat::F32 ? ref.data : dw.f32(w);
    if (lp.round_x) {  // f32 GEMM on bf16(x)
      x_hi = Scratch(static_cast<size_t>(x_n * 4));
      DSV4_CUDA_CHECK(cudaMemcpyAsync(x_hi.data(), lp.x, static_cast<size_t>(x_n * 4), cudaMemcpyDeviceToDevice,
                                      stream));
      cuda::RoundBf16Params rp;
      rp.x = x_hi.as<float>();
      rp.n = x_n;
      cuda::launch_round_bf16(rp, stream);
      xs[0] = x_hi.data();
    }
  }
  DenseGemmShape s;
  s.M = gemm_m;
  s.N = lp.N;
  s.K = lp.K;
  s.groups = lp.groups;
  s.x_ld = lp.groups * lp.K;
  s.y_ld = lp.groups * lp.N;
  s.type = bf16 ? DenseGemmType::Bf16 : DenseGemmType::F32;
  s.align = std::min({align_of(reinterpret_cast<uintptr_t>(wp)), align_of(reinterpret_cast<uintptr_t>(xs[0])),
                      align_of(reinterpret_cast<uintptr_t>(gemm_y)), align_of(static_cast<uint64_t>(lp.K * esize)),
                      align_of(static_cast<uint64_t>(lp.N * 4))});
  const DenseGemmPlan& plan = dense_plan(s, handle);
  if (!plan.ok()) return false;
  Scratch ws(plan.workspace_bytes());
  plan.launch(wp, xs[0], gemm_y, 0.0f, ws.data(), ws.bytes(), stream);
  if (xs[1]) plan.launch(wp, xs[1], gemm_y, 1.0f, ws.data(), ws.bytes(), stream);
  if (stacked) {
    cuda::AddHalvesParams ap;
    ap.in = gemm_y;
    ap.y = lp.y;
    ap.n = lp.M * rows;
    ap.round = lp.round;
    cuda::launch_add_halves(ap, stream);
  } else if (lp.round) {
    cuda::RoundBf16Params rp;
    rp.x = lp.y;
    rp.n = lp.M * rows;
    cuda::launch_round_bf16(rp, stream);
  }
  return true;
}

}  // namespace

void CudaOps::fp8_gemm_bf16(const uint8_t* q, const float* scale, int64_t M, const Weight& w, __nv_bfloat16* y) {
  const Fp8GemmPlan& plan = fp8_plan(M, w.rows(), w.cols());
  check(plan.ok(), [&] { return "CUDA linear " + w.name + ": " + plan.unsupported(); });
  Scratch ws(plan.workspace_bytes());
  cuda::Fp8GemmArgs a;
  a.xq = q;
  a.x_scale = scale;
  a.w = static_cast<const uint8_t*>(dw_.get(w).raw.data());
  a.w_scale = dw_.fp8_scale_f32(w);
  a.y = y;
  cuda::launch_fp8_gemm(plan, a, ws.data(), ws.bytes(), ctx_.stream());
}

void CudaOps::linear(const Tensor& x, const Weight& w, Tensor& y, LinearKind kind) {
  const int64_t K = w.cols(), N = w.rows();
  check(x.device() == Device::Cuda, [&] { return "CUDA linear " + w.name + ": input is not on the device"; });
  check(K > 0 && x.numel() % K == 0,
        [&] { return "linear " + w.name + ": input width does not match in_features " + std::to_string(K); });
  const int64_t M = x.numel() / K;
  on_device(y, {M, N});
  if (M == 0 || N == 0) return;
  cudaStream_t stream = ctx_.stream();
  cuda::DeviceWeight& dw = dw_.get(w);
  const WeightRef ref = weight_ref(dw, w);
  const bool act_quant = bf16_acts() && kind == LinearKind::Quantized && w.quant != weights::Quant::None &&
                         K % 128 == 0;
  check(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX,
        [&] { return "CUDA linear " + w.name + ": dimension beyond int32"; });

  const bool fp8_path = act_quant && w.quant == weights::Quant::Fp8Block128 && w.scale_dtype != DType::BF16 &&
                        N % 16 == 0;  // DeviceWeights::fp8_scale_f32 reads e8m0 or f32 scales
  if (fp8_path && reinterpret_cast<uintptr_t>(x.data()) % 16 == 0) {
    const cuda::Fp8DecodeSchedule ds = fp8_decode_schedule(M, N, K, ctx_.sm_count());
    if (ds.ok) {
      const cuda::Fp8DecodeParams dp = cuda::fp8_decode_params(
          ds, x.data(), K, static_cast<const uint8_t*>(dw.raw.data()), dw_.fp8_scale_f32(w), y.data(), N, M, N, K);
      cuda::launch_fp8_decode(ds, dp, stream);
      return;
    }
  }
  if (fp8_path) {
    Scratch q(static_cast<size_t>(M * K)), sc(static_cast<size_t>(M * (K / 128) * 4)),
        yb(static_cast<size_t>(M * N * 2));
    cuda::ActQuantF32Params ap;
    ap.x = x.data();
    ap.q = q.as<uint8_t>();
    ap.scale = sc.as<float>();
    ap.M = M;
    ap.K = static_cast<int32_t>(K);
    cuda::launch_act_quant_f32(ap, stream);
    fp8_gemm_bf16(q.as<uint8_t>(), sc.as<float>(), M, w, yb.as<__nv_bfloat16>());
    cuda::WidenBf16Params wp;
    wp.in = yb.as<__nv_bfloat16>();
    wp.y = y.data();
    wp.n = M * N;
    cuda::launch_widen_bf16(wp, stream);
    return;
  }

  LinearProblem lp;
  lp.x = x.data();
  lp.y = y.data();
  lp.M = M;
  lp.N = N;
  lp.K = K;
  lp.round = bf16_acts() && kind != LinearKind::F32;
  lp.round_x = bf16_acts() && kind != LinearKind::Quantized;  // CpuOps::linear reads bf16(x) for these kinds
  Scratch xq;
  if (act_quant) {
    xq = Scratch(static_cast<size_t>(M * K * 4));
    cuda::Fp8FakeQuantParams fp;
    fp.x = x.data();
    fp.out = xq.as<float>();
    fp.M = M;
    fp.K = static_cast<int32_t>(K);
    cuda::launch_fp8_fake_quant(fp, stream);
    lp.x = xq.as<float>();
    lp.x_bf16 = true;
  }
  const bool bf16 = bf16_acts() && ref.format != WeightFormat::F32 && ref.format != WeightFormat::F16;
  const int64_t gemv_max = gemv_max_m(bf16 ? bf16_gemv_max_m(ref.format, N * K) : kGemvMaxM);
  if (M <= gemv_max || !run_dense(lp, w, dw_, ref, bf16, ctx_.lt(), stream)) run_gemv(lp, ref, stream);
}

// The Bf16 / F32 kinds at decode rows (M up to the GEMV limit of the stacked weight, bf16_gemv_max_m): both
// weights in one linear_gemv16_kernel launch (rows [N1, N1 + N2) from w2 into y2), with linear()'s rounding
// flags. False when that kernel does not take the pair (formats, alignment, rows): the caller runs the two
// linears.
bool CudaOps::gemv_pair(const Tensor& x, const Weight& w1, const Weight& w2, Tensor& y1, Tensor& y2,
                        LinearKind kind) {
  const int64_t K = w1.cols(), N1 = w1.rows(), N2 = w2.rows();
  if (kind == LinearKind::Quantized || x.device() != Device::Cuda || K <= 0 || w2.cols() != K ||
      x.numel() % K != 0 || N1 + N2 > INT32_MAX || K > INT32_MAX || w1.quant != w2.quant)
    return false;
  const int64_t M = x.numel() / K;
  const WeightFormat f1 = weight_ref(dw_.get(w1), w1).format;
  const int64_t gemv_max = gemv_max_m(bf16_acts() ? bf16_gemv_max_m(f1, (N1 + N2) * K) : kGemvMaxM);
  if (M < 1 || M > gemv_max || N1 * K >= (int64_t{256} << 20) || N2 * K >= (int64_t{256} << 20)) return false;
  cuda::LinearGemvParams p;
  p.x = x.data();
  p.w = weight_ref(dw_.get(w1), w1);
  p.w_hi = weight_ref(dw_.get(w2), w2);
  p.n_split = static_cast<int32_t>(N1);
  p.M = static_cast<int32_t>(M);
  p.N = static_cast<int32_t>(N1 + N2);
  p.K = static_cast<int32_t>(K);
  p.rows_per_group = p.N;
  p.x_ld = K;
  p.round_bf16 = bf16_acts() && kind != LinearKind::F32;
  p.round_x = bf16_acts();
  if (!cuda::linear_gemv16_applies(p)) return false;
  on_device(y1, {M, N1});
  on_device(y2, {M, N2});
  p.y = y1.data();
  p.y_ld = N1;
  p.y_hi = y2.data();
  p.y_hi_ld = N2;
  cuda::launch_linear_gemv(p, ctx_.stream());
  return true;
}

// Both linears in one fp8_decode launch when each would take the fp8-decode path and the stacked shape does too:
// w2 stacked below w1 (Fp8DecodeParams::w_hi) and its rows written to y2 (y_hi). Else the two linear calls.
void CudaOps::linear_pair(const Tensor& x, const Weight& w1, const Weight& w2, Tensor& y1, Tensor& y2,
                          LinearKind kind) {
  const int64_t K = w1.cols(), N1 = w1.rows(), N2 = w2.rows();
  auto fp8 = [&](const Weight& w) {
    return w.quant == weights::Quant::Fp8Block128 && w.dtype == DType::F8_E4M3 && w.scale_dtype != DType::BF16 &&
           w.cols() == K && w.rows() % 16 == 0;
  };
  const bool fits = bf16_acts() && kind == LinearKind::Quantized && x.device() == Device::Cuda && K > 0 &&
                    K % 128 == 0 && x.numel() % K == 0 && fp8(w1) && fp8(w2) && N1 + N2 <= INT32_MAX &&
                    reinterpret_cast<uintptr_t>(x.data()) % 16 == 0;
  const int64_t M = fits ? x.numel() / K : 0;
  cuda::Fp8DecodeSchedule ds;
  if (fits && M >= 1 && M <= INT32_MAX) ds = fp8_decode_schedule(M, N1 + N2, K, ctx_.sm_count());
  if (!ds.ok) {
    if (!gemv_pair(x, w1, w2, y1, y2, kind)) {
      linear(x, w1, y1, kind);
      linear(x, w2, y2, kind);
    }
    return;
  }
  on_device(y1, {M, N1});
  on_device(y2, {M, N2});
  const auto* w1_raw = static_cast<const uint8_t*>(dw_.get(w1).raw.data());
  cuda::Fp8DecodeParams dp =
      cuda::fp8_decode_params(ds, x.data(), K, w1_raw, dw_.fp8_scale_f32(w1), y1.data(), N1, M, N1 + N2, K);
  dp.w_hi = static_cast<const uint8_t*>(dw_.get(w2).raw.data());  // rows [N1, N1 + N2) from w2, into y2
  dp.w_scale_hi = dw_.fp8_scale_f32(w2);
  dp.n_split = static_cast<int32_t>(N1);
  dp.y_hi = y2.data();
  dp.y_hi_ld = N2;
  cuda::launch_fp8_decode(ds, dp, ctx_.stream());
}

void CudaOps::grouped_linear(const Tensor& x, const Weight& w, int64_t groups, Tensor& y) {
  check(groups > 0 && w.rows() % groups == 0,
        [&] { return "grouped linear " + w.name + ": rows not divisible by groups"; });
  const int64_t Kg = w.cols(), R = w.rows() / groups;
  check(x.device() == Device::Cuda, [&] { return "CUDA grouped linear " + w.name + ": input is not on the device"; });
  check(x.numel() % (groups * Kg) == 0, [&] { return "grouped linear " + w.name + ": input width mismatch"; });
  const int64_t M = x.numel() / (groups * Kg);
  on_device(y, {M, groups * R});
  if (M == 0 || R == 0) return;
  check(M <= INT32_MAX && groups * R <= INT32_MAX && Kg <= INT32_MAX,
        [&] { return "CUDA grouped linear " + w.name + ": dimension beyond int32"; });
  cuda::DeviceWeight& dw = dw_.get(w);
  const WeightRef ref = weight_ref(dw, w);
  LinearProblem lp;
  lp.x = x.data();
  lp.y = y.data();
  lp.M = M;
  lp.N = R;
  lp.K = Kg;
  lp.groups = groups;
  lp.round = bf16_acts();
  lp.round_x = bf16_acts();  // CpuOps::grouped_linear reads bf16(x) in Bf16 numerics
  const bool bf16 = bf16_acts() && ref.format != WeightFormat::F32 && ref.format != WeightFormat::F16;
  cudaStream_t stream = ctx_.stream();
  if (cuda::kernel_paths().linear_fp8_gemv && w.quant == weights::Quant::Fp8Block128 &&
      w.scale_dtype != DType::BF16 && M <= fp8_gemv_max_m()) {
    cuda::Fp8GemvParams gp;
    gp.x = x.data();
    gp.w = static_cast<const uint8_t*>(dw.raw.data());
    gp.y = y.data();
    gp.M = static_cast<int32_t>(M);
    gp.N = static_cast<int32_t>(groups * R);
    gp.K = static_cast<int32_t>(Kg);
    gp.rows_per_group = static_cast<int32_t>(R);
    gp.w_scale_ld = static_cast<int32_t>(cuda::fp8_weight_scale_ld(Kg));
    gp.x_ld = groups * Kg;
    gp.x_group_stride = Kg;
    gp.y_ld = groups * R;
    gp.round_bf16 = lp.round;
    gp.round_x = lp.round_x;
    gp.w_scale = dw_.fp8_scale_f32(w);  // built once per weight
    if (cuda::fp8_gemv_supported(gp)) {
      cuda::launch_fp8_gemv(gp, stream);
      return;
    }
  }
  // FP8 weights past the fp8-gemv rows: the dense GEMM on the cached bf16 copy (H200 run 148, Flash wo_a at M = 8:
  // 24.2 µs against 52.1 / 160.6 µs for the fp8 gemv in two token tiles / gemv16).
  const bool fp8_gemv_on = cuda::kernel_paths().linear_fp8_gemv && w.quant == weights::Quant::Fp8Block128;
  if (M <= gemv_max_m(fp8_gemv_on ? fp8_gemv_max_m() : kGemvMaxM) ||
      !run_dense(lp, w, dw_, ref, bf16, ctx_.lt(), stream))
    run_gemv(lp, ref, stream);
}

void CudaOps::embed(const Weight& table, std::span<const int32_t> ids, Tensor& out) {
  const int64_t D = table.cols(), T = static_cast<int64_t>(ids.size());
  for (int32_t id : ids)
    check(id >= 0 && id < table.rows(), [&] { return "token id " + std::to_string(id) + " out of range"; });
  check(T <= INT32_MAX && D <= INT32_MAX, "CUDA embed: dimension beyond int32");
  on_device(out, {T, D});
  if (T == 0 || D == 0) return;
  cuda::DeviceWeight& dw = dw_.get(table);
  Scratch dev_ids = ctx_.upload(ids);
  cuda::EmbedParams p;
  p.table = weight_ref(dw, table);
  p.ids = dev_ids.as<int32_t>();
  p.out = out.data();
  p.T = static_cast<int32_t>(T);
  p.D = static_cast<int32_t>(D);
  cuda::launch_embed(p, ctx_.stream());
}

}  // namespace dsv4::backend
