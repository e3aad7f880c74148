// Routed-expert GEMM on FP8 tensor cores (prefill, MXFP4 experts, Bf16 numerics): moe_gemm_fp8_kernel<kGateUp>.
// Spec §2.7 multiplies FP8 activation codes by FP4 weight codes converted exactly to e4m3 and scales each K block
// of 32. Here the codes of one weight row and 128-wide K block are converted to e4m3 *with* their block's scale
// relative to a reference R: code · 2^(s32 - R + 6), exact while R - 12 <= s32 <= R (e4m3 keeps 1.5·2^-8 .. 6·2^6
// exactly), so a K step of 128 is four wgmma m64nNk32 e4m3 on raw codes into an f32 partial.
//  * Tensor references (MoeGemmParams::fp8_ref, switch moe_fp8_tensor_ref, the default where allowed): R is the
//    largest scale of the whole expert weight (every one of its scales within 12 below, 64 <= R <= 196), so the
//    step's promotion is acc += part · sa (sa the activation's act_quant scale of the block, per token) and the
//    rows' factors 2^(R - 133) multiply acc once in the epilogue (exact powers of two, the unscaled sums stay far
//    inside f32 for R in that range).
//  * Block references (fp8_ref null): R = the (row, block)'s largest scale, promoted per step with one factor per
//    (weight row, token): acc += part · 2^(R - 133) · sa.
// Every product is exact, as in moe_gemm_wgmma.cuh's bf16 kernel; the results differ from it (and between the two
// references, by the tensor cores' accumulation of differently scaled codes) in the summation order and in the
// FP8 accumulation inside a step. Host side (ops_moe.cu, moe_fp8_scales.h) takes this kernel only after checking
// every scale block of the expert set (spread <= 12, 7 <= largest <= 254); other sets stay on the bf16 kernel.
//
// Swap AB (the weights are wgmma's M side, the tile's tokens its N side): a work item is 128 weight rows x one
// moe_align tile (<= 128 slots of one expert), N = the tile's rows rounded up to 16, so a 96-row tile does 96
// columns of work, not 128. Items: tile item / cb, column block item % cb (cb = N / moe_fp8_bn); persistent CTAs
// (grid <= SMs, one CTA per SM) take items blockIdx.x, + gridDim.x, ..., so the CTAs running at once share a few
// tiles' activation rows in L2 and a CTA's pipeline runs on from one item into the next.
// Weight rows of an item: gate_up: row r = 16 b + 8 h + i (b < 8, h < 2, i < 8) is w1 (h = 0) or w3 (h = 1) row
// n0 + 8 b + i, so a thread's accumulator rows r and r + 8 are g and u of one output column; down: w2 row n0 + r.
// 512 threads, setmaxnreg: two producer warpgroups (kMoeF8ProdRegs) and two consumers (kMoeF8ConsRegs):
//  * producers (warpgroups 0, 1; thread t of 256): walk the CTA's items as one sequence of global K steps and cp.async
//    step g + D into a kMoeF8Stages (S = 6) ring at step g (D = kMoeF8Ahead = 1; the raw weight bytes into a ring of
//    kMoeF8RawStages = 4): the item's activation rows (e4m3, 128 B per step; rows past the tile's not loaded), their
//    act_quant scales (f32, threads 128-255), the raw MXFP4 bytes of the 128 weight rows (64 B per step, 16-byte chunks
//    xor-swizzled so that 8 consecutive rows read conflict-free), their e8m0 bytes (threads 0-127: 16 bytes = 4 steps
//    at every 4th step where the item's steps come in fours, else 4 bytes per step) and the item's tensor reference
//    word (thread 0). After a barrier of the 256, thread t converts half t >> 7 of weight row t & 127 of step g into
//    converted slot g % W (W = kMoeF8CSlots = 5, a counter; byte-permute table per 32-block, moe_f8_cvt8), with block
//    references writes the row's promotion factor, fences the async proxy and arrives on full[g % S].
//  * consumers (warpgroups 2, 3): weight rows [64 c, 64 c + 64); per K step four wgmma m64nNk32 into a
//    temporary accumulator, wait, promote into the f32 accumulator, release the stage (empty, one arrival per
//    warp); after an item's last step its epilogue (moe_store's arithmetic: the tokens' routing weights / output
//    rows loaded first, the values computed branch-free, then stored) while the producers fill the next steps.
// Shared memory (1024-aligned): act [S][128][128 B] and the converted weights [W][128][128 B], both K-major with
// the 128-byte swizzle (chunk c of row r at c ^ (r & 7)); raw [4][128][64 B]; sa f32 [S][128]; e8m0 u32 [S][128]
// and [4][128][16 B]; promotion factors f32 [W][128]; tensor references u32 [S]; mbarriers full[S] (256
// arrivals), empty[S] (8); the epilogue's rows u32 [2][128] (moe_f8_staged_rows).
// Deadlock freedom: with L = min(S - D, W) = 5 (kMoeF8Lead), the producers wait for empty(g - L) before issuing
// step g + D (stage (g + D) % S, last used by step g + D - S <= g - L) and converting step g (slot g % W, last
// used by g - W <= g - L); consumers release step x after finishing it, which needs only full(x). Raw / scale
// stage reuse across producer threads: step g + D's copies overwrite step g + D - 4's raw bytes (g + D - S's
// e8m0 words) only after the issuing thread passed step g - 1's producer barrier, i.e. after every producer thread
// converted g - 2 >= g + D - 4 (D <= 2); the 4-step e8m0 slot of steps 4G..4G+3 is rewritten for steps 4G + 16..
// at step 4G + 16 - D >= 4G + 14, long after every thread converted 4G + 3.
// Measured (H200, Flash T = 4096, run 111): 3.68 ms for the routed experts (bf16 wgmma kernel 5.71 ms). clock64
// phases per K step (DSV4_MOE_FP8_PROF=1): the producers' copy issue (~750 cycles) and conversion (~800, the
// same for half rows as for whole ones) bound the step at ~2000 cycles against ~400 of wgmma.
// Run 253 (ncu source counters): 7.5 cycles per issued instruction per warp, ~350 instructions per producer warp
// per step (151 converting); the step's indices are counters since run 254 (a runtime division per step was ~40
// of them): T=4096 gate/up 2.21 ms, down 1.04 ms, the op test's call 3.54 ms (350 TFLOP/s). The activation rows
// by TMA (gathered into expert order first) were bitwise equal and no faster (runs 251-254).
// Runs 255-256: tensor references (promotion 433 -> 353 cycles per step), the producers 4 steps ahead of the
// consumers instead of 2 (copies 2 ahead, 4 converted slots; wait-empty 517 -> 308 cycles per step) and the
// branch-free epilogue (10.7 K -> 7.2 K cycles per gate/up item): gate/up 1.93-1.97 ms, down 0.98-0.99 ms, the
// op test's call 3.25 ms (381 TFLOP/s; HEAD 3.49-3.53 ms in the same call).
// Runs 262-264: the epilogue stores bf16 (MoeGemmParams::out_bf16, switch moe_fp8_bf16_io) so that h and y cross HBM
// at half the bytes; with the call's smaller kernels (act_quant, route, align, combine) the call took 3.27-3.29 ms
// on machines whose two GEMM kernels took 3.07-3.09 ms (the call was 3.35-3.39 before, same machine kind).
// Run 272 (switch moe_fp8_stage): the epilogue's routing weights / output rows staged by the producers and the
// tensor references from the first step's copy: epilogue per item 11.4 K -> 9.4 K cycles (gate/up), 6.1 K -> 5.5 K
// (down); the call 3224-3257 us against 3291-3349 with global loads, in one device call. The epilogue is on the
// consumers' critical path (the producers run at most 4 steps, ~3.5 K cycles, ahead); runs 268-269 put h's
// act_quant into it and were slower (bench/results/h200_r268_moe_fp8_h_quant_experiment.patch). Run 273 (switch
// moe_fp8_pair_stores): bf16 outputs two adjacent columns per 4-byte store (a shuffle with lane ^ 4 instead of a
// second 2-byte store): gate/up epilogue 8.8 K -> 7.6 K cycles per item; the call 3168-3184 us against 3219-3245.
// Runs 274-281 (docs/perf.md "Runs 274-281"): the next item's loads prefetched (producers or consumers), one
// full-barrier arrival per producer warp, the conversion's shared loads issued first or each thread converting the
// chunks it copied, and a stage released before its promotion were all bitwise equal and level or slower: changes to
// the producers' shared-memory access order or register budget raise their copy-issue phase (~585 -> 700-800
// cycles per step). The producers 5 steps ahead (copies 1 ahead, 5 converted slots, a 4-stage raw ring; run 281)
// were bitwise equal and 0.2-0.5 % faster, but their slot counters slowed the default path. Patches in bench/results.
// Run 282: that pipeline fixed at compile time (this kernel; copies 2 ahead into 4 slots before): producers' wait
// for the consumers 332-382 -> 304-306 cycles a step (gate/up), the Flash call 3105.6-3112.8 us (397.4-398.3
// TFLOP/s) against the previous kernel's 3125.1-3158.1 in one call, T=8192 6134.7 against 6238.6 us. Run 284
// (kProf counters by item position): of the producers' 9.6 K cycles per gate/up item waiting for releases, 4.2 K
// fall in an item's first 6 steps (the epilogue's shadow), the rest ~210 a step; CTA times within 1.5 %.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe_gemm.cuh"
#include "backend/cuda/moe/moe_gemm_wgmma.cuh"
#include "backend/cuda/moe/params.h"

namespace dsv4::cuda {

inline constexpr int kMoeF8Rows = 128;     // weight rows per CTA
inline constexpr int kMoeF8BK = 128;       // K per step: one act_quant block
inline constexpr int kMoeF8Stages = 6;     // activation / scale ring (S)
inline constexpr int kMoeF8Ahead = 1;      // D: the copies of step g + D are issued at step g
inline constexpr int kMoeF8CSlots = 5;     // W: converted-weight slots, step g in slot g % W (a counter)
inline constexpr int kMoeF8RawStages = 4;  // raw MXFP4 ring: step g in stage g & 3 (needs D <= 2)
// L: producers run up to L = min(S - D, W) steps ahead of the consumers' releases (file comment).
inline constexpr int kMoeF8Lead = kMoeF8Stages - kMoeF8Ahead < kMoeF8CSlots ? kMoeF8Stages - kMoeF8Ahead
                                                                            : kMoeF8CSlots;
static_assert(kMoeF8Ahead >= 1 && kMoeF8Ahead <= 2 && kMoeF8Ahead + kMoeF8Lead == kMoeF8Stages);
inline constexpr int kMoeF8Threads = 512;   // two producer, two consumer warpgroups
inline constexpr int kMoeF8ProdRegs = 72;    // registers per producer thread after setmaxnreg.dec
inline constexpr int kMoeF8ConsRegs = 184;   // per consumer thread after setmaxnreg.inc (256 · (72 + 184) = 64 K)
inline constexpr int kMoeF8Slots = kMoeWgBM;  // slots per tile (moe_gemm_bm(MmaPrefill))
inline constexpr int kMoeF8MaxSpread = 12;    // largest smax - s32 inside a (row, 128-K) block

// Output columns per CTA.
__host__ __device__ constexpr int moe_fp8_bn(bool gate_up) { return gate_up ? kMoeF8Rows / 2 : kMoeF8Rows; }

struct MoeF8Smem {
  static constexpr int kActStage = kMoeF8Slots * 128;
  static constexpr int kWStage = kMoeF8Rows * 128;
  static constexpr int kRawStage = kMoeF8Rows * 64;
  static constexpr int kAct = 0;
  static constexpr int kW = kAct + kMoeF8Stages * kActStage;
  static constexpr int kRaw = kW + kMoeF8CSlots * kWStage;
  static constexpr int kSa = kRaw + kMoeF8RawStages * kRawStage;       // f32 [S][128]: activation scales
  static constexpr int kWsc = kSa + kMoeF8Stages * kMoeF8Slots * 4;    // u32 [S][128]: 4 e8m0 bytes per row
  static constexpr int kWsc4 = kWsc + kMoeF8Stages * kMoeF8Rows * 4;  // [4][128][16 B]: e8m0 of 4 steps per row
  static constexpr int kRef = kWsc4 + 4 * kMoeF8Rows * 16;             // f32 [W][128]: promotion factors
  static constexpr int kTRef = kRef + kMoeF8CSlots * kMoeF8Rows * 4;  // u32 [S]: the step's tensor references
  static constexpr int kBars = kTRef + kMoeF8Stages * 4;               // full[S], empty[S]
  static constexpr int kRows = kBars + 2 * kMoeF8Stages * 8;           // u32 [2][128]: epilogue rows (staged)
  static constexpr int kEnd = kRows + 2 * kMoeF8Slots * 4;
  __host__ __device__ static constexpr int64_t bytes() { return kEnd + 1024; }  // + slack to align the base
};
static_assert(MoeF8Smem::bytes() <= 227 * 1024 && MoeF8Smem::kBars % 8 == 0 && MoeF8Smem::kWsc4 % 16 == 0);
static_assert(256 * (kMoeF8ProdRegs + kMoeF8ConsRegs) <= 65536 && kMoeF8ProdRegs % 8 == 0 && kMoeF8ConsRegs % 8 == 0);

// Empty when moe_gemm_fp8_kernel supports weights of this format and shape (the scale-spread condition is the
// caller's); moe_fp8_unsupported: the whole call, A included.
inline std::string moe_fp8_weights_unsupported(MoeWeightFormat format, MoeScaleDtype scale_dtype, int64_t N,
                                               int64_t K, bool gate_up) {
  if (format != MoeWeightFormat::Mxfp4) return "moe fp8: weights are not MXFP4";
  if (scale_dtype != MoeScaleDtype::E8m0) return "moe fp8: weight scales are not e8m0";
  if (N <= 0 || N > INT32_MAX || N % moe_fp8_bn(gate_up) != 0)
    return "moe fp8: N " + std::to_string(N) + " is not a positive int32 multiple of " +
           std::to_string(moe_fp8_bn(gate_up));
  if (K <= 0 || K > INT32_MAX || K % kMoeF8BK != 0)
    return "moe fp8: K " + std::to_string(K) + " is not a positive int32 multiple of 128";
  return {};
}
inline std::string moe_fp8_unsupported(const MoeGemmParams& p) {
  if (p.a_q == nullptr || p.a_scale == nullptr || p.a_rows <= 0) return "moe fp8: reads e4m3 A with f32 scales";
  return moe_fp8_weights_unsupported(p.format, p.scale_dtype, p.N, p.K, p.gate_up);
}

// 8 e2m1 codes (MXFP4 order, low nibble first) -> 8 e4m3 bytes (.x codes 0-3, .y codes 4-7), magnitudes through
// the byte table (lut_lo: magnitudes 0-3, lut_hi: 4-7), signs moved from bit 3 of each nibble to bit 7 of each byte.
__device__ __forceinline__ uint2 moe_f8_cvt8(uint32_t w, uint32_t lut_lo, uint32_t lut_hi) {
  const uint32_t m = w & 0x77777777u;
  const uint32_t mag0 = __byte_perm(lut_lo, lut_hi, m), mag1 = __byte_perm(lut_lo, lut_hi, m >> 16);
  const uint32_t w4 = w << 4;
  const uint32_t s0 = __byte_perm(w4, w, 0x5140), s1 = __byte_perm(w4, w, 0x7362);
  return make_uint2(mag0 | (s0 & 0x80808080u), mag1 | (s1 & 0x80808080u));
}

// The magnitude table of shift t (0..12): e4m3 bytes of {0, 0.5, 1, 1.5, 2, 3, 4, 6} · 2^(t - 6). Magnitude m >= 2
// is the normal byte (e + t) << 3 | mantissa; 0.5 is the subnormal 0x04 at t = 0, else the power t << 3.
__device__ __forceinline__ void moe_f8_lut(int t, uint32_t& lut_lo, uint32_t& lut_hi) {
  const uint32_t tt = static_cast<uint32_t>(t) << 3;
  lut_lo = 0x0C080000u + tt * 0x01010100u + (t == 0 ? 0x0400u : 0u);
  lut_hi = 0x1C181410u + tt * 0x01010101u;
}

__device__ __forceinline__ void moe_f8_cp_async4(void* smem, const void* gmem) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(moe_wg_smem_u32(smem)), "l"(gmem) : "memory");
}

// d[64 x kN] = (accumulate ? d : 0) + A[64 x 32] · B[kN x 32]ᵀ, e4m3 in, f32 accumulate (wgmma m64nNk32, both
// operands K-major through shared-memory descriptors). Thread (warp w of the warpgroup, lane l) holds
// d[4j + v] = element (row 16w + l/4 + 8·(v >> 1), column 8j + 2·(l % 4) + (v & 1)).
template <int kN>
__device__ __forceinline__ void moe_f8_mma(float (&d)[kN / 2], uint64_t da, uint64_t db, bool accumulate);
// Operand lists of the asm statements for n = 8 .. 64 accumulators: DSV4_F8_Sn the names "%0, ..., %n-1",
// DSV4_F8_An the "+f" bindings of d[0, n) (DSV4_WG_ACC8 of moe_gemm_wgmma.cuh).
#define DSV4_F8_S8 "%0, %1, %2, %3, %4, %5, %6, %7"
#define DSV4_F8_A8 DSV4_WG_ACC8(d, 0)
#define DSV4_F8_S16 DSV4_F8_S8 ", %8, %9, %10, %11, %12, %13, %14, %15"
#define DSV4_F8_A16 DSV4_F8_A8, DSV4_WG_ACC8(d, 8)
#define DSV4_F8_S24 DSV4_F8_S16 ", %16, %17, %18, %19, %20, %21, %22, %23"
#define DSV4_F8_A24 DSV4_F8_A16, DSV4_WG_ACC8(d, 16)
#define DSV4_F8_S32 DSV4_F8_S24 ", %24, %25, %26, %27, %28, %29, %30, %31"
#define DSV4_F8_A32 DSV4_F8_A24, DSV4_WG_ACC8(d, 24)
#define DSV4_F8_S40 DSV4_F8_S32 ", %32, %33, %34, %35, %36, %37, %38, %39"
#define DSV4_F8_A40 DSV4_F8_A32, DSV4_WG_ACC8(d, 32)
#define DSV4_F8_S48 DSV4_F8_S40 ", %40, %41, %42, %43, %44, %45, %46, %47"
#define DSV4_F8_A48 DSV4_F8_A40, DSV4_WG_ACC8(d, 40)
#define DSV4_F8_S56 DSV4_F8_S48 ", %48, %49, %50, %51, %52, %53, %54, %55"
#define DSV4_F8_A56 DSV4_F8_A48, DSV4_WG_ACC8(d, 48)
#define DSV4_F8_S64 DSV4_F8_S56 ", %56, %57, %58, %59, %60, %61, %62, %63"
#define DSV4_F8_A64 DSV4_F8_A56, DSV4_WG_ACC8(d, 56)
// The specialization for N columns (N / 2 accumulators; operands N / 2, + 1: descriptors, + 2: accumulate flag).
#define DSV4_F8_MMA(N, PA, PB, PP)                                                                             \
  template <>                                                                                                  \
  __device__ __forceinline__ void moe_f8_mma<N>(float (&d)[N / 2], uint64_t da, uint64_t db, bool accumulate) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #PP ", 0;\n"                                               \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k32.f32.e4m3.e4m3 {" DSV4_F8_S##PA "}, %" #PA ", %" #PB \
                 ", p, 1, 1;\n}\n"                                                                             \
                 : DSV4_F8_A##PA                                                                               \
                 : "l"(da), "l"(db), "r"(accumulate ? 1 : 0));                                                 \
  }
DSV4_F8_MMA(16, 8, 9, 10)
DSV4_F8_MMA(32, 16, 17, 18)
DSV4_F8_MMA(48, 24, 25, 26)
DSV4_F8_MMA(64, 32, 33, 34)
DSV4_F8_MMA(80, 40, 41, 42)
DSV4_F8_MMA(96, 48, 49, 50)
DSV4_F8_MMA(112, 56, 57, 58)
DSV4_F8_MMA(128, 64, 65, 66)
#undef DSV4_F8_MMA

// 2^(R - 133) for an e8m0 reference byte R (7 <= R <= 254): the f32 exponent field R - 133 + 127. Converted codes
// times this factor are the weight values (code · 2^(s32 - R + 6) · 2^(R - 133) = code · 2^(s32 - 127)).
__device__ __forceinline__ float moe_f8_ref_factor(uint32_t r) {
  return __int_as_float((static_cast<int>(r) - 6) << 23);
}

// Profiling build (kProf): cycles per phase summed over CTAs (thread 0 of each warpgroup): producer wait-empty,
// issue, wait-copies, convert; consumer wait-full, wgmma, promote, epilogue; then steps, items.
// [10]: the producers' wait-empty at an item's first 6 steps (of [0]); [11]: the consumers' wait-full there (of
// [4]); [12..15]: consumer warpgroup 1's phases; [16]: the CTAs' cycles (producer thread 0, first step to last),
// summed; [17] / [18]: their largest / smallest.
inline constexpr int kMoeF8ProfSlots = 20;
__device__ unsigned long long g_moe_f8_prof[kMoeF8ProfSlots];

// Work item `item` of the call (tile item / cb, column block item % cb; cb = N / moe_fp8_bn): consecutive items
// share a tile, so the CTAs running at once read the same activation rows from L2.
struct MoeF8Item {
  int expert, row0, rows, n0;
};
template <bool kGateUp>
__device__ __forceinline__ MoeF8Item moe_f8_item(const MoeGemmParams& p, int item) {
  const int cb = p.N / moe_fp8_bn(kGateUp), tile = item / cb;
  return {p.tiles[3 * tile], p.tiles[3 * tile + 1], p.tiles[3 * tile + 2], (item - tile * cb) * moe_fp8_bn(kGateUp)};
}
// Items of this CTA: blockIdx.x, + gridDim.x, ... below n_tiles · cb.
template <bool kGateUp>
__device__ __forceinline__ int moe_f8_my_items(const MoeGemmParams& p) {
  const int n = *p.n_tiles * (p.N / moe_fp8_bn(kGateUp));
  return n > static_cast<int>(blockIdx.x) ? (n - 1 - static_cast<int>(blockIdx.x)) / static_cast<int>(gridDim.x) + 1
                                          : 0;
}

// Weight row of CTA row r (file comment): the weight and its row index.
template <bool kGateUp>
__device__ __forceinline__ MoeWeightPtr moe_f8_row(const MoeGemmParams& p, int expert, int n0, int r, int& n) {
  if constexpr (kGateUp) {
    n = n0 + 8 * (r >> 4) + (r & 7);
    return (r & 8) ? p.w3[expert] : p.w1[expert];
  } else {
    n = n0 + r;
    return p.w1[expert];
  }
}

// The tokens' routing weights (gate_up, f32 bits) / output rows (down) of an item's tile rows, staged into shared
// memory by the producers at the item's first step (buffer li & 1) instead of two dependent global loads at the
// epilogue's start. Where K has at least S steps: then the producers rewrite buffer li & 1 (item li + 2's first
// step, issued after the consumers released step start(li) + 2 KT - D - L >= start(li) + KT, since D + L <= S)
// only after the consumers' epilogue of item li, which precedes their release of item li + 1's steps.
__device__ __forceinline__ bool moe_f8_staged_rows(const MoeGemmParams& p) {
  return p.fp8_stage != 0 && p.K / kMoeF8BK >= kMoeF8Stages;
}

// Barrier of the 256 producer threads alone (named barrier 1); also orders their shared-memory accesses.
__device__ __forceinline__ void moe_f8_producer_sync() { asm volatile("bar.sync 1, 256;\n" ::: "memory"); }

// Converts half h = t >> 7 (K blocks 2h, 2h + 1) of weight row r = t & 127 of global step g (stage s = g % S) into
// converted slot ws = g % W, relative to the row's weight's tensor reference (tref: its byte of the
// step's word) or, without them, to the (row, block)'s largest scale, h = 0 then writing the row's promotion
// factor. e8m0 bytes from the 4-step copy (wsc4) or the per-step one.
template <bool kGateUp>
__device__ __forceinline__ void moe_f8_convert(uint8_t* smem, int g, int s, int t, bool wsc4, bool tref, int ws) {
  using Sm = MoeF8Smem;
  const int r = t & 127, h = t >> 7;
  const uint32_t* const w4 = reinterpret_cast<const uint32_t*>(smem + Sm::kWsc4);
  const uint32_t sc4 = wsc4 ? w4[(((g >> 2) & 3) * kMoeF8Rows + r) * 4 + (g & 3)]
                            : reinterpret_cast<const uint32_t*>(smem + Sm::kWsc)[s * kMoeF8Rows + r];
  const uint32_t bh = sc4 >> (16 * h);  // this half's two bytes
  int smax;
  if (tref) {
    smax = static_cast<int>((reinterpret_cast<const uint32_t*>(smem + Sm::kTRef)[s] >> (kGateUp && (r & 8) ? 8 : 0)) &
                            0xFFu);
  } else {
    const uint32_t m2 = __vmaxu4(sc4, sc4 >> 16);
    smax = static_cast<int>(max(m2 & 0xFFu, (m2 >> 8) & 0xFFu));
  }
  const uint8_t* raw = smem + Sm::kRaw + (g & (kMoeF8RawStages - 1)) * Sm::kRawStage + r * 64;
  uint8_t* const wrow = smem + Sm::kW + ws * Sm::kWStage + r * 128;
  const int rswz = (r >> 1) & 3, r7 = r & 7;
#pragma unroll
  for (int ii = 0; ii < 2; ++ii) {
    const int i = 2 * h + ii;
    const uint4 v = *reinterpret_cast<const uint4*>(raw + ((i ^ rswz) << 4));
    uint32_t lo, hi;
    moe_f8_lut(max(static_cast<int>((bh >> (8 * ii)) & 0xFFu) - smax + kMoeF8MaxSpread, 0), lo, hi);
    const uint2 o0 = moe_f8_cvt8(v.x, lo, hi), o1 = moe_f8_cvt8(v.y, lo, hi);
    const uint2 o2 = moe_f8_cvt8(v.z, lo, hi), o3 = moe_f8_cvt8(v.w, lo, hi);
    *reinterpret_cast<uint4*>(wrow + (((2 * i) ^ r7) << 4)) = make_uint4(o0.x, o0.y, o1.x, o1.y);
    *reinterpret_cast<uint4*>(wrow + (((2 * i + 1) ^ r7) << 4)) = make_uint4(o2.x, o2.y, o3.x, o3.y);
  }
  if (h == 0 && !tref)
    reinterpret_cast<float*>(smem + Sm::kRef)[ws * kMoeF8Rows + r] = moe_f8_ref_factor(smax);
}

// Producer warpgroups, thread t of 256 (file comment), over the CTA's items as one sequence of global steps g
// (item g / KT, K step g % KT): copies of step g + D are issued and step g converted at step g, after the
// consumers released step g - L (file comment: L = min(S - D, W)).
template <bool kGateUp, bool kProf = false>
__device__ __forceinline__ void moe_f8_produce(const MoeGemmParams& p, uint8_t* smem, int t) {
  [[maybe_unused]] unsigned long long pr[5] = {0, 0, 0, 0, 0}, c0 = 0, cta0 = 0;
  [[maybe_unused]] int pk = 0;  // kProf: K step of step g within its item
  auto tick = [&](int i) {
    if constexpr (kProf) {
      const unsigned long long c = clock64();
      pr[i] += c - c0;
      if (i == 0 && pk < 6) pr[4] += c - c0;
      c0 = c;
    }
  };
  using Sm = MoeF8Smem;
  constexpr int S = kMoeF8Stages;
  constexpr int D = kMoeF8Ahead, W = kMoeF8CSlots, L = kMoeF8Lead;
  const int K = p.K, KT = K / kMoeF8BK, total = moe_f8_my_items<kGateUp>(p) * KT;
  // e8m0 bytes of 4 steps per 16-byte copy (every 4th step) where each item's steps come in fours and the rows'
  // bytes are 16-byte aligned, else 4 bytes per step.
  const bool wsc4 = KT % 4 == 0 && (K / 32) % 16 == 0;
  const bool staged = moe_f8_staged_rows(p);
  const uint32_t full0 = moe_wg_smem_u32(smem + Sm::kBars), empty0 = full0 + 8 * S;
  // Raw copies: chunk rc of rows rr + 64 j (j < 2), a warp copies 8 whole 64-byte rows per round; activation
  // copies: chunk ac of tile rows ar + 32 i (i < 4), rows >= the tile's not loaded; threads t < 128 copy the e8m0
  // bytes of weight row t, threads t >= 128 the act_quant scale of tile row t - 128 (below the tile's rows).
  const int rc = t & 3, rr = t >> 2, ar = t >> 3, ac = t & 7;
  uint8_t* const raw_dst = smem + Sm::kRaw + rr * 64 + ((rc ^ ((rr >> 1) & 3)) << 4);  // rr + 64 j: same swizzle
  uint8_t* const a_dst = smem + Sm::kAct + ar * 128 + ((ac ^ (ar & 7)) << 4);            // (ar + 32 i) & 7 == ar & 7
  const uint8_t* raw_src[2];
  const uint8_t* a_src[4];
  const uint8_t* wsc_src = nullptr;
  const float* sa_src = nullptr;
  int rows = 0, cur = -1, expert = 0;
  auto setup = [&](int li) {  // source pointers of the CTA's li-th item
    const MoeF8Item it = moe_f8_item<kGateUp>(p, static_cast<int>(blockIdx.x) + li * static_cast<int>(gridDim.x));
    rows = it.rows;
    expert = it.expert;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      int n;
      const MoeWeightPtr w = moe_f8_row<kGateUp>(p, it.expert, it.n0, rr + 64 * j, n);
      raw_src[j] = w.data + static_cast<int64_t>(n) * (K / 2) + 16 * rc;
    }
    auto src_row = [&](int r) {
      const int i = it.row0 + min(r, it.rows - 1);
      return p.gather ? p.perm[i] / p.top_k : i;
    };
#pragma unroll
    for (int i = 0; i < 4; ++i) a_src[i] = p.a_q + static_cast<int64_t>(src_row(ar + 32 * i)) * K + 16 * ac;
    if (t < 128) {
      int n;
      const MoeWeightPtr w = moe_f8_row<kGateUp>(p, it.expert, it.n0, t, n);
      wsc_src = w.scale + static_cast<int64_t>(n) * (K / 32);
    } else {
      sa_src = t - 128 < it.rows ? p.a_scale + src_row(t - 128) : nullptr;
      if (staged) {  // tile row t - 128 (clamped as the epilogue clamps): its routing weight / output row
        const int i = it.row0 + min(t - 128, it.rows - 1), slot = p.perm ? __ldg(p.perm + i) : i;
        uint32_t* const dst = reinterpret_cast<uint32_t*>(smem + Sm::kRows) + (li & 1) * kMoeF8Slots + (t - 128);
        if (!kGateUp) *dst = static_cast<uint32_t>(slot);
        else if (p.weight) moe_f8_cp_async4(dst, p.weight + slot);
        else *dst = __float_as_uint(1.0f);
      }
    }
  };
  // issue() copies the next step (consecutive steps from 0): its item li, K step kt and stage s kept as
  // counters (a division by the runtime KT per step was ~40 of the producer warp's ~350 instructions per step).
  int next_g = 0, next_li = 0, next_kt = 0, next_s = 0;
  auto issue = [&]() {
    const int g = next_g++, li = next_li, kt = next_kt, s = next_s;
    if (++next_kt == KT) next_kt = 0, ++next_li;
    if (++next_s == S) next_s = 0;
    if (li != cur) {
      setup(li);
      cur = li;
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (ar + 32 * i < rows) moe_cp_async16(a_dst + s * Sm::kActStage + 32 * i * 128, a_src[i] + kt * kMoeF8BK);
#pragma unroll
    for (int j = 0; j < 2; ++j)
      moe_cp_async16(raw_dst + (g & (kMoeF8RawStages - 1)) * Sm::kRawStage + 64 * j * 64, raw_src[j] + kt * 64);
    if (t == 0 && p.fp8_ref) moe_f8_cp_async4(smem + Sm::kTRef + 4 * s, p.fp8_ref + expert);
    if (t < 128) {
      const uint8_t* wsc = wsc_src + 4 * kt;
      if (wsc4) {
        if ((kt & 3) == 0) {
          uint8_t* dst = smem + Sm::kWsc4 + (((g >> 2) & 3) * kMoeF8Rows + t) * 16;
          if ((reinterpret_cast<uintptr_t>(wsc) & 15) == 0) {
            moe_cp_async16(dst, wsc);
          } else {
            for (int b = 0; b < 16; ++b) dst[b] = __ldg(wsc + b);
          }
        }
      } else if ((reinterpret_cast<uintptr_t>(wsc) & 3) == 0) {
        moe_f8_cp_async4(smem + Sm::kWsc + (s * kMoeF8Rows + t) * 4, wsc);
      } else {
        uint8_t* dst = smem + Sm::kWsc + (s * kMoeF8Rows + t) * 4;
        for (int b = 0; b < 4; ++b) dst[b] = __ldg(wsc + b);
      }
    } else if (sa_src) {
      moe_f8_cp_async4(reinterpret_cast<float*>(smem + Sm::kSa) + s * kMoeF8Slots + (t - 128),
                       sa_src + static_cast<int64_t>(kt) * p.a_rows);
    }
  };
  for (int g = 0; g < D; ++g) {
    if (g < total) issue();
    moe_cp_async_commit();
  }
  if constexpr (kProf) c0 = cta0 = clock64();
  int sg = 0, ws = 0, sl = 0, pl = 0;  // g % S, g % W; stage and phase of step g - L, as counters
  for (int g = 0; g < total; ++g) {
    if (g >= L) {  // the consumers released step g - L: stage (g + D) % S and converted slot g % W are free
      moe_wg_bar_wait(empty0 + 8 * sl, pl);
      if (++sl == S) sl = 0, pl ^= 1;
    }
    tick(0);
    if (g + D < total) issue();
    moe_cp_async_commit();
    tick(1);
    moe_cp_async_wait<D>();  // step g's copies of this thread have landed
    moe_f8_producer_sync();  // every producer thread's
    tick(2);
    moe_f8_convert<kGateUp>(smem, g, sg, t, wsc4, p.fp8_ref != nullptr, ws);
    moe_wg_fence_async_smem();  // this thread's converted half row and its completed activation copies
    moe_wg_bar_arrive(full0 + 8 * sg);
    tick(3);
    if (++sg == S) sg = 0;
    if (++ws == W) ws = 0;
    if constexpr (kProf)
      if (++pk == KT) pk = 0;
  }
  if constexpr (kProf)
    if (t == 0) {
      for (int i = 0; i < 4; ++i) atomicAdd(&g_moe_f8_prof[i], pr[i]);
      atomicAdd(&g_moe_f8_prof[8], static_cast<unsigned long long>(total));
      atomicAdd(&g_moe_f8_prof[10], pr[4]);
      const unsigned long long cta = clock64() - cta0;
      atomicAdd(&g_moe_f8_prof[16], cta);
      atomicMax(&g_moe_f8_prof[17], cta);
      atomicMin(&g_moe_f8_prof[18], cta);
    }
}

// Consumer warpgroup cw (0, 1), thread ct: one item of kN - 15 .. kN rows, global steps g0 .. g0 + KT - 1.
template <bool kGateUp, int kN, bool kProf = false>
__device__ __forceinline__ void moe_f8_consume(const MoeGemmParams& p, uint8_t* smem, int cw, int ct,
                                               const MoeF8Item& it, int g0, int li, unsigned long long (&pr)[5]) {
  [[maybe_unused]] unsigned long long c0 = 0;
  [[maybe_unused]] int pk = 0;  // kProf: the current K step
  auto tick = [&](int i) {
    if constexpr (kProf) {
      const unsigned long long c = clock64();
      pr[i] += c - c0;
      if (i == 0 && pk < 6) pr[4] += c - c0;
      c0 = c;
    }
  };
  if constexpr (kProf) c0 = clock64();
  using Sm = MoeF8Smem;
  constexpr int S = kMoeF8Stages, kR = kN / 2;
  const int KT = p.K / kMoeF8BK;
  const uint32_t full0 = moe_wg_smem_u32(smem + Sm::kBars), empty0 = full0 + 8 * S;
  const uint32_t w_base = moe_wg_smem_u32(smem + Sm::kW) + 64 * cw * 128;
  const uint32_t a_base = moe_wg_smem_u32(smem + Sm::kAct);
  const float* const sa_s = reinterpret_cast<const float*>(smem + Sm::kSa);
  const float* const ref_s = reinterpret_cast<const float*>(smem + Sm::kRef);
  const int warp = ct >> 5, lane = ct & 31;
  const int rl = 64 * cw + 16 * warp + (lane >> 2);  // accumulator rows rl, rl + 8
  const int cl = 2 * (lane & 3);                     // token columns 8 j + cl, + 1
  const bool tref = p.fp8_ref != nullptr;
  constexpr int W = kMoeF8CSlots;
  int ws = g0 % W;  // converted slot of step g0 + kt, as a counter
  float acc[kR], part[kR];
#pragma unroll
  for (int i = 0; i < kR; ++i) acc[i] = 0.0f;
  int s = g0 % S, ph = (g0 / S) & 1;  // stage and phase of step g0 + kt, as counters
  uint32_t tref_word = 0;  // fp8_stage: the item's tensor references from its first step's copy (no global load)
  for (int kt = 0; kt < KT; ++kt) {
    moe_wg_bar_wait(full0 + 8 * s, ph);
    if (tref && kt == 0) tref_word = reinterpret_cast<const uint32_t*>(smem + Sm::kTRef)[s];
    if constexpr (kProf) pk = kt;
    tick(0);
    moe_wg_fence();
#pragma unroll
    for (int k = 0; k < kMoeF8BK / 32; ++k)
      moe_f8_mma<kN>(part, moe_wg_desc(w_base + ws * Sm::kWStage + 32 * k),
                     moe_wg_desc(a_base + s * Sm::kActStage + 32 * k), k > 0);
    moe_wg_commit();
    moe_wg_wait<0>();
    moe_wg_fence_acc(part);
    tick(1);
    if (tref) {  // the rows' factors 2^(R - 133) are applied in the epilogue
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) {
        const float2 sa = *reinterpret_cast<const float2*>(sa_s + s * kMoeF8Slots + 8 * j + cl);
        acc[4 * j + 0] = fmaf(part[4 * j + 0], sa.x, acc[4 * j + 0]);
        acc[4 * j + 1] = fmaf(part[4 * j + 1], sa.y, acc[4 * j + 1]);
        acc[4 * j + 2] = fmaf(part[4 * j + 2], sa.x, acc[4 * j + 2]);
        acc[4 * j + 3] = fmaf(part[4 * j + 3], sa.y, acc[4 * j + 3]);
      }
    } else {
      const float r0 = ref_s[ws * kMoeF8Rows + rl], r1 = ref_s[ws * kMoeF8Rows + rl + 8];
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) {
        const float2 sa = *reinterpret_cast<const float2*>(sa_s + s * kMoeF8Slots + 8 * j + cl);
        acc[4 * j + 0] = fmaf(part[4 * j + 0], r0 * sa.x, acc[4 * j + 0]);
        acc[4 * j + 1] = fmaf(part[4 * j + 1], r0 * sa.y, acc[4 * j + 1]);
        acc[4 * j + 2] = fmaf(part[4 * j + 2], r1 * sa.x, acc[4 * j + 2]);
        acc[4 * j + 3] = fmaf(part[4 * j + 3], r1 * sa.y, acc[4 * j + 3]);
      }
    }
    __syncwarp();
    if (lane == 0) moe_wg_bar_arrive(empty0 + 8 * s);
    tick(2);
    if (++s == S) s = 0, ph ^= 1;
    if (++ws == W) ws = 0;
  }
  // Epilogue, moe_store's arithmetic: the tokens' routing weights (gate_up) / output rows (down) are loaded
  // first, all at once (a load per stored element, each behind the previous store, cost ~27 K cycles per item).
  float f0 = 1.0f, f1 = 1.0f;  // tensor references: rows rl, rl + 8 times 2^(R - 133)
  if (tref) {
    const uint32_t e = p.fp8_stage ? tref_word : __ldg(p.fp8_ref + it.expert);
    f0 = moe_f8_ref_factor(e & 0xFFu);
    f1 = moe_f8_ref_factor((kGateUp ? e >> 8 : e) & 0xFFu);
  }
  // Staged by the producers where K allows it (moe_f8_staged_rows), else from global memory.
  float tw[kN / 8][2];
  int orow[kN / 8][2];
  const uint32_t* const rows_s = reinterpret_cast<const uint32_t*>(smem + Sm::kRows) + (li & 1) * kMoeF8Slots;
  if (moe_f8_staged_rows(p)) {
#pragma unroll
    for (int j = 0; j < kN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const uint32_t v = rows_s[8 * j + cl + e];
        if constexpr (kGateUp) tw[j][e] = __uint_as_float(v);
        else orow[j][e] = static_cast<int>(v);
      }
  } else {
#pragma unroll
    for (int j = 0; j < kN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int i = it.row0 + min(8 * j + cl + e, it.rows - 1);
        const int slot = p.perm ? __ldg(p.perm + i) : i;
        if constexpr (kGateUp) tw[j][e] = p.weight ? __ldg(p.weight + slot) : 1.0f;
        else orow[j][e] = slot;
      }
  }
  // The values first, in place and without branches, so that the elements' chains interleave (one branch per
  // element, with the division's slow path, kept them serial: ~10.7 K cycles per gate/up item, run 255), then
  // the stores of the tile's rows.
  const bool rnd = p.round_bf16 != 0;
#pragma unroll
  for (int j = 0; j < kN / 8; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float& v0 = acc[4 * j + e];
      float& v1 = acc[4 * j + 2 + e];
      v0 *= f0;
      v1 *= f1;
      if (rnd) {
        v0 = moe_round_bf16(v0);
        v1 = moe_round_bf16(v1);
      }
      if constexpr (kGateUp) {
        const float h = clamped_swiglu_fast(v0, v1, p.limit) * tw[j][e];
        v0 = rnd ? moe_round_bf16(h) : h;
      }
    }
  // bf16 outputs (out_bf16, with round_bf16: the values are bf16 already, so the narrowing is exact).
  __nv_bfloat16* const ob = p.out_bf16;
  if (ob && p.fp8_pair_stores) {
    // Two adjacent columns per 4-byte store: lanes l and l ^ 4 hold columns 2c and 2c + 1 (rl & 7 = lane >> 2) of
    // the same tokens; the even lane stores token e = 0's pair and the odd one token e = 1's, each taking the
    // other value from its partner (one shuffle per pair instead of a second 2-byte store).
    const bool even = ((lane >> 2) & 1) == 0;
    const int me = even ? 0 : 1;
#pragma unroll
    for (int j = 0; j < kN / 8; ++j) {
      const int tok = 8 * j + cl + me;
#pragma unroll
      for (int hc = 0; hc < (kGateUp ? 1 : 2); ++hc) {  // down: columns rl and rl + 8
        const float* const v = acc + 4 * j + 2 * hc;
        const float recv = __shfl_xor_sync(0xffffffffu, even ? v[1] : v[0], 4);
        if (tok >= it.rows) continue;
        const __nv_bfloat162 pair = even ? __floats2bfloat162_rn(v[0], recv) : __floats2bfloat162_rn(recv, v[1]);
        const int64_t o = kGateUp ? static_cast<int64_t>(it.row0 + tok) * p.N + it.n0 + 8 * (rl >> 4) + (rl & 7) - me
                                  : static_cast<int64_t>(even ? orow[j][0] : orow[j][1]) * p.N + it.n0 + rl + 8 * hc - me;
        *reinterpret_cast<__nv_bfloat162*>(ob + o) = pair;
      }
    }
    tick(3);
    return;
  }
#pragma unroll
  for (int j = 0; j < kN / 8; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int tok = 8 * j + cl + e;
      if (tok >= it.rows) continue;
      if constexpr (kGateUp) {
        const int64_t o = static_cast<int64_t>(it.row0 + tok) * p.N + it.n0 + 8 * (rl >> 4) + (rl & 7);
        if (ob) ob[o] = __float2bfloat16_rn(acc[4 * j + e]);
        else p.out[o] = acc[4 * j + e];
      } else {
        const int64_t o = static_cast<int64_t>(orow[j][e]) * p.N + it.n0 + rl;
        if (ob) {
          ob[o] = __float2bfloat16_rn(acc[4 * j + e]);
          ob[o + 8] = __float2bfloat16_rn(acc[4 * j + 2 + e]);
        } else {
          p.out[o] = acc[4 * j + e];
          p.out[o + 8] = acc[4 * j + 2 + e];
        }
      }
    }
  tick(3);
}

// Persistent: CTA b runs items b, b + gridDim.x, ... (grid: at most one CTA per SM).
template <bool kGateUp, bool kProf = false>
__global__ void __launch_bounds__(kMoeF8Threads, 1) moe_gemm_fp8_kernel(const __grid_constant__ MoeGemmParams p) {
  grid_dependency_sync();
  const int my_items = moe_f8_my_items<kGateUp>(p);
  if (my_items == 0) return;
  const int tid = threadIdx.x, wg = tid >> 7;
  extern __shared__ uint8_t moe_f8_dyn_smem[];
  uint8_t* smem = moe_wg_align1024(moe_f8_dyn_smem);
  if (tid == 0) {
    const uint32_t bars = moe_wg_smem_u32(smem + MoeF8Smem::kBars);
    for (int s = 0; s < kMoeF8Stages; ++s) {
      moe_wg_bar_init(bars + 8 * s, 256);                      // full: every producer thread
      moe_wg_bar_init(bars + 8 * (kMoeF8Stages + s), 8);       // empty: lane 0 of every consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (wg < 2) {
    moe_wg_regs_dec<kMoeF8ProdRegs>();
    moe_f8_produce<kGateUp, kProf>(p, smem, tid);
    return;
  }
  moe_wg_regs_inc<kMoeF8ConsRegs>();
  const int cw = wg - 2, ct = tid & 127, KT = p.K / kMoeF8BK;
  unsigned long long pr[5] = {0, 0, 0, 0, 0};
  for (int li = 0; li < my_items; ++li) {
    const MoeF8Item it = moe_f8_item<kGateUp>(p, static_cast<int>(blockIdx.x) + li * static_cast<int>(gridDim.x));
    const int g0 = li * KT;
    switch ((it.rows + 15) / 16) {
      case 1: moe_f8_consume<kGateUp, 16, kProf>(p, smem, cw, ct, it, g0, li, pr); break;
      case 2: moe_f8_consume<kGateUp, 32, kProf>(p, smem, cw, ct, it, g0, li, pr); break;
      case 3: moe_f8_consume<kGateUp, 48, kProf>(p, smem, cw, ct, it, g0, li, pr); break;
      case 4: moe_f8_consume<kGateUp, 64, kProf>(p, smem, cw, ct, it, g0, li, pr); break;
      case 5: moe_f8_consume<kGateUp, 80, kProf>(p, smem, cw, ct, it, g0, li, pr); break;
      case 6: moe_f8_consume<kGateUp, 96, kProf>(p, smem, cw, ct, it, g0, li, pr); break;
      case 7: moe_f8_consume<kGateUp, 112, kProf>(p, smem, cw, ct, it, g0, li, pr); break;
      default: moe_f8_consume<kGateUp, 128, kProf>(p, smem, cw, ct, it, g0, li, pr); break;
    }
  }
  if constexpr (kProf)
    if (ct == 0 && cw == 0) {
      for (int i = 0; i < 4; ++i) atomicAdd(&g_moe_f8_prof[4 + i], pr[i]);
      atomicAdd(&g_moe_f8_prof[9], static_cast<unsigned long long>(my_items));
      atomicAdd(&g_moe_f8_prof[11], pr[4]);
    } else if (ct == 0 && cw == 1) {
      for (int i = 0; i < 4; ++i) atomicAdd(&g_moe_f8_prof[12 + i], pr[i]);
    }
}

}  // namespace dsv4::cuda
