// Launchers of the generic linear family: argument validation and compile-time dispatch of the weight format,
// token tile and vector width (C++20 template lambdas).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/gemm/linear_kernels.cuh"
#include "backend/cuda/gemm/linear_launch.h"
#include "backend/cuda/common/kernel_paths.h"
#include "core/check.h"

namespace dsv4::cuda {
namespace {

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Grid of a grid-stride elementwise kernel over n elements.
unsigned element_blocks(int64_t n) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + kElementThreads - 1) / kElementThreads, 1, 65535 * 8));
}

template <typename F>
void with_format(WeightFormat fmt, F&& f) {
  switch (fmt) {
    case WeightFormat::F32: f.template operator()<WeightFormat::F32>(); break;
    case WeightFormat::Bf16: f.template operator()<WeightFormat::Bf16>(); break;
    case WeightFormat::F16: f.template operator()<WeightFormat::F16>(); break;
    case WeightFormat::Fp8: f.template operator()<WeightFormat::Fp8>(); break;
    case WeightFormat::Mxfp4: f.template operator()<WeightFormat::Mxfp4>(); break;
  }
}

void check_weight(const WeightRef& w, int64_t K, const char* who) {
  check(w.data != nullptr, std::string(who) + ": null weight");
  if (w.format == WeightFormat::Fp8)
    check(w.scale != nullptr && w.scale_cols == (K + 127) / 128,
          std::string(who) + ": FP8 weight needs scale_cols = ceil(K/128) = " + std::to_string((K + 127) / 128));
  if (w.format == WeightFormat::Mxfp4)
    check(K % 32 == 0 && w.scale != nullptr && w.scale_cols == K / 32,
          std::string(who) + ": MXFP4 weight needs K % 32 == 0 and scale_cols = K/32, K = " + std::to_string(K));
}

}  // namespace

bool linear_gemv16_applies(const LinearGemvParams& p) {
  const bool fmt16 = p.w.format == WeightFormat::Bf16 || p.w.format == WeightFormat::Fp8;
  const int vlen = p.w.format == WeightFormat::Fp8 ? 16 : 8;
  const bool pair_ok = p.n_split == 0 ||
                       (p.n_split > 0 && p.n_split < p.N && p.w_hi.format == p.w.format &&
                        p.w_hi.scale_format == p.w.scale_format && aligned(p.w_hi.data, 16) &&
                        p.rows_per_group == p.N && p.x_group_stride == 0);
  return kernel_paths().linear_gemv16 && fmt16 && p.K % vlen == 0 && p.x_ld % 4 == 0 && p.x_group_stride % 4 == 0 &&
         aligned(p.x, 16) && aligned(p.w.data, 16) && pair_ok;
}

void launch_linear_gemv(const LinearGemvParams& p, cudaStream_t stream) {
  check(p.M >= 0 && p.N >= 0 && p.K > 0, "linear_gemv: bad shape M=" + std::to_string(p.M) + " N=" +
                                             std::to_string(p.N) + " K=" + std::to_string(p.K));
  check(p.rows_per_group > 0 && p.N % p.rows_per_group == 0,
        "linear_gemv: N " + std::to_string(p.N) + " is not a multiple of rows_per_group");
  check(p.x && p.y && p.x_ld >= p.K && p.y_ld >= (p.n_split > 0 ? p.n_split : p.N),
        "linear_gemv: null operand or leading dimension too small");
  check_weight(p.w, p.K, "linear_gemv");
  if (p.M == 0 || p.N == 0) return;
  check(p.n_split == 0 || linear_gemv16_applies(p), "linear_gemv: a second weight needs the 16-byte kernel");
  if (p.n_split > 0) {
    check_weight(p.w_hi, p.K, "linear_gemv (second weight)");
    check(p.y_hi != nullptr && p.y_hi_ld >= p.N - p.n_split, "linear_gemv: second output missing or too narrow");
  }
  const int vlen = p.w.format == WeightFormat::Fp8 ? 16 : 8;
  if (linear_gemv16_applies(p)) {
    // Warps per row: the fewest that put >= ~16 warps on every SM, at most one per 32-lane slice of a row.
    const int64_t slices = (p.K / vlen + 31) / 32;
    int split = 1;
    while (split < kGemvWarps && static_cast<int64_t>(p.N) * split < 132 * 16 && 2 * split <= slices) split *= 2;
    const int tok = p.M == 1 ? 1 : p.M <= 4 ? 4 : p.M <= 8 ? 8 : 16;
    const int rows = kGemvWarps / split;
    const dim3 grid(static_cast<unsigned>((p.N + rows - 1) / rows), static_cast<unsigned>((p.M + tok - 1) / tok));
    check(grid.y <= 65535, "linear_gemv: M " + std::to_string(p.M) + " too large for one launch");
    auto by_fmt = [&]<WeightFormat F>() {
      auto launch = [&]<int kTok, int kSplit>() {
        launch_kernel(linear_gemv16_kernel<F, kTok, kSplit>, grid, kGemvWarps * 32, 0, stream, p);
      };
      auto by_split = [&]<int kTok>() {
        switch (split) {
          case 1: launch.template operator()<kTok, 1>(); break;
          case 2: launch.template operator()<kTok, 2>(); break;
          case 4: launch.template operator()<kTok, 4>(); break;
          default: launch.template operator()<kTok, 8>(); break;
        }
      };
      switch (tok) {
        case 1: by_split.template operator()<1>(); break;
        case 4: by_split.template operator()<4>(); break;
        case 8: by_split.template operator()<8>(); break;
        default: by_split.template operator()<16>(); break;
      }
    };
    if (p.w.format == WeightFormat::Fp8)
      by_fmt.template operator()<WeightFormat::Fp8>();
    else
      by_fmt.template operator()<WeightFormat::Bf16>();
    DSV4_CUDA_CHECK_LAUNCH();
    return;
  }
  const bool vec = p.K % 4 == 0 && p.x_ld % 4 == 0 && p.x_group_stride % 4 == 0 && aligned(p.x, 16);
  const int tok = p.M == 1 ? 1 : p.M <= 8 ? 8 : 16;
  const dim3 grid(static_cast<unsigned>((p.N + kGemvWarps - 1) / kGemvWarps),
                  static_cast<unsigned>((p.M + tok - 1) / tok));
  check(grid.y <= 65535, "linear_gemv: M " + std::to_string(p.M) + " too large for one launch");
  with_format(p.w.format, [&]<WeightFormat F>() {
    auto launch = [&]<int kTok, int kVec>() {
      launch_kernel(linear_gemv_kernel<F, kTok, kVec>, grid, kGemvWarps * 32, 0, stream, p);
    };
    auto by_tok = [&]<int kVec>() {
      switch (tok) {
        case 1: launch.template operator()<1, kVec>(); break;
        case 8: launch.template operator()<8, kVec>(); break;
        default: launch.template operator()<16, kVec>(); break;
      }
    };
    if (vec)
      by_tok.template operator()<4>();
    else
      by_tok.template operator()<1>();
  });
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_act_quant_f32(const ActQuantF32Params& p, cudaStream_t stream) {
  check(p.K > 0 && p.K % 128 == 0, "act_quant_f32: K " + std::to_string(p.K) + " is not a positive multiple of 128");
  check(p.q && p.scale && aligned(p.q, 4) &&
            (p.g ? p.u && aligned(p.g, 8) && aligned(p.u, 8) : p.x && aligned(p.x, 16)),
        "act_quant_f32: null or misaligned operand");
  const int64_t blocks = p.M * (p.K / 128);
  if (blocks == 0) return;
  const int64_t ctas = (blocks + kQuantWarps - 1) / kQuantWarps;
  check(ctas <= INT32_MAX, "act_quant_f32: M " + std::to_string(p.M) + " too large for one launch");
  launch_kernel(act_quant_f32_kernel, static_cast<unsigned>(ctas), kQuantWarps * 32, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_fp8_fake_quant(const Fp8FakeQuantParams& p, cudaStream_t stream) {
  check(p.K > 0 && p.K % 128 == 0, "fp8_fake_quant: K " + std::to_string(p.K) + " is not a positive multiple of 128");
  check(p.x && p.out && aligned(p.x, 16) && aligned(p.out, 16), "fp8_fake_quant: null or misaligned operand");
  const int64_t blocks = p.M * (p.K / 128);
  if (blocks == 0) return;
  const int64_t ctas = (blocks + kQuantWarps - 1) / kQuantWarps;
  check(ctas <= INT32_MAX, "fp8_fake_quant: M " + std::to_string(p.M) + " too large for one launch");
  launch_kernel(fp8_fake_quant_kernel, static_cast<unsigned>(ctas), kQuantWarps * 32, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_split_bf16(const SplitBf16Params& p, cudaStream_t stream) {
  check(p.x && p.hi, "split_bf16: null operand");  // lo may be null: hi only
  if (p.n == 0) return;
  if (p.n % 4 == 0 && aligned(p.x, 16) && aligned(p.hi, 8) && aligned(p.lo, 8))
    launch_kernel(split_bf16_kernel<4>, element_blocks(p.n / 4), kElementThreads, 0, stream, p);
  else
    launch_kernel(split_bf16_kernel<1>, element_blocks(p.n), kElementThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_weight_to_bf16(const WeightToBf16Params& p, cudaStream_t stream) {
  check(p.N >= 0 && p.K > 0 && p.out, "weight_to_bf16: bad shape or null output");
  check_weight(p.w, p.K, "weight_to_bf16");
  const int64_t n = static_cast<int64_t>(p.N) * p.K;
  if (n == 0) return;
  with_format(p.w.format, [&]<WeightFormat F>() {
    launch_kernel(weight_to_bf16_kernel<F>, element_blocks(n), kElementThreads, 0, stream, p);
  });
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_widen_bf16(const WidenBf16Params& p, cudaStream_t stream) {
  check(p.in && p.y, "widen_bf16: null operand");
  if (p.n == 0) return;
  if (p.n % 4 == 0 && aligned(p.in, 8) && aligned(p.y, 16))
    launch_kernel(widen_bf16_kernel<4>, element_blocks(p.n / 4), kElementThreads, 0, stream, p);
  else
    launch_kernel(widen_bf16_kernel<1>, element_blocks(p.n), kElementThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_add_halves(const AddHalvesParams& p, cudaStream_t stream) {
  check(p.in && p.y, "add_halves: null operand");
  if (p.n == 0) return;
  if (p.n % 4 == 0 && aligned(p.in, 16) && aligned(p.y, 16))
    launch_kernel(add_halves_kernel<4>, element_blocks(p.n / 4), kElementThreads, 0, stream, p);
  else
    launch_kernel(add_halves_kernel<1>, element_blocks(p.n), kElementThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_round_bf16(const RoundBf16Params& p, cudaStream_t stream) {
  check(p.x != nullptr, "round_bf16: null operand");
  if (p.n == 0) return;
  if (p.n % 4 == 0 && aligned(p.x, 16))
    launch_kernel(round_bf16_kernel<4>, element_blocks(p.n / 4), kElementThreads, 0, stream, p);
  else
    launch_kernel(round_bf16_kernel<1>, element_blocks(p.n), kElementThreads, 0, stream, p);
  DSV4_CUDA_CHECK_LAUNCH();
}

void launch_embed(const EmbedParams& p, cudaStream_t stream) {
  check(p.T >= 0 && p.D > 0 && p.ids && p.out, "embed: bad shape or null operand");
  check_weight(p.table, p.D, "embed");
  if (p.T == 0) return;
  const unsigned threads = static_cast<unsigned>(std::min<int32_t>(256, (p.D + 31) / 32 * 32));
  with_format(p.table.format, [&]<WeightFormat F>() {
    launch_kernel(embed_kernel<F>, static_cast<unsigned>(p.T), threads, 0, stream, p);
  });
  DSV4_CUDA_CHECK_LAUNCH();
}

}  // namespace dsv4::cuda
