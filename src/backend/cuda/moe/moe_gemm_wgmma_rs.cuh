// Hopper wgmma grouped expert GEMM, variant 3 of moe_gemm_wgmma.cuh (KernelPaths::moe_wgmma_variant = 3): swap AB,
// the weights as the register A operand of wgmma RS. Same MoeGemmParams, moe_align tile list, grid (x = N /
// moe_wgmma_bn(gate_up), y = tile capacity; CTAs past n_tiles exit), CTA tile (one tile of <= 128 slots x 256 weight
// rows) and epilogue (moe_store) as moe_gemm_wgmma_kernel, whose helpers it uses: results equal variant 0's up to
// the f32 summation order.
// Why: variant 0's producer expands every weight to bf16 through shared memory (32 KB of stores per K step, one
// producer warp per scheduler) and is the critical path (H200, Flash T=4096: ~1840 cycles per K step against ~1024
// of wgmma). Here the 8 consumer warps (2 per scheduler) convert the weights in registers, each thread only the
// values its own A fragments hold, while the tensor cores run the previous K step; no bf16 copy of B is stored.
// moe_gemm_wgmma_rs_kernel<kGateUp, kFmt>: Dᵀ[256 weight rows, slots] = W · Xᵀ in K steps of 64; 384 threads, one
// CTA per SM, setmaxnreg moving registers from the producer (kMoeRsProdRegs) to the consumers (kMoeRsConsRegs).
//   * producer (warpgroup 0): cp.asyncs the gathered X rows (bf16, the tile's rows only) and the raw weight bytes
//     (MXFP4 nibbles / FP8 codes) of B rows 0-255 with variant 0's row order, copy pattern and swizzles (B rows
//     [0, 128): w1 rows n0 + i; [128, 256): w3 rows n0 + i for gate_up, w2 rows n0 + 128 + i for down)
//     kMoeRsStages - 1 K steps ahead into a kMoeRsStages ring. For step kt it waits for its own copies, fences the
//     async proxy (X is read by wgmma) and arrives on full[kt % S] (128 arrivals). The e8m0 scales of the 256 rows
//     for the whole K are copied once at CTA start (moe_wg_load_scales, variant 0's layout), in the cp.async group
//     before step 0's, so full(0) also covers them.
//   * consumers (warpgroups 1, 2: cw = 0, 1): warpgroup cw owns Dᵀ rows [128cw, 128cw + 128) = two m64 blocks b,
//     one m64nN f32 accumulator each. Dᵀ row 16σ + 8h + g (slab σ = 8cw + 4b + w of warp w, g = lane / 4, h = 0, 1:
//     the rows of A fragment registers 0, 2 and 1, 3) is raw row t = 128h + 8σ + g for gate_up, so rows 0-7 of a
//     slab are w1 columns n0 + 8σ + [0, 8) and rows 8-15 w3 of the same columns (gate and up values of a column in
//     one thread: SwiGLU in the thread), and t = 16σ + 8h + g (w2 rows in order) for down. Per K step a thread
//     reads its 4 raw rows (b, h) and their e8m0 scales and builds its 32 fragment registers (4 k16 blocks x 2
//     blocks x 4; MoeRsSrc::convert):
//     MXFP4: two 16-byte loads per row (the 4 lanes of a quad read the same bytes); byte q = lane % 4 of each of
//     the row's 8 words holds the thread's k pair 2q, 2q + 1 (low nibble = even k) of half a k16 block, gathered
//     with PRMT and decoded by fp4x8_to_bf16. FP8: four 16-byte loads per row, bytes 2q, 2q + 1 and 8 + 2q, 9 + 2q
//     of each (fp8x2_to_bf16). Code x e8m0 scale through bf16 multiplies, exact, as variant 0's expansion (one
//     multiply unless a scale of the step exceeds 2^(127 - bias): a per-step branch). Then 8 wgmma
//     m64nNk16 RS (k16 block s outer, block b inner; B = the X stage by descriptor, N = kN) and one commit.
//     Fragments are double-buffered: step kt's group is issued, wait_group 1 retires step kt - 1 (its stage is
//     released: empty[s], lane 0 of each consumer warp, 8 arrivals; its fragment buffer is free), then step
//     kt + 1 is converted into that buffer while step kt runs. kN: the tile's rows rounded up to 64, 96 or 128
//     (wgmma time is proportional to N; X rows past the tile's rows hold stale bytes that only reach Dᵀ columns
//     that are never stored).
//   Epilogue: Dᵀ fragment d[4j + v] is row 16w + g + 8(v >> 1) of block b, slot 8j + 2q + (v & 1); per slot <
//   rows, moe_store as variant 0: gate_up: gate d[4j + e], up d[4j + 2 + e] of column n0 + 8σ + g; down: column
//   n0 + t. A store instruction writes 8 consecutive columns (32 bytes) of 4 rows.
//   Shared memory (1024-byte aligned base): X [S][128 rows][128 B], K-major with the 128-byte swizzle (variant 0's
//   A stage, here the wgmma B operand); raw [S][256 rows][32 B (MXFP4) / 64 B (FP8)] with variant 0's chunk
//   swizzle (the 8 rows a warp reads at once are conflict-free); mbarriers full[S], empty[S]; rsrc[128]; the e8m0
//   scales as variant 0 (moe_wg_scale_pitch). MoeRsSmem::bytes(fp4, K), S = 6: MXFP4 149,088 + 256 · pitch
//   (K = 4096: 185,952; at most 227 KiB, so K <= 9728), FP8 198,240 + 2 · pitch.
//   Deadlock freedom: the producer arrives on full(kt) before it waits for empty(kt - 1) (to refill that slot with
//   step kt + S - 1); consumers release step kt - 1 right after issuing step kt, which needs full(kt) only (waited
//   before converting step kt, after releasing step kt - 2). Slot reuse: the raw bytes of step j were loaded into
//   registers before its wgmmas were issued, and its wgmmas retired before the release.
// Needs what variant 0 needs (moe_wgmma_shape_unsupported) and its own carve-up within 227 KiB
// (moe_wgmma_rs_unsupported).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe_gemm.cuh"
#include "backend/cuda/moe/moe_gemm_wgmma.cuh"
#include "backend/cuda/moe/params.h"

namespace dsv4::cuda {

inline constexpr int kMoeRsStages = 6;      // X / raw ring; the producer loads kMoeRsStages - 1 steps ahead
inline constexpr int kMoeRsThreads = 384;   // producer warpgroup + 2 consumer warpgroups
inline constexpr int kMoeRsProdRegs = 56;   // registers per producer thread after setmaxnreg.dec (40: FP8 spills)
inline constexpr int kMoeRsConsRegs = 224;  // registers per consumer thread after setmaxnreg.inc
// Within the 168 registers per thread (65,536 / 384 rounded down to 8) that __launch_bounds__(384, 1) gives at
// launch.
static_assert(128 * kMoeRsProdRegs + 256 * kMoeRsConsRegs <= kMoeRsThreads * (65536 / kMoeRsThreads / 8 * 8) &&
              kMoeRsProdRegs % 8 == 0 && kMoeRsConsRegs % 8 == 0);

// Shared memory: the variant-0 carve-up without its B buffer, kMoeRsStages slots (X = the A ring there).
using MoeRsSmem = MoeWgSmemT<kMoeRsStages, false>;
static_assert(MoeRsSmem::scales(true) % 16 == 0 && MoeRsSmem::scales(false) % 16 == 0);

// Dynamic shared memory of moe_gemm_wgmma_rs_kernel<·, fp4 ? Mxfp4 : Fp8> for K.
inline int64_t moe_wgmma_rs_smem_bytes(bool fp4, int64_t K) { return MoeRsSmem::bytes(fp4, K); }

// Empty when moe_gemm_wgmma_rs_kernel supports the call (on top of moe_mma_unsupported).
inline std::string moe_wgmma_rs_unsupported(const MoeGemmParams& p) {
  if (std::string why = moe_wgmma_shape_unsupported(p); !why.empty()) return why;
  const int64_t smem = moe_wgmma_rs_smem_bytes(p.format == MoeWeightFormat::Mxfp4, p.K);
  if (smem > kMoeWgMaxSmem)
    return "moe wgmma v3: K " + std::to_string(p.K) + " needs " + std::to_string(smem) +
           " bytes of shared memory (e8m0 scales of the CTA's rows)";
  return {};
}

// d[64 x kN] += A[64 x 16] · B[kN x 16]ᵀ, kN in {64, 96, 128}: A from registers, B by shared-memory descriptor,
// bf16 in, f32 accumulate. Thread (warp w of the warpgroup, lane l = 4g + q) holds A rows 16w + g (a[0]: k 2q,
// 2q + 1; a[2]: k 2q + 8, 2q + 9) and 16w + g + 8 (a[1], a[3]), the lower k in the low half (the mma.sync m16n8k16
// A fragment per warp; CUTLASS ALayout_64x16), and d[4j + v] = element (row 16w + g + 8·(v >> 1), column 8j + 2q +
// (v & 1)), j in [0, kN / 8). All 64 accumulators are bound whatever kN; those past kN / 2 are left as they are.
template <int kN>
__device__ __forceinline__ void moe_rs_mma(float* d, const uint32_t* a, uint64_t db) {
  static_assert(kN == 64 || kN == 96 || kN == 128);
  if constexpr (kN == 128) {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
        "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, "
        "%59, %60, %61, %62, %63}, "
        "{%64, %65, %66, %67}, %68, p, 1, 1, 0;\n"
        "}\n"
        : DSV4_WG_ACC64(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  } else if constexpr (kN == 96) {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n96k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
        "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, "
        "%40, %41, %42, %43, %44, %45, %46, %47}, "
        "{%64, %65, %66, %67}, %68, p, 1, 1, 0;\n"
        "}\n"
        : DSV4_WG_ACC64(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  } else if constexpr (kN == 64) {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "setp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, "
        "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
        "{%64, %65, %66, %67}, %68, p, 1, 1, 0;\n"
        "}\n"
        : DSV4_WG_ACC64(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
  }
}

// f1 of e8m0_factors when it alone is needed (x + bias <= 254): 2^bias · 2^(x - 127) in both bf16 halves.
__device__ __forceinline__ uint32_t moe_rs_factor(uint32_t x, uint32_t bias) {
  const uint32_t a = (x + bias) << 7;
  return a | (a << 16);
}

// Producer warpgroup, thread t of 128 (see the file comment). Expects moe_wg_load_scales<·, ·, 1, MoeRsSmem>'s
// cp.async group committed. rows: the tile's rows (X rows past them are not loaded).
template <bool kGateUp, MoeWeightFormat kFmt>
__device__ __forceinline__ void moe_rs_produce(const MoeGemmParams& p, uint8_t* smem, int expert, int n0, int t,
                                               int rows) {
  constexpr bool kFp4 = kFmt == MoeWeightFormat::Mxfp4;
  constexpr int S = kMoeRsStages, kAhead = S - 1;
  constexpr int kRawRow = moe_wgmma_raw_row(kFp4), kRawStage = MoeRsSmem::raw_stage(kFp4);
  constexpr int kCpr = kRawRow / 16;  // 16-byte chunks per raw row and step: 2 (MXFP4) / 4 (FP8)
  constexpr int kRawIt = 128 / kCpr;  // raw rows per copy round: 64 / 32
  const int K = p.K, KT = K / kMoeWgBK;
  const uint32_t full0 = moe_wg_smem_u32(smem + MoeRsSmem::bars(kFp4)), empty0 = full0 + 8 * S;
  const int64_t row_bytes = kFp4 ? K / 2 : K;
  // Raw copies (variant 0's): round j of 2·kCpr covers B rows 128·(j / kCpr) + kRawIt·(j % kCpr) + [0, kRawIt);
  // thread t takes chunk t % kCpr of row t / kCpr of them (a warp: 32 / kCpr whole rows, kRawRow bytes each).
  const int rr = t / kCpr, rc = t % kCpr;
  const int n_hi0 = kGateUp ? n0 : n0 + 128;  // weight row of B row 128
  const uint8_t* const raw_lo = p.w1[expert].data + (n0 + rr) * row_bytes + 16 * rc;
  const uint8_t* const raw_hi = (kGateUp ? p.w3 : p.w1)[expert].data + (n_hi0 + rr) * row_bytes + 16 * rc;
  const int rr_swz = kFp4 ? (rr >> 2) & 1 : (rr >> 1) & 3;  // rows rr + multiples of 8 share it
  uint8_t* const raw_cp = smem + MoeRsSmem::kRaw + rr * kRawRow + ((rc ^ rr_swz) << 4);
  // X copies: round i of 8 covers tile rows 16·i + [0, 16); thread t takes chunk t % 8 of row 16·i + t / 8 (a warp:
  // 4 whole 128-byte rows).
  const int xr = t >> 3, xc = t & 7;
  const int* const rsrc = reinterpret_cast<const int*>(smem + MoeRsSmem::rsrc(kFp4));
  const __nv_bfloat16* const x_src = p.a_bf16 + 8 * xc;
  uint8_t* const x_cp = smem + MoeRsSmem::kA + xr * 128 + ((xc ^ (xr & 7)) << 4);  // (16·i + xr) & 7 == xr & 7
  auto issue = [&](int kt) {
    const int s = kt % S;
#pragma unroll
    for (int i = 0; i < 8; ++i)
      if (16 * i + xr < rows)
        moe_cp_async16(x_cp + s * MoeRsSmem::kAStage + 16 * i * 128,
                       x_src + static_cast<int64_t>(rsrc[16 * i + xr]) * K + kt * kMoeWgBK);
    const int64_t koff = static_cast<int64_t>(kt) * kRawRow;
#pragma unroll
    for (int j = 0; j < 2 * kCpr; ++j) {
      const int rb = kRawIt * (j % kCpr);  // row offset within the half
      moe_cp_async16(raw_cp + s * kRawStage + (128 * (j / kCpr) + rb) * kRawRow,
                     (j < kCpr ? raw_lo : raw_hi) + rb * row_bytes + koff);
    }
  };
  for (int kt = 0; kt < kAhead; ++kt) {  // one cp.async group per step, empty past KT
    if (kt < KT) issue(kt);
    moe_cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    moe_cp_async_wait<kAhead - 1>();  // this thread's copies of step kt (and, before it, of the scales) landed
    moe_wg_fence_async_smem();        // its X rows are read by wgmma
    moe_wg_bar_arrive(full0 + 8 * (kt % S));
    const int j = kt + kAhead;  // refills the slot of step kt - 1
    if (j < KT) {
      if (j >= S) moe_wg_bar_wait(empty0 + 8 * (j % S), ((j - S) / S) & 1);
      issue(j);
    }
    moe_cp_async_commit();
  }
}

// A consumer thread's operand sources (see the file comment): its raw rows (b, h) are t0 + kDb·b + kDh·h, t0 =
// 64cw + 8w + g (gate_up) / 128cw + 16w + g (down); convert builds its A fragments of one K step from them.
template <bool kGateUp, bool kFp4>
struct MoeRsSrc {
  static constexpr int kDb = kGateUp ? 32 : 64, kDh = kGateUp ? 128 : 8;
  static constexpr int kRawRow = moe_wgmma_raw_row(kFp4), kRawStage = MoeRsSmem::raw_stage(kFp4);
  const uint8_t* raw;  // raw row t0 of ring slot 0
  const uint8_t* sc;   // e8m0 scales: MXFP4 row t0 of the table; FP8 block row t0 / 128 (gate_up: of h = 0)
  int pitch;           // bytes per scale row
  int rswz;            // raw chunk swizzle of the thread's rows (t & 7 == g)
  uint32_t sel;        // PRMT selector of the thread's bytes: MXFP4 byte q of two words into bytes 0, 1; FP8
                       // bytes 2q, 2q + 1 of two words into bytes 1, 3 (fp8x2_to_bf16)

  // Step kt's A fragments into f: f[16b + 4s + i] = register i of k16 block s of block b.
  __device__ __forceinline__ void convert(uint32_t (&f)[32], int kt) const {
    const uint8_t* const r = raw + (kt % kMoeRsStages) * kRawStage;
    if constexpr (kFp4) convert_fp4(f, r, kt);
    else convert_fp8(f, r, kt);
  }

  __device__ __forceinline__ void convert_fp4(uint32_t (&f)[32], const uint8_t* r, int kt) const {
    uint32_t x2[2][2];  // e8m0 bytes of k [0, 32), [32, 64) (low byte first) of row (b, h)
#pragma unroll
    for (int b = 0; b < 2; ++b)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        x2[b][h] = *reinterpret_cast<const uint16_t*>(sc + (kDb * b + kDh * h) * pitch + 2 * kt);
    auto run = [&]<bool kTwo>() {
#pragma unroll
      for (int b = 0; b < 2; ++b)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int c = 0; c < 2; ++c) {  // 16-byte chunk c: k [32c, 32c + 32), k16 blocks 2c, 2c + 1
            const uint4 v = *reinterpret_cast<const uint4*>(r + (kDb * b + kDh * h) * kRawRow + ((c ^ rswz) << 4));
            const uint32_t x = (x2[b][h] >> (8 * c)) & 0xFFu;
            uint32_t f1, f2 = 0;
            if constexpr (kTwo) e8m0_factors(x, 126, f1, f2);
            else f1 = moe_rs_factor(x, 126);
            // o.x, o.y: k16 block 2c (k 2q, 2q + 1 and 2q + 8, 2q + 9); o.z, o.w: block 2c + 1.
            const uint4 o = fp4x8_to_bf16<kTwo>(
                __byte_perm(__byte_perm(v.x, v.y, sel), __byte_perm(v.z, v.w, sel), 0x5410), f1, f2);
            f[16 * b + 8 * c + h] = o.x;
            f[16 * b + 8 * c + h + 2] = o.y;
            f[16 * b + 8 * c + 4 + h] = o.z;
            f[16 * b + 8 * c + 4 + h + 2] = o.w;
          }
    };
    const uint32_t mx = __vmaxu4(x2[0][0] | x2[0][1] << 16, x2[1][0] | x2[1][1] << 16);
    if (__vcmpgtu4(mx, 0x80808080u) != 0) run.template operator()<true>();
    else run.template operator()<false>();
  }

  __device__ __forceinline__ void convert_fp8(uint32_t (&f)[32], const uint8_t* r, int kt) const {
    const uint32_t x_lo = sc[kt / 2], x_hi = kGateUp ? sc[pitch + kt / 2] : x_lo;  // rows h = 0, 1
    auto run = [&]<bool kTwo>() {
      uint32_t f1[2], f2[2] = {0, 0};
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if constexpr (kTwo) e8m0_factors(h ? x_hi : x_lo, 120, f1[h], f2[h]);
        else f1[h] = moe_rs_factor(h ? x_hi : x_lo, 120);
      }
#pragma unroll
      for (int b = 0; b < 2; ++b)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int s = 0; s < 4; ++s) {  // 16-byte chunk s: k16 block s
            const uint4 v = *reinterpret_cast<const uint4*>(r + (kDb * b + kDh * h) * kRawRow + ((s ^ rswz) << 4));
            f[16 * b + 4 * s + h] = fp8x2_to_bf16<kTwo>(__byte_perm(v.x, v.y, sel), f1[h], f2[h]);
            f[16 * b + 4 * s + h + 2] = fp8x2_to_bf16<kTwo>(__byte_perm(v.z, v.w, sel), f1[h], f2[h]);
          }
    };
    if (max(x_lo, x_hi) > 254 - 120) run.template operator()<true>();
    else run.template operator()<false>();
  }
};

// Consumer warpgroup cw (0, 1), thread ct of 128: Dᵀ rows [128cw, 128cw + 128), wgmma N = kN >= rows (see the file
// comment).
template <bool kGateUp, bool kFp4, int kN>
__device__ __forceinline__ void moe_rs_consume(const MoeGemmParams& p, uint8_t* smem, int cw, int ct, int row0,
                                               int rows, int n0) {
  using Src = MoeRsSrc<kGateUp, kFp4>;
  constexpr int S = kMoeRsStages;
  const int KT = p.K / kMoeWgBK;
  const int lane = ct & 31, w = ct >> 5, g = lane >> 2, q = lane & 3;
  const int t0 = kGateUp ? 64 * cw + 8 * w + g : 128 * cw + 16 * w + g;
  const uint32_t full0 = moe_wg_smem_u32(smem + MoeRsSmem::bars(kFp4)), empty0 = full0 + 8 * S;
  const uint32_t x0 = moe_wg_smem_u32(smem + MoeRsSmem::kA);
  const int pitch = static_cast<int>(moe_wg_scale_pitch(kFp4, p.K));
  const Src src{.raw = smem + MoeRsSmem::kRaw + t0 * Src::kRawRow,
                .sc = smem + MoeRsSmem::scales(kFp4) + (kFp4 ? t0 : kGateUp ? 0 : cw) * pitch,
                .pitch = pitch,
                .rswz = kFp4 ? (g >> 2) & 1 : (g >> 1) & 3,
                .sel = static_cast<uint32_t>(kFp4 ? q | (q + 4) << 4 : (2 * q) << 4 | (2 * q + 1) << 12)};
  float acc[128];  // block b: acc[64b, 64b + 64) (moe_rs_mma layout)
#pragma unroll
  for (int i = 0; i < 128; ++i) acc[i] = 0.0f;
  auto issue = [&](const uint32_t (&f)[32], int kt) {
    const uint32_t xs = x0 + (kt % S) * MoeRsSmem::kAStage;
    moe_wg_fence();  // f was written since the last wgmma
#pragma unroll
    for (int s = 0; s < kMoeWgBK / 16; ++s)
#pragma unroll
      for (int b = 0; b < 2; ++b) moe_rs_mma<kN>(acc + 64 * b, f + 16 * b + 4 * s, moe_wg_desc(xs + 32 * s));
    moe_wg_commit();
  };
  auto step = [&](const uint32_t (&cur)[32], uint32_t (&nxt)[32], int kt) {
    issue(cur, kt);
    moe_wg_wait<1>();  // step kt - 1 has retired: its stage and nxt are free
    if (kt > 0 && lane == 0) moe_wg_bar_arrive(empty0 + 8 * ((kt - 1) % S));
    if (kt + 1 < KT) {
      moe_wg_bar_wait(full0 + 8 * ((kt + 1) % S), ((kt + 1) / S) & 1);
      src.convert(nxt, kt + 1);
    }
  };
  uint32_t fa[32], fb[32];
  moe_wg_bar_wait(full0, 0);
  src.convert(fa, 0);
  for (int kt = 0; kt < KT; kt += 2) {
    step(fa, fb, kt);
    if (kt + 1 < KT) step(fb, fa, kt + 1);
  }
  moe_wg_wait<0>();
  moe_wg_fence_acc(acc);
#pragma unroll
  for (int b = 0; b < 2; ++b)
#pragma unroll
    for (int j = 0; j < kN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int slot = 8 * j + 2 * q + e;
        if (slot >= rows) continue;
        const float* const d = acc + 64 * b + 4 * j + e;
        const int c = n0 + t0 + Src::kDb * b;  // output column of Dᵀ row h = 0
        if constexpr (kGateUp) {
          moe_store<true>(p, row0 + slot, c, d[0], d[2]);
        } else {
          moe_store<false>(p, row0 + slot, c, d[0], 0.0f);
          moe_store<false>(p, row0 + slot, c + Src::kDh, d[2], 0.0f);
        }
      }
}

template <bool kGateUp, MoeWeightFormat kFmt>
__global__ void __launch_bounds__(kMoeRsThreads, 1) moe_gemm_wgmma_rs_kernel(const __grid_constant__ MoeGemmParams p) {
  grid_dependency_sync();
  constexpr bool kFp4 = kFmt == MoeWeightFormat::Mxfp4;
  using Sm = MoeRsSmem;
  const int tile = blockIdx.y;
  if (tile >= *p.n_tiles) return;
  const int expert = p.tiles[3 * tile], row0 = p.tiles[3 * tile + 1], rows = p.tiles[3 * tile + 2];
  const int n0 = blockIdx.x * moe_wgmma_bn(kGateUp);
  const int tid = threadIdx.x, wg = tid >> 7;
  extern __shared__ uint8_t moe_rs_dyn_smem[];
  uint8_t* smem = moe_wg_align1024(moe_rs_dyn_smem);
  if (tid < kMoeWgBM) {  // the producer warpgroup
    const int i = row0 + min(tid, rows - 1);
    const int slot = p.gather ? p.perm[i] : i;  // in flight during the scale copy's issue
    moe_wg_load_scales<kGateUp, kFp4, 1, Sm>(p, smem, expert, n0, tid);
    reinterpret_cast<int*>(smem + Sm::rsrc(kFp4))[tid] = p.gather ? slot / p.top_k : slot;
  }
  if (tid == 0) {
    const uint32_t bars = moe_wg_smem_u32(smem + Sm::bars(kFp4));
    for (int s = 0; s < kMoeRsStages; ++s) {
      moe_wg_bar_init(bars + 8 * s, 128);                   // full: every producer thread
      moe_wg_bar_init(bars + 8 * (kMoeRsStages + s), 8);    // empty: lane 0 of every consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (wg == 0) {
    moe_wg_regs_dec<kMoeRsProdRegs>();
    moe_rs_produce<kGateUp, kFmt>(p, smem, expert, n0, tid, rows);
  } else {
    moe_wg_regs_inc<kMoeRsConsRegs>();
    const int cw = wg - 1, ct = tid & 127;
    if (rows <= 64) moe_rs_consume<kGateUp, kFp4, 64>(p, smem, cw, ct, row0, rows, n0);
    else if (rows <= 96) moe_rs_consume<kGateUp, kFp4, 96>(p, smem, cw, ct, row0, rows, n0);
    else moe_rs_consume<kGateUp, kFp4, 128>(p, smem, cw, ct, row0, rows, n0);
  }
}

}  // namespace dsv4::cuda
