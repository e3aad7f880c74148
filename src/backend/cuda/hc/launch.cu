// Launchers of the mHC family: validate, pick the compiled instance from the plan, launch, check.
#include <cstdint>
#include <string>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/hc/hc_finish.cuh"
#include "backend/cuda/hc/hc_fused.cuh"
#include "backend/cuda/hc/hc_mix.cuh"
#include "backend/cuda/hc/hc_post.cuh"
#include "backend/cuda/hc/launch.h"
#include "core/check.h"

namespace dsv4::cuda {
namespace {

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Calls f.template operator()<kHc>() for hc in [1, kHcMaxHc].
template <typename F>
void with_hc(int hc, const char* op, F&& f) {
  switch (hc) {
    case 1: f.template operator()<1>(); break;
    case 2: f.template operator()<2>(); break;
    case 3: f.template operator()<3>(); break;
    case 4: f.template operator()<4>(); break;
    default: check(false, [&] { return std::string(op) + ": hc " + std::to_string(hc) + " not compiled (1..4)"; });
  }
}

}  // namespace

void launch_hc_mix(const HcMixParams& p, const HcMixPlan& plan, cudaStream_t stream) {
  check(plan.unsupported.empty(), plan.unsupported);
  check(p.n_mix <= plan.mix && p.k_slice == plan.k_slice, "hc mix: params do not match the plan");
  check(p.x && p.fn && p.part_mu && p.part_ss, "hc mix: null operand");
  check(plan.vec == 1 || (aligned16(p.x) && aligned16(p.fn)), "hc mix: x and fn must be 16-byte aligned");
  check(plan.tiles <= INT32_MAX, [&] { return "hc mix: T " + std::to_string(p.T) + " out of range"; });
  if (p.T == 0) return;
  const dim3 grid(static_cast<unsigned>(plan.tiles), static_cast<unsigned>(plan.splits));
  auto launch = [&]<int kMix, int kVec>() {
    switch (plan.config) {
      case HcMixConfig::Tiny: launch_kernel(hc_mix_kernel<kMix, 1, 64, 1, kVec>, grid, 64, 0, stream, p); break;
      case HcMixConfig::Small: launch_kernel(hc_mix_kernel<kMix, 4, 64, 1, kVec>, grid, 64, 0, stream, p); break;
      case HcMixConfig::Large:
        if (kVec == 4 && kernel_paths().hc_mix_staged)
          launch_kernel(hc_mix_staged_kernel<kMix, 4, 8>, grid, 256, 0, stream, p);
        else
          launch_kernel(hc_mix_kernel<kMix, 4, 32, 8, kVec>, grid, 256, 0, stream, p);
        break;
    }
  };
  if (plan.mix == 4) {
    plan.vec == 4 ? launch.template operator()<4, 4>() : launch.template operator()<4, 1>();
  } else {
    plan.vec == 4 ? launch.template operator()<24, 4>() : launch.template operator()<24, 1>();
  }
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_hc_finish(const HcFinishParams& p, int hc, bool pre, const HcRowPlan& plan, cudaStream_t stream) {
  check(p.x && p.part_mu && p.part_ss && p.base && p.scale && p.y, "hc finish: null operand");
  check(!pre || (p.post && p.comb), "hc finish: hc_pre needs post and comb");
  check(p.d_chunk == plan.d_chunk && p.d_chunk % plan.vec == 0, "hc finish: d_chunk does not match the plan");
  check(plan.vec == 1 || (aligned16(p.x) && aligned16(p.y)), "hc finish: x and y must be 16-byte aligned");
  check(p.T <= INT32_MAX, [&] { return "hc finish: T " + std::to_string(p.T) + " out of range"; });
  if (p.T == 0 || p.D == 0) return;
  const dim3 grid(static_cast<unsigned>(p.T), static_cast<unsigned>(plan.chunks));
  with_hc(hc, "hc finish", [&]<int kHc>() {
    auto go = [&]<int kVec>() {
      if (pre) launch_kernel(hc_finish_kernel<kHc, kVec, true>, grid, kHcFinishThreads, 0, stream, p);
      else launch_kernel(hc_finish_kernel<kHc, kVec, false>, grid, kHcFinishThreads, 0, stream, p);
    };
    plan.vec == 4 ? go.template operator()<4>() : go.template operator()<1>();
  });
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_hc_fused(const HcFusedParams& p, int hc, bool pre, const HcMixPlan& plan, cudaStream_t stream) {
  check(plan.unsupported.empty(), plan.unsupported);
  check(plan.config != HcMixConfig::Large && p.T <= kHcFusedMaxT && plan.tiles <= kHcFusedMaxTiles,
        [&] { return "hc fused: T " + std::to_string(p.T) + " above " + std::to_string(kHcFusedMaxT); });
  check(plan.tokens_per_cta == 1 || plan.tokens_per_cta == 4, "hc fused: unexpected tokens per CTA");
  check(p.k_slice == plan.k_slice && p.splits == plan.splits, "hc fused: params do not match the plan");
  check(p.n_mix == (pre ? (2 + hc) * hc : hc) && p.width == hc * p.D, "hc fused: n_mix / width mismatch");
  check(static_cast<int64_t>(p.splits + kHcFusedGroups) * p.k_slice <= INT32_MAX, "hc fused: K range overflow");
  check(p.x && p.fn && p.base && p.scale && p.y && p.part_mu && p.part_ss && p.counters, "hc fused: null operand");
  check(!pre || (p.post && p.comb), "hc fused: hc_pre needs post and comb");
  check(plan.vec == (p.D % 4 == 0 ? 4 : 1), "hc fused: vector width of the mix and the collapse differ");
  check(plan.vec == 1 || (aligned16(p.x) && aligned16(p.fn) && aligned16(p.y)),
        "hc fused: x, fn and y must be 16-byte aligned");
  if (p.T == 0 || p.D == 0) return;
  const dim3 grid(static_cast<unsigned>(plan.tiles),
                  static_cast<unsigned>((plan.splits + kHcFusedGroups - 1) / kHcFusedGroups));
  with_hc(hc, "hc fused", [&]<int kHc>() {
    auto go = [&]<int kTpt, int kVec>() {
      if (pre) launch_kernel(hc_fused_kernel<kHc, true, kTpt, kVec>, grid, kHcFusedThreads<kTpt>, 0, stream, p);
      else launch_kernel(hc_fused_kernel<kHc, false, kTpt, kVec>, grid, kHcFusedThreads<kTpt>, 0, stream, p);
    };
    if (plan.tokens_per_cta == 1) {
      plan.vec == 4 ? go.template operator()<1, 4>() : go.template operator()<1, 1>();
    } else {
      plan.vec == 4 ? go.template operator()<4, 4>() : go.template operator()<4, 1>();
    }
  });
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_hc_post(const HcPostParams& p, int hc, const HcRowPlan& plan, cudaStream_t stream) {
  check(p.a && p.R && p.post && p.comb && p.out, "hc post: null operand");
  check(p.out != p.R && p.out != p.a, "hc post: out must not alias a or R");
  check(p.d_chunk == plan.d_chunk && p.d_chunk % plan.vec == 0, "hc post: d_chunk does not match the plan");
  check(plan.vec == 1 || (aligned16(p.a) && aligned16(p.R) && aligned16(p.out)),
        "hc post: a, R and out must be 16-byte aligned");
  check(p.T <= INT32_MAX, [&] { return "hc post: T " + std::to_string(p.T) + " out of range"; });
  if (p.T == 0 || p.D == 0) return;
  const dim3 grid(static_cast<unsigned>(p.T), static_cast<unsigned>(plan.chunks));
  with_hc(hc, "hc post", [&]<int kHc>() {
    if (plan.vec == 4) launch_kernel(hc_post_kernel<kHc, 4>, grid, kHcPostThreads, 0, stream, p);
    else launch_kernel(hc_post_kernel<kHc, 1>, grid, kHcPostThreads, 0, stream, p);
  });
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
