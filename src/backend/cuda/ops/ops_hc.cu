// CudaOps, mHC and row-wise ops: hc_pre, hc_post, hc_head (hc/ kernels), rms_norm, round_act, hc_expand,
// gather_rows, add, scale, add_position_rows (elementwise/ f32 kernels). All f32 on the device, rounded to
// bf16 exactly where CpuOps rounds (cpu_hc.cpp, cpu_elementwise.cpp). hc weights (fn, base, scale) and norm
// weights are read as dequantized f32 (DeviceWeights::f32, built once). hc_pre/hc_head use a stream-ordered
// scratch for the K-split partials of the mixing GEMV; at T <= kHcFusedMaxT they run as one kernel
// (hc_fused_kernel, bitwise equal) on a cached workspace (kernel_paths().hc_fused = false: the two kernels). Capabilities: hc in 1..4; any T, D and segment size
// (vectorized paths when D, dim or the row width is a multiple of 4).
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>
#include <string>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/device_buffer.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/elementwise/launch.h"
#include "backend/cuda/elementwise/plan.h"
#include "backend/cuda/hc/launch.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/check.h"

namespace dsv4::backend {
namespace {

void require_cuda(const Tensor& t, const char* op, const char* name) {
  check(t.device() == Device::Cuda, [&] { return std::string(op) + ": " + name + " is not a CUDA tensor"; });
}

// The fused path's workspace: [tile counters u32 (kHcFusedMaxTiles), padded to 256 B] [part_ss f64] [part_mu
// f32]; one device buffer owned here, grown on demand (zeroed when allocated; the kernel leaves its counters
// zero), never freed (like the context). Every use is ordered on the main stream (no hc op runs in a branch).
unsigned char* hc_fused_workspace(cuda::CudaContext& ctx, size_t bytes) {
  struct Workspace {
    std::mutex m;
    cuda::DeviceBuffer buf;
  };
  static Workspace* ws = new Workspace;
  std::lock_guard<std::mutex> lock(ws->m);
  if (ws->buf.bytes() < bytes) {
    static std::vector<cuda::DeviceBuffer> retired;  // outgrown while a graph was captured: kept, never reused
    if (ws->buf.bytes() > 0) {
      if (ctx.capturing())
        retired.push_back(std::move(ws->buf));
      else
        ctx.sync();  // kernels queued on the old buffer finish before it is freed
    }
    ws->buf = cuda::DeviceBuffer(std::max<size_t>(bytes, size_t{1} << 20));
    if (ctx.capturing()) {  // zeroed now, not by a node of the graph being captured
      ws->buf.fill_bytes(0, ctx.side_stream());
      ctx.sync_side();
    } else {
      ws->buf.fill_bytes(0, ctx.stream());
    }
  }
  return ws->buf.as<unsigned char>();
}

// Shared by hc_pre (pre = true: post and comb too), hc_pre_norm and hc_head. With out_norm, the fused kernel
// also RMS-normalizes x when it can (returns true); else the caller runs rms_norm.
bool run_hc_collapse(cuda::CudaContext& ctx, cuda::DeviceWeights& dw, const Tensor& X, const HcWeights& w,
                     const HcParams& p, bool pre, bool round, Tensor& x, Tensor* post, Tensor* comb,
                     const Weight* out_norm = nullptr, float out_eps = 0.0f) {
  const char* op = pre ? "hc_pre" : "hc_head";
  require_cuda(X, op, "X");
  const int64_t hc = p.hc, T = X.dim(0), width = X.row_size();
  check(hc >= 1 && hc <= cuda::kHcMaxHc,
        [&] { return std::string(op) + ": hc " + std::to_string(hc) + " not in [1, 4]"; });
  check(width % hc == 0,
        [&] { return std::string(op) + ": row size " + std::to_string(width) + " not a multiple of hc"; });
  const int64_t D = width / hc, n_mix = pre ? (2 + hc) * hc : hc;
  check(w.fn.rows() == n_mix && w.fn.cols() == width,
        [&] { return std::string(op) + ": fn shape mismatch for " + w.fn.name; });
  check(shape_numel(w.base.shape) >= n_mix && shape_numel(w.scale.shape) >= (pre ? 3 : 1),
        [&] { return std::string(op) + ": base/scale too small for " + w.fn.name; });
  check(D <= INT32_MAX && width <= INT32_MAX,
        [&] { return std::string(op) + ": D " + std::to_string(D) + " out of range"; });
  on_device(x, {T, D});
  if (pre) {
    on_device(*post, {T, hc});
    on_device(*comb, {T, hc, hc});
  }
  if (T == 0) return true;
  const cuda::HcMixPlan mplan = cuda::plan_hc_mix(T, width, n_mix, ctx.sm_count());
  check(mplan.unsupported.empty(), [&] { return std::string(op) + ": " + mplan.unsupported; });
  // One kernel at decode sizes (same splits and orders as the two kernels below, so bitwise the same results).
  if (cuda::kernel_paths().hc_fused && T <= cuda::kHcFusedMaxT && mplan.config != cuda::HcMixConfig::Large &&
      mplan.vec == (D % 4 == 0 ? 4 : 1)) {
    const size_t cnt_bytes = (cuda::kHcFusedMaxTiles * sizeof(unsigned) + 255) / 256 * 256;
    const size_t ss_bytes = (static_cast<size_t>(mplan.splits * T) * sizeof(double) + 255) / 256 * 256;
    const size_t mu_bytes = static_cast<size_t>(mplan.splits * T * n_mix) * sizeof(float);
    unsigned char* ws = hc_fused_workspace(ctx, cnt_bytes + ss_bytes + mu_bytes);
    cuda::HcFusedParams fp;
    fp.x = X.data();
    fp.fn = dw.f32(w.fn);
    fp.base = dw.f32(w.base);
    fp.scale = dw.f32(w.scale);
    fp.y = x.data();
    fp.post = pre ? post->data() : nullptr;
    fp.comb = pre ? comb->data() : nullptr;
    fp.counters = reinterpret_cast<unsigned*>(ws);
    fp.part_ss = reinterpret_cast<double*>(ws + cnt_bytes);
    fp.part_mu = reinterpret_cast<float*>(ws + cnt_bytes + ss_bytes);
    fp.T = T;
    fp.width = static_cast<int32_t>(width);
    fp.D = static_cast<int32_t>(D);
    fp.n_mix = static_cast<int32_t>(n_mix);
    fp.k_slice = mplan.k_slice;
    fp.splits = mplan.splits;
    fp.sinkhorn_iters = static_cast<int32_t>(p.sinkhorn_iters);
    fp.hc_eps = p.hc_eps;
    fp.norm_eps = p.norm_eps;
    fp.round_bf16 = round;
    // The norm epilogue takes the shapes rms_norm_f32 runs with 256-thread groups (512 < D <= 8192).
    const cuda::RmsNormF32Plan nplan = cuda::plan_rms_norm_f32(D);
    fp.out_norm = out_norm && out_norm->rows() == D && mplan.vec == 4 && nplan.group == 256 &&
                  reinterpret_cast<uintptr_t>(x.data()) % 16 == 0;
    fp.out_norm_w = fp.out_norm ? dw.f32(*out_norm) : nullptr;
    fp.out_norm_eps = out_eps;
    fp.collapse_norm = cuda::kernel_paths().hc_collapse_norm;
    cuda::launch_hc_fused(fp, static_cast<int>(hc), pre, mplan, ctx.stream());
    return fp.out_norm;
  }
  // One stream-ordered allocation for both partial arrays: [part_ss f64 (splits x T)] [part_mu f32].
  const size_t ss_bytes = (static_cast<size_t>(mplan.splits * T) * sizeof(double) + 255) / 256 * 256;
  cuda::Scratch parts(ss_bytes + static_cast<size_t>(mplan.splits * T * n_mix) * sizeof(float));

  cuda::HcMixParams mp;
  mp.x = X.data();
  mp.fn = dw.f32(w.fn);
  mp.part_ss = parts.as<double>();
  mp.part_mu = reinterpret_cast<float*>(static_cast<unsigned char*>(parts.data()) + ss_bytes);
  mp.T = T;
  mp.width = static_cast<int32_t>(width);
  mp.n_mix = static_cast<int32_t>(n_mix);
  mp.k_slice = mplan.k_slice;
  cuda::launch_hc_mix(mp, mplan, ctx.stream());

  const cuda::HcRowPlan rplan = cuda::plan_hc_rows(T, D, cuda::kHcFinishThreads, ctx.sm_count());
  cuda::HcFinishParams fp;
  fp.x = X.data();
  fp.part_mu = mp.part_mu;
  fp.part_ss = mp.part_ss;
  fp.base = dw.f32(w.base);
  fp.scale = dw.f32(w.scale);
  fp.y = x.data();
  fp.post = pre ? post->data() : nullptr;
  fp.comb = pre ? comb->data() : nullptr;
  fp.T = T;
  fp.D = static_cast<int32_t>(D);
  fp.splits = mplan.splits;
  fp.d_chunk = rplan.d_chunk;
  fp.sinkhorn_iters = static_cast<int32_t>(p.sinkhorn_iters);
  fp.hc_eps = p.hc_eps;
  fp.norm_eps = p.norm_eps;
  fp.round_bf16 = round;
  cuda::launch_hc_finish(fp, static_cast<int>(hc), pre, rplan, ctx.stream());
  return false;
}

}  // namespace

void CudaOps::hc_pre(const Tensor& X, const HcWeights& w, const HcParams& p, Tensor& x, Tensor& post,
                     Tensor& comb) {
  run_hc_collapse(ctx_, dw_, X, w, p, true, bf16_acts(), x, &post, &comb);
}

void CudaOps::hc_pre_norm(const Tensor& X, const HcWeights& w, const HcParams& p, const Weight& norm, float eps,
                          Tensor& x, Tensor& post, Tensor& comb) {
  const Weight* fuse = cuda::kernel_paths().hc_pre_norm ? &norm : nullptr;
  if (!run_hc_collapse(ctx_, dw_, X, w, p, true, bf16_acts(), x, &post, &comb, fuse, eps))
    rms_norm(x, x.row_size(), &norm, eps);  // not fused (path off, T > 64, or a D the epilogue does not take)
}

void CudaOps::hc_head(const Tensor& X, const HcWeights& w, const HcParams& p, Tensor& y) {
  run_hc_collapse(ctx_, dw_, X, w, p, false, bf16_acts(), y, nullptr, nullptr);
}

void CudaOps::hc_post(const Tensor& a, const Tensor& R, const Tensor& post, const Tensor& comb, Tensor& out) {
  require_cuda(a, "hc_post", "a");
  require_cuda(R, "hc_post", "R");
  require_cuda(post, "hc_post", "post");
  require_cuda(comb, "hc_post", "comb");
  const int64_t T = a.dim(0), D = a.row_size(), hc = post.row_size();
  check(R.numel() == T * hc * D, "hc_post: residual shape mismatch");
  check(post.numel() == T * hc && comb.numel() == T * hc * hc, "hc_post: post/comb shape mismatch");
  check(hc >= 1 && hc <= cuda::kHcMaxHc, [&] { return "hc_post: hc " + std::to_string(hc) + " not in [1, 4]"; });
  check(D <= INT32_MAX, [&] { return "hc_post: D " + std::to_string(D) + " out of range"; });
  on_device(out, {T, hc, D});
  if (T == 0 || D == 0) return;
  const cuda::HcRowPlan plan = cuda::plan_hc_rows(T, D, cuda::kHcPostThreads, ctx_.sm_count());
  cuda::HcPostParams pp;
  pp.a = a.data();
  pp.R = R.data();
  pp.post = post.data();
  pp.comb = comb.data();
  pp.out = out.data();
  pp.T = T;
  pp.D = static_cast<int32_t>(D);
  pp.d_chunk = plan.d_chunk;
  pp.round_bf16 = bf16_acts();
  cuda::launch_hc_post(pp, static_cast<int>(hc), plan, ctx_.stream());
}

void CudaOps::rms_norm(Tensor& x, int64_t dim, const Weight* w, float eps) {
  require_cuda(x, "rms_norm", "x");
  check(dim > 0 && x.numel() % dim == 0, "rms_norm: size not a multiple of dim");
  check(dim <= INT32_MAX, [&] { return "rms_norm: dim " + std::to_string(dim) + " out of range"; });
  if (w)
    check(w->rows() == dim, [&] { return "rms_norm: weight " + w->name + " has " + std::to_string(w->rows()) +
                                " elements, expected " + std::to_string(dim); });
  cuda::RmsNormF32Params p;
  p.x = x.data();
  p.weight = w ? dw_.f32(*w) : nullptr;
  p.n_seg = x.numel() / dim;
  p.dim = static_cast<int32_t>(dim);
  p.eps = eps;
  p.round_bf16 = bf16_acts();
  cuda::launch_rms_norm_f32(p, ctx_.stream());
}

void CudaOps::round_act(Tensor& x) {
  if (!bf16_acts()) return;
  require_cuda(x, "round_act", "x");
  cuda::F32MapParams p;
  p.y = x.data();
  p.n = x.numel();
  cuda::launch_f32_map(p, cuda::F32Map::Round, ctx_.sm_count(), ctx_.stream());
}

namespace {
void launch_scale(cuda::CudaContext& ctx, Tensor& x, float s, cuda::F32Map op) {
  require_cuda(x, "scale", "x");
  cuda::F32MapParams p;
  p.y = x.data();
  p.n = x.numel();
  p.s = s;
  cuda::launch_f32_map(p, op, ctx.sm_count(), ctx.stream());
}

void launch_add(cuda::CudaContext& ctx, Tensor& y, const Tensor& x, cuda::F32Map op) {
  require_cuda(y, "add", "y");
  require_cuda(x, "add", "x");
  if (y.numel() == 0) return;
  check(x.numel() > 0 && y.numel() % x.numel() == 0,
        [&] { return "add: y " + shape_str(y.shape()) + " is not a repetition of x " + shape_str(x.shape()); });
  cuda::F32MapParams p;
  p.y = y.data();
  p.x = x.data();
  p.n = y.numel();
  p.x_n = x.numel();
  cuda::launch_f32_map(p, op, ctx.sm_count(), ctx.stream());
}
}  // namespace

void CudaOps::scale(Tensor& x, float s) { launch_scale(ctx_, x, s, cuda::F32Map::Scale); }

void CudaOps::scale_round(Tensor& x, float s) {
  launch_scale(ctx_, x, s, bf16_acts() ? cuda::F32Map::ScaleRound : cuda::F32Map::Scale);
}

void CudaOps::add(Tensor& y, const Tensor& x) { launch_add(ctx_, y, x, cuda::F32Map::Add); }

void CudaOps::add_round(Tensor& y, const Tensor& x) {
  launch_add(ctx_, y, x, bf16_acts() ? cuda::F32Map::AddRound : cuda::F32Map::Add);
}

void CudaOps::hc_expand(const Tensor& h, int64_t hc, Tensor& X) {
  require_cuda(h, "hc_expand", "h");
  check(hc >= 1, [&] { return "hc_expand: hc " + std::to_string(hc) + " must be positive"; });
  const int64_t T = h.dim(0), D = h.row_size();
  check(D <= INT32_MAX, [&] { return "hc_expand: D " + std::to_string(D) + " out of range"; });
  on_device(X, {T, hc, D});
  cuda::RowGatherParams p;
  p.src = h.data();
  p.dst = X.data();
  p.n_rows = T * hc;
  p.src_rows = T;
  p.width = static_cast<int32_t>(D);
  p.repeat = static_cast<int32_t>(hc);
  cuda::launch_row_gather(p, cuda::RowGather::Expand, ctx_.sm_count(), ctx_.stream());
}

void CudaOps::gather_rows(const Tensor& x, std::span<const int64_t> rows, Tensor& out) {
  require_cuda(x, "gather_rows", "x");
  check(!x.shape().empty(), "gather_rows: x has no rows");
  const int64_t n = static_cast<int64_t>(rows.size()), width = x.row_size(), src_rows = x.dim(0);
  for (int64_t r : rows)
    check(r >= 0 && r < src_rows, [&] { return "gather_rows: row " + std::to_string(r) + " outside [0, " +
                                      std::to_string(src_rows) + ")"; });
  check(width <= INT32_MAX, [&] { return "gather_rows: row size " + std::to_string(width) + " out of range"; });
  Shape s = x.shape();
  s[0] = n;
  on_device(out, std::move(s));
  if (n == 0 || width == 0) return;
  cuda::Scratch idx = ctx_.upload(rows);
  cuda::RowGatherParams p;
  p.src = x.data();
  p.dst = out.data();
  p.index = idx.as<int64_t>();
  p.n_rows = n;
  p.src_rows = src_rows;
  p.width = static_cast<int32_t>(width);
  cuda::launch_row_gather(p, cuda::RowGather::Gather, ctx_.sm_count(), ctx_.stream());
}

void CudaOps::add_position_rows(Tensor& x, const Weight& table, std::span<const int64_t> pos) {
  require_cuda(x, "add_position_rows", "x");
  const int64_t T = x.shape().empty() ? 0 : x.dim(0), width = x.row_size(), m = table.rows();
  check(static_cast<int64_t>(pos.size()) == T, [&] { return "add_position_rows: " + std::to_string(pos.size()) +
                                                    " positions for " + std::to_string(T) + " rows"; });
  check(m > 0 && shape_numel(table.shape) == m * width, [&] { return "add_position_rows: table " + table.name + " " +
                                                 shape_str(table.shape) + " does not have rows of " +
                                                 std::to_string(width); });
  for (int64_t q : pos) check(q >= 0, [&] { return "add_position_rows: negative position " + std::to_string(q); });
  check(width <= INT32_MAX, "add_position_rows: row size out of range");
  if (T == 0 || width == 0) return;
  cuda::Scratch idx = ctx_.upload(pos);
  cuda::RowGatherParams p;
  p.src = dw_.f32(table);
  p.dst = x.data();
  p.index = idx.as<int64_t>();
  p.n_rows = T;
  p.src_rows = m;
  p.width = static_cast<int32_t>(width);
  cuda::launch_row_gather(p, cuda::RowGather::AddPosition, ctx_.sm_count(), ctx_.stream());
}

}  // namespace dsv4::backend
