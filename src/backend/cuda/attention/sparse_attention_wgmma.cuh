// sparse_attention_wgmma_kernel: the wide (64-head, dim 512) sparse attention of sparse_attention.cuh on Hopper
// wgmma. Why a second wide kernel: the mma.sync one runs at ~55-60 TFLOP/s (runs 121-122: Flash decode B=64
// 95 us, B=256 409 us against FlashMLA's 46 / 91): per 32-key tile its 16 warps pass four block barriers, stage
// S and P through shared memory and issue ~100 ldmatrix + mma.sync each. Here two warpgroups run the tile's
// products as a handful of asynchronous wgmmas and keep S, P and O in registers.
// Layout: one CTA of two warpgroups (256 threads, one CTA per SM) per (query, 64-head group, key split), key tiles
// of 32 rows. Shared memory (1024-byte aligned, 128-byte swizzle of wgmma: 16-byte chunk c of row r at
// chunk c ^ (r & 7)): q as bf16 (A, 64 heads x 512, K-major: 8 blocks of 64 rows x 128 B), three bf16 key tiles
// (8 blocks of 32 rows x 128 B each), kStages raw slots of 32 x 592 B for the Fp8Kv rows' bytes, and a ring of
// the tiles' key pointers (222 KB). One key tile is both operands: B of S = Q·Kᵀ read K-major (rows = keys) and
// B of O = P·V read MN-major (the same bytes: 64-value chunks of a key along N, 8-key groups 1024 B apart along K).
// Per tile i (every thread; both warpgroups):
//   1. tile i + kStages - 1's Fp8Kv rows into the slot tile i - 1 used (a row lands at its address's phase): per
//      row one 576-byte cp.async.bulk on the slot's mbarrier and one 8-byte cp.async, four rows per warp
//      (copy_raw_rows_bulk; switch attn_bulk off: 37 cp.asyncs per row over all threads); the rows' pointers come
//      from a ring in shared memory that warp 0 fills an iteration ahead (with a flag: every row a valid Fp8Kv row);
//   2. O += P·V of tile i - 1 (two register-A wgmma m64n256k16, this warpgroup's 256 columns, the key tile read
//      MN-major as V) and S = Q·Kᵀ of tile i (32 wgmma m64n32k16; each warpgroup computes all of S, so the two
//      need no exchange before the softmax), one commit group, not waited;
//   3. wait for tile i + 1's raw bytes (cp.async group and mbarrier phase), block barrier (every wgmma of tile
//      i - 2 done: its key buffer is free), then tile i + 1 converted into the third key buffer while the wgmmas
//      run: full Fp8Kv tiles branch-free (fp8_unit_bf16), others per row (Fp8Kv units, f32 rows straight from
//      global memory with every load issued first, rows past the split zero); a thread converts units
//      u = 32 (warp & 1) + lane of rows 4k + warp / 2;
//   4. wait for the wgmmas; the online softmax in registers in log2 units (max over the quad holding a row,
//      ex2.approx, unrounded exponentials summed per thread and over the quad at the end, P rounded to bf16 as
//      the A fragments of P·V), O rescaled when a row's max moved; a block barrier publishes tile i + 1.
// Same arithmetic as the mma.sync kernels up to the summation order and the exponential's last bits (bf16 q and
// keys, exact products, f32 sums in the tensor core's order, max over real keys, the sink in the denominator only);
// split-K partials go to the combine kernels. Needs dim 512, n_heads % 64 == 0, and Fp8Kv rows (if any) with 64
// RoPE values (584 B); the launcher checks. Measured (docs/perf.md, runs 125-132): kernel-only B=1 14.7 us (20
// splits, + 5.6 us combine), B=64 50.3 us (+ 9.9), B=256 189 us, against 26.3 / 75.6 / 275 for the mma.sync
// kernels; latency-bound (two warps per scheduler, two barriers per tile), not tensor-bound. With the bulk
// copies (run 142, kernel-only): 13.3 / 48.7 / 181.3 us against 14.1 / 51.4 / 190.1 with the cp.asyncs. Tried
// and slower (docs/perf.md, runs 140-142): the last split merging 2 splits in the kernel, S split over K between
// the warpgroups. A warp-specialized form (a converting producer warpgroup, mbarrier hand-off) was slower:
// 16.1 / 57.3 / 203 us (runs 133-134, docs/perf.md, bench/results/h200_r134_attn_ws_experiment.patch).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention/kv_fp8.cuh"
#include "backend/cuda/attention/params.h"
#include "backend/cuda/attention/plan.h"
#include "backend/cuda/attention/sparse_attention.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe_gemm_wgmma.cuh"  // wgmma, descriptor, fence and cp.async helpers (moe_*)
#include "core/row_blocks.h"

namespace dsv4::cuda {
namespace attn_wg_detail {

inline constexpr int kH = kAttnWideHeads, kD = kAttnWideDim, kT = kAttnWgKeyTile, kThreads = kAttnWgThreads;
inline constexpr int kStages = kAttnWgStages;  // raw slots: tiles i + 1 .. i + kStages - 1 in flight
inline constexpr int kRope = attn_detail::kKvRope, kNope = kD - kRope;  // the engine's Fp8Kv layout at dim 512
inline constexpr int kRawRow = static_cast<int>(fp8kv_row_bytes(kD, kRope));  // 584 B
inline constexpr int kRawPitch = kRawRow + 8;          // raw slot row stride (16-aligned; rows start at + 0 or 8)
inline constexpr int kRawCopies = kRawRow / 16 + 1;    // cp.async per raw row: 36 of 16 bytes, one of 8
inline constexpr int kPtrSlots = kStages + 1;          // key pointer ring: tiles i + 1 .. i + kStages
inline constexpr int kUnits = kD / 8;                  // 8-value units per row (56 code units, 8 RoPE units)
inline constexpr int kQBlock = kH * 128, kKBlock = kT * 128;  // bytes of one 64-wide K block
inline constexpr int kQBytes = 8 * kQBlock, kKBytes = 8 * kKBlock, kRawBytes = kT * kRawPitch;
inline constexpr int kKBufs = kAttnWgKeyBufs;  // key tiles: i - 1 (P·V), i (S), i + 1 (being converted)
inline constexpr int kOffK = kQBytes, kOffRaw = kOffK + kKBufs * kKBytes;
inline constexpr int kOffPtr = kOffRaw + kStages * kRawBytes;
inline constexpr int kSmemUsed = kOffPtr + kPtrSlots * kT * 8;
static_assert(kSmemUsed + 1024 <= 227 * 1024, "shared memory of one CTA per SM (with 1024 B alignment slack)");
static_assert(kD == 512 && kH == 64 && kT == 32 && kThreads == 256, "roles assume 64 heads x 512, 32-key tiles");
static_assert(kRawRow % 16 == 8 && kRawPitch % 16 == 0 && kOffRaw % 1024 == 0, "aligned regions");

// Byte offset of 16-byte chunk u (values 8u .. 8u + 7) of row r in a swizzled operand of `block` bytes per
// 64-wide K block.
__device__ __forceinline__ uint32_t swz(int r, int u, int block) {
  return uint32_t((u >> 3) * block + r * 128 + (((u & 7) ^ (r & 7)) << 4));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
__device__ __forceinline__ uint4 bf16x8(float4 a, float4 b) {
  return make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(b.x, b.y), pack_bf16(b.z, b.w));
}

// Unit of 8 e4m3 codes (w) with e8m0 scale byte sb as 8 bf16 values, exact. The codes' bits are placed in bf16
// fields by byte permutes (sign to bit 15, exponent and mantissa << 4: the bf16 value is the code's value times
// 2^-120, subnormal codes included), then one bf16x2 multiply by 2^(sb - 7) per pair (exact: a power of two, the
// product representable). Codes with NaN (S.1111.111) or sb > 134 (the factor past the bf16 range) take the
// f32 decode of kv_fp8.cuh. Integer ALU work instead of the conversion unit's e4m3 -> f16 -> f32 -> bf16 chain.
__device__ __forceinline__ uint4 fp8_unit_bf16(uint2 w, uint32_t sb) {
  const uint32_t t0 = w.x & 0x7F7F7F7Fu, t1 = w.y & 0x7F7F7F7Fu;
  if (((((t0 + 0x01010101u) | (t1 + 0x01010101u)) & 0x80808080u) != 0u) | (sb > 134u)) {
    const float sc = kv_fp8_scale(sb);
    return bf16x8(kv_fp8_decode4(w.x, sc), kv_fp8_decode4(w.y, sc));
  }
  const uint32_t fb = (sb + 120u) * 0x00800080u;  // 2^(sb - 7) in both halves
  const __nv_bfloat162 f = *reinterpret_cast<const __nv_bfloat162*>(&fb);
  auto pair = [&](uint32_t t, uint32_t x, uint32_t sel_t, uint32_t sel_s) {
    const uint32_t b = (__byte_perm(t, 0u, sel_t) << 4) | (__byte_perm(x, 0u, sel_s) & 0x80008000u);
    const __nv_bfloat162 v = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&b), f);
    return *reinterpret_cast<const uint32_t*>(&v);
  };
  return make_uint4(pair(t0, w.x, 0x4140u, 0x1404u), pair(t0, w.x, 0x4342u, 0x3424u),
                    pair(t1, w.y, 0x4140u, 0x1404u), pair(t1, w.y, 0x4342u, 0x3424u));
}

// Unit u (8 values) of the Fp8Kv row at `row` (raw slot memory) as 8 bf16 values: codes times scale for the
// nope units, the bf16 RoPE values as stored for the last kRope / 8.
__device__ __forceinline__ uint4 raw_unit_bf16(const uint8_t* row, int u) {
  if (u < kNope / 8)
    return fp8_unit_bf16(*reinterpret_cast<const uint2*>(row + 8 * u), row[kNope + 2 * kRope + u / 8]);
  const uint2 a = *reinterpret_cast<const uint2*>(row + kNope + 16 * (u - kNope / 8));
  const uint2 b = *reinterpret_cast<const uint2*>(row + kNope + 16 * (u - kNope / 8) + 8);
  return make_uint4(a.x, a.y, b.x, b.y);
}

// 2^x (ex2.approx: relative error ~2^-22; -inf -> 0).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

template <int N>
__device__ __forceinline__ void fence_regs(uint32_t (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(r[i])::"memory");
}

// MN-major descriptor of the key tile as V (B of P·V): 128-byte swizzle, 64-value chunks along N kKBlock bytes
// apart (leading byte offset), 8-key groups along K 1024 bytes apart (stride byte offset).
__device__ __forceinline__ uint64_t desc_v(uint32_t addr) {
  return static_cast<uint64_t>((addr >> 4) & 0x3FFFu) | (uint64_t{kKBlock >> 4} << 16) |
         (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}

// s[64 x 32] (+)= A[64 x 16] · B[32 x 16]ᵀ, both K-major in shared memory; thread (warp w, lane l) holds
// s[4j + v] = (row 16w + l/4 + 8(v >> 1), key 8j + 2(l % 4) + (v & 1)), j < 4.
__device__ __forceinline__ void mma_s(float (&d)[16], uint64_t da, uint64_t db, bool accumulate) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, 0, 0;\n"
      "}\n"
      : DSV4_WG_ACC8(d, 0), DSV4_WG_ACC8(d, 8)
      : "l"(da), "l"(db), "r"(accumulate ? 1 : 0));
}

// o[64 x 256] += P[64 x 16] · V[16 x 256]: P from registers (the m16n8k16 A fragment per warp), V MN-major in
// shared memory; o[4j + v] = (row 16w + l/4 + 8(v >> 1), column 8j + 2(l % 4) + (v & 1)), j < 32.
__device__ __forceinline__ void mma_pv(float (&d)[128], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %133, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "
      "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, "
      "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, "
      "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, "
      "%82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, "
      "%102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, "
      "%119, %120, %121, %122, %123, %124, %125, %126, %127}, "
      "{%128, %129, %130, %131}, %132, p, 1, 1, 1;\n"
      "}\n"
      : DSV4_WG_ACC128(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}

// Key pointer kp of row `lane` of tile j into ring slot j % kPtrSlots, and the slot's "every row a valid Fp8Kv
// row" flag (one warp, all lanes).
__device__ __forceinline__ void put_tile_ptrs(const float** ptr_s, bool* all_fp8, int j, const float* kp, int lane) {
  ptr_s[(j % kPtrSlots) * kT + lane] = kp;
  const bool all = __all_sync(0xffffffffu, kp != nullptr && kv_fp8_tagged(kp));
  if (lane == 0) all_fp8[j % kPtrSlots] = all;
}

// cp.async of a tile's Fp8Kv rows (pointers ptrs; f32 rows and nullptr skipped) into a raw slot by kN threads
// (this one: t). Row r lands at r * kRawPitch + (its address & 8), so all but one of its copies are 16-byte ones.
// (An L2 bulk prefetch of the tile's f32 rows here measured neutral: run 135, kernel-only B=1 / 64 / 256 14.88 /
// 51.12 / 190.8 us against 14.91 / 50.75 / 190.99 without.)
template <int kN>
__device__ __forceinline__ void copy_raw_rows(uint8_t* slot, const float* const* ptrs, int t) {
#pragma unroll
  for (int k = 0; k < (kT * kRawCopies + kN - 1) / kN; ++k) {
    const int i = k * kN + t;
    const int r = i / kRawCopies, c = i - r * kRawCopies;
    const float* kp = i < kT * kRawCopies ? ptrs[r] : nullptr;
    if (kp != nullptr && kv_fp8_tagged(kp)) {
      const uint8_t* src = kv_fp8_row(kp);
      const int ph = static_cast<int>(reinterpret_cast<uintptr_t>(src) & 8u);
      uint8_t* dst = slot + r * kRawPitch + ph;
      if (ph == 0 ? c == kRawCopies - 1 : c == 0) {
        attn_detail::cp_async8(dst + (ph == 0 ? kRawRow - 8 : 0), src + (ph == 0 ? kRawRow - 8 : 0));
      } else {
        const int off = 16 * c - ph;  // phase 8: copies 1.. start at byte 8
        attn_detail::cp_async16(dst + off, src + off);
      }
    }
  }
}

// Bulk form of copy_raw_rows (kBulk): rows 4w .. 4w + 3 by lanes 0-3 of warp w. cp.async.bulk needs 16-byte
// aligned addresses and sizes, and a 584-byte row starts at phase 0 or 8 of 16, so a row is one 576-byte bulk
// copy of its 16-aligned part (bytes 0 .. 575 at phase 0, 8 .. 583 at phase 8) plus one 8-byte cp.async of the
// rest; no byte outside the row is read (a neighbour row's bytes may be past its page or allocation). The bulk
// bytes complete on the slot's mbarrier `bar` (8 arrivals per phase: each warp's lane 0 with its rows' byte count
// before their copies, zero completing at once); the 8-byte copies are each warp's cp.async group of the tile.
// Replaces 37 cp.asyncs per row spread over 256 threads (runs 138-139: 1,000-1,800 cycles of issue per tile).
// Run 141: issued by warp 0 alone (32 rows), its copy issue took ~2,200 cycles per tile at B=256 (the others'
// ~450): a bulk copy's issue costs ~60 cycles, so the rows are spread over the warps.
inline constexpr int kBulkBytes = kRawRow - 8;  // 576
inline constexpr int kBulkWarps = kThreads / 32, kBulkRowsPerWarp = kT / kBulkWarps;
static_assert(kBulkBytes % 16 == 0 && kBulkRowsPerWarp * kBulkWarps == kT, "bulk part of a row; rows per warp");
__device__ __forceinline__ void bar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
// kRows rows per warp (the three-warpgroup kernel: 8 over its producer's 4 warps); kArriveRests: every thread then
// arrives on `bar` once its cp.asyncs (the 8-byte rests) complete (cp.async.mbarrier.arrive.noinc: the barrier
// counts those arrivals too), so the slot's phase ends when all its bytes landed, without a cp.async wait.
template <int kRows = kBulkRowsPerWarp, bool kArriveRests = false>
__device__ __forceinline__ void copy_raw_rows_bulk(uint8_t* slot, const float* const* ptrs, uint32_t bar, int warp,
                                                   int lane) {
  const int r = kRows * warp + lane;
  const float* kp = lane < kRows ? ptrs[r] : nullptr;
  const bool fp8 = kp != nullptr && kv_fp8_tagged(kp);
  const unsigned rows = __ballot_sync(0xffffffffu, fp8);
  if (lane == 0) bar_arrive_expect_tx(bar, uint32_t(__popc(rows)) * kBulkBytes);
  __syncwarp();
  if (fp8) {
    const uint8_t* src = kv_fp8_row(kp);
    const int ph = static_cast<int>(reinterpret_cast<uintptr_t>(src) & 8u);
    uint8_t* dst = slot + r * kRawPitch + ph;  // the row's bytes at dst .. dst + 583
    const int b0 = ph == 0 ? 0 : 8, c0 = ph == 0 ? kBulkBytes : 0;  // bulk part, 8-byte rest
    bulk_copy_g2s(moe_wg_smem_u32(dst + b0), src + b0, kBulkBytes, bar);
    attn_detail::cp_async8(dst + c0, src + c0);
  }
  if constexpr (kArriveRests)
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

// q (64 f32 head rows of kD at qrow), unit u of heads 4k + r_first (256 threads: u = 32 (warp & 1) + lane,
// r_first = warp / 2): all 32 loads issued at once after the key pointers, before the first copies' issue (O's
// registers are not live yet), and stored as the bf16 A operand at qs after it. Before (run 173, B=1 phase
// profile): two batches of 16 loads after the copies' issue, ~3,900 cycles of a ~8,500-cycle prologue; run 175:
// ~3,500 of ~7,400 (with convert_fp8_tile for the prologue's tile), kernel 13.4 -> 13.1 us.
struct QUnits {
  float4 a[kH / 4], b[kH / 4];
};
// A CTA of hpc heads (SparseAttnParams::heads_per_cta: 16, 32 or 64) in the 64-row products: row R holds the
// CTA's head (R >> 4) · hpc/4 + (R & 15) when R & 15 < hpc/4, else q zeros and nothing stored (-1), so every warp's
// 16 rows hold hpc/4 real heads and every warp stores its share of the output. hpc = 64: row R is head R.
__device__ __forceinline__ int row_head(int row, int hpc) {
  const int per_warp = hpc >> 2;
  return (row & 15) < per_warp ? (row >> 4) * per_warp + (row & 15) : -1;
}
__device__ __forceinline__ void load_q_units(QUnits& q, const float* __restrict__ qrow, int u, int r_first,
                                             int hpc = kH) {
#pragma unroll
  for (int k = 0; k < kH / 4; ++k) {
    const int hh = row_head(4 * k + r_first, hpc);
    const float* src = qrow + hh * kD + 8 * u;
    q.a[k] = hh >= 0 ? __ldg(reinterpret_cast<const float4*>(src)) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    q.b[k] = hh >= 0 ? __ldg(reinterpret_cast<const float4*>(src + 4)) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
}
__device__ __forceinline__ void store_q_units(uint8_t* qs, const QUnits& q, int u, int r_first) {
#pragma unroll
  for (int k = 0; k < kH / 4; ++k)
    *reinterpret_cast<uint4*>(qs + swz(4 * k + r_first, u, kQBlock)) = bf16x8(q.a[k], q.b[k]);
}

// A key tile of Fp8Kv rows only, from its raw slot into the bf16 key buffer kt: unit u of rows 4k + r_first, the
// eight rows' shared loads (codes and scale, or the RoPE values) all issued before their decode and stores (run 170,
// three-warpgroup kernel: ~2,150 cycles per tile against ~2,950 row by row).
__device__ __forceinline__ void convert_fp8_tile(uint8_t* kt, const uint8_t* slot, const float* const* ptrs, int u,
                                                 int r_first) {
  int rows[kT / 4];  // byte offsets in the slot (32-bit: registers)
#pragma unroll
  for (int k = 0; k < kT / 4; ++k) {
    const int r = 4 * k + r_first;
    rows[k] = r * kRawPitch + static_cast<int>(reinterpret_cast<uintptr_t>(ptrs[r]) & 8u);
  }
  if (u < kNope / 8) {  // e4m3 codes x the unit's e8m0 scale
    uint2 w[kT / 4];
    uint32_t sb[kT / 4];
#pragma unroll
    for (int k = 0; k < kT / 4; ++k) {
      w[k] = *reinterpret_cast<const uint2*>(slot + rows[k] + 8 * u);
      sb[k] = slot[rows[k] + kNope + 2 * kRope + u / 8];
    }
#pragma unroll
    for (int k = 0; k < kT / 4; ++k)
      *reinterpret_cast<uint4*>(kt + swz(4 * k + r_first, u, kKBlock)) = fp8_unit_bf16(w[k], sb[k]);
  } else {  // the bf16 RoPE values as stored
    uint4 v[kT / 4];
#pragma unroll
    for (int k = 0; k < kT / 4; ++k) v[k] = raw_unit_bf16(slot + rows[k], u);
#pragma unroll
    for (int k = 0; k < kT / 4; ++k) *reinterpret_cast<uint4*>(kt + swz(4 * k + r_first, u, kKBlock)) = v[k];
  }
}

// Issues O += P·V of tile i - 1 (i > 0: this warpgroup's 256 columns; O rescaled and P rounded by tile_softmax of
// tile i - 1) and S = Q·Kᵀ of tile i (key buffers at k_addr), after a wgmma fence; the caller commits and waits.
__device__ __forceinline__ void tile_products(float (&o)[128], float (&s)[16], const uint32_t (&pa)[2][4],
                                              uint64_t dq, uint32_t k_addr, int i, int wg) {
  moe_wg_fence();
  if (i > 0) {
    const uint32_t kv = k_addr + ((i - 1) % kKBufs) * kKBytes + 4 * wg * kKBlock;
#pragma unroll
    for (int kk = 0; kk < 2; ++kk) mma_pv(o, pa[kk], desc_v(kv + kk * 2048));
  }
  const uint64_t dk = moe_wg_desc(k_addr + (i % kKBufs) * kKBytes);
#pragma unroll
  for (int st = 0; st < kD / 16; ++st) {  // descriptor + (byte offset >> 4): the 14-bit address field holds it
    const uint32_t off = 32u * uint32_t(st & 3);
    mma_s(s, dq + (((st >> 2) * kQBlock + off) >> 4), dk + (((st >> 2) * kKBlock + off) >> 4), st > 0);
  }
}

// O += P·V of the last tile nt - 1, waited.
__device__ __forceinline__ void last_products(float (&o)[128], const uint32_t (&pa)[2][4], uint32_t k_addr, int nt,
                                              int wg) {
  const uint32_t kv = k_addr + ((nt - 1) % kKBufs) * kKBytes + 4 * wg * kKBlock;
  moe_wg_fence();
#pragma unroll
  for (int kk = 0; kk < 2; ++kk) mma_pv(o, pa[kk], desc_v(kv + kk * 2048));
  moe_wg_commit();
  moe_wg_wait<0>();
  moe_wg_fence_acc(o);
}

// Online softmax of a tile's scores s (keys t0 .. t0 + 31; those from ke on masked) for rows 16 ww + g (r = 0) and
// + 8 (r = 1), in log2 units (z = s·scale·log2 e with sl2 = scale·log2 e; the running max m_run too): p = 2^(z - m)
// rounded to bf16 as the A fragments pa of P·V, l_run summed unrounded per thread; alpha: the rows' factors for O
// (rescale_o).
__device__ __forceinline__ void tile_softmax_p(float (&s)[16], uint32_t (&pa)[2][4], float (&m_run)[2],
                                               float (&l_run)[2], float (&alpha)[2], int t0, int ke, int qd,
                                               float sl2) {
  float mx[2] = {-INFINITY, -INFINITY};
  if (t0 + kT <= ke) {
#pragma unroll
    for (int v = 0; v < 16; ++v) {
      s[v] *= sl2;
      mx[(v >> 1) & 1] = fmaxf(mx[(v >> 1) & 1], s[v]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v) {
        const bool valid = t0 + 8 * j + 2 * qd + (v & 1) < ke;
        const float z = valid ? s[4 * j + v] * sl2 : -INFINITY;
        s[4 * j + v] = z;
        mx[v >> 1] = fmaxf(mx[v >> 1], z);
      }
  }
  float base[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    const float m_new = fmaxf(m_run[r], mx[r]);
    base[r] = m_new == -INFINITY ? 0.0f : m_new;
    alpha[r] = exp2_approx(m_run[r] - base[r]);
    m_run[r] = m_new;
    l_run[r] *= alpha[r];
  }
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const float pe = exp2_approx(s[4 * j + v] - base[v >> 1]);
      l_run[v >> 1] += pe;
      s[4 * j + v] = pe;
    }
#pragma unroll
  for (int kk = 0; kk < 2; ++kk) {
    pa[kk][0] = pack_bf16(s[8 * kk + 0], s[8 * kk + 1]);
    pa[kk][1] = pack_bf16(s[8 * kk + 2], s[8 * kk + 3]);
    pa[kk][2] = pack_bf16(s[8 * kk + 4], s[8 * kk + 5]);
    pa[kk][3] = pack_bf16(s[8 * kk + 6], s[8 * kk + 7]);
  }
}

// O's rows 16 ww + g (alpha[0]) and + 8 (alpha[1]) scaled when a row's max moved (x 1 is exact: skipped).
__device__ __forceinline__ void rescale_o(float (&o)[128], const float (&alpha)[2]) {
  if (alpha[0] != 1.0f || alpha[1] != 1.0f) {
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      o[4 * j + 0] *= alpha[0];
      o[4 * j + 1] *= alpha[0];
      o[4 * j + 2] *= alpha[1];
      o[4 * j + 3] *= alpha[1];
    }
  }
}

// tile_softmax_p, then O rescaled by the rows' factors.
// rescale: false on a CTA's first tile (KernelPaths::attn_rescale_first off), where O is still all +0 and its
// factors are 0 (the running max was -inf), so O x alpha = +0 = O: skipping the 128 multiplies changes no bit. At
// B=1 (one tile per CTA) that straight-line code was fetched for nothing (H200 run 241: instruction-fetch stalls
// are 104 of the 152 samples between the softmax and the P·V wait).
__device__ __forceinline__ void tile_softmax(float (&s)[16], uint32_t (&pa)[2][4], float (&o)[128],
                                             float (&m_run)[2], float (&l_run)[2], int t0, int ke, int qd,
                                             float sl2, bool rescale = true) {
  float alpha[2];
  tile_softmax_p(s, pa, m_run, l_run, alpha, t0, ke, qd, sl2);
  if (rescale) rescale_o(o, alpha);
}

// Rows 16 ww + g + 8r, columns 256 wg + 8j + 2 qd (+1) of O: the output (one split) or the split's partial O and
// (m, l) in natural units for the combine kernels; a CTA of hpc < 64 heads stores its real rows (row_head).
__device__ __forceinline__ void tile_store(const SparseAttnParams& p, const float (&o)[128], const float (&m_run)[2],
                                           const float (&l_run)[2], int qi, int h0, int split, int wg, int ww,
                                           int lane, int hpc = kH) {
  const int g = lane >> 2, qd = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = l_run[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float m = m_run[r] * 0.6931471805599453f;  // natural units (the combine kernel's, the sink's)
    const int hh = row_head(16 * ww + g + 8 * r, hpc), h = h0 + hh;
    if (hh < 0) continue;
    const int64_t row = int64_t(qi) * p.n_heads + h;
    const int c0 = 256 * wg + 2 * qd;
    if (p.n_split == 1) {
      const float den = attn_detail::sink_denominator(m, l, p.sink[h]);
      float* out = p.out + row * kD + c0;
#pragma unroll
      for (int j = 0; j < 32; ++j)
        *reinterpret_cast<float2*>(out + 8 * j) =
            make_float2(attn_detail::round_bf16(o[4 * j + 2 * r] / den),
                        attn_detail::round_bf16(o[4 * j + 2 * r + 1] / den));
    } else {
      float* out = p.part_o + (row * p.n_split + split) * kD + c0;
#pragma unroll
      for (int j = 0; j < 32; ++j)
        *reinterpret_cast<float2*>(out + 8 * j) = make_float2(o[4 * j + 2 * r], o[4 * j + 2 * r + 1]);
      if (wg == 0 && qd == 0) {
        const int64_t part = row * p.n_split + split;
        p.part_ml[part * 2] = m;
        p.part_ml[part * 2 + 1] = l;
      }
    }
  }
}

// A key tile with f32 rows (or none past the split) into the bf16 key buffer kt: unit u of rows 4k + r_first;
// Fp8Kv rows from the raw slot, f32 rows straight from global memory, kBatch rows' loads issued before their stores
// (the three-warpgroup kernel keeps O live beside them, so fewer).
template <int kBatch>
__device__ __forceinline__ void convert_mixed_tile(uint8_t* kt, const uint8_t* slot, const float* const* ptrs, int u,
                                                   int r_first) {
#pragma unroll
  for (int k0 = 0; k0 < kT / 4; k0 += kBatch) {
    float4 fa[kBatch], fb[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const float* kp = ptrs[4 * (k0 + k) + r_first];
      if (kp != nullptr && !kv_fp8_tagged(kp)) {
        fa[k] = __ldg(reinterpret_cast<const float4*>(kp + 8 * u));
        fb[k] = __ldg(reinterpret_cast<const float4*>(kp + 8 * u + 4));
      }
    }
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int r = 4 * (k0 + k) + r_first;
      const float* kp = ptrs[r];
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (kp != nullptr) {
        v = kv_fp8_tagged(kp) ? raw_unit_bf16(slot + r * kRawPitch + (reinterpret_cast<uintptr_t>(kp) & 8u), u)
                              : bf16x8(fa[k], fb[k]);
      }
      *reinterpret_cast<uint4*>(kt + swz(r, u, kKBlock)) = v;
    }
  }
}

// clock64 phase profile of the wgmma attention kernels (kProf; measurement only): thread 0 of each of kW
// warpgroups adds the cycles since its previous mark to a phase (s: shared [kW][kPhases], zeroed here); flush sums
// them over CTAs into g ([kW][kPhases], then the tile count and the CTA count).
template <bool kProf, int kW, int kPhases>
struct WgPhaseProf {
  unsigned long long* s;
  long long c = 0;
  __device__ explicit WgPhaseProf(unsigned long long* shared) : s(shared) {
    if constexpr (kProf) {
      if ((threadIdx.x & 127) == 0)
        for (int i = 0; i < kPhases; ++i) s[(threadIdx.x >> 7) * kPhases + i] = 0;
    }
  }
  __device__ void mark(int phase) {
    if constexpr (kProf) {
      if ((threadIdx.x & 127) == 0) {
        const long long now = clock64();
        if (phase >= 0) s[(threadIdx.x >> 7) * kPhases + phase] += static_cast<unsigned long long>(now - c);
        c = now;
      }
    }
  }
  __device__ void flush(unsigned long long* g, int nt) {
    if constexpr (kProf) {
      if ((threadIdx.x & 127) == 0) {
        const int w = threadIdx.x >> 7;
        for (int i = 0; i < kPhases; ++i) atomicAdd(&g[kPhases * w + i], s[kPhases * w + i]);
        if (w == 0) {
          atomicAdd(&g[kW * kPhases], static_cast<unsigned long long>(nt));
          atomicAdd(&g[kW * kPhases + 1], 1ull);
        }
      }
    }
  }
};

// Query qi's keys of split `split`: list positions [kb, ke) in 32-key tiles (nt of them), the list at klist.
struct SplitKeys {
  int kb = 0, ke = 0, nt = 0;
  const float* const* klist = nullptr;
  __device__ SplitKeys(const SparseAttnParams& p, int split, int qi) {
    const int list0 = p.key_offsets[qi], n = p.key_offsets[qi + 1] - list0;
    ke = n;
    if (p.n_split > 1) {
      kb = split * p.keys_per_split;
      ke = min(n, kb + p.keys_per_split);
    }
    nt = kb < ke ? (ke - kb + kT - 1) / kT : 0;
    klist = p.keys + list0;
  }
  // Key pointer of row `lane` of tile j (nullptr past the split or the last tile).
  __device__ const float* tile_ptr(int j, int lane) const {
    const int t = kb + j * kT + lane;
    return j < nt && t < ke ? klist[t] : nullptr;
  }
};

}  // namespace attn_wg_detail

// Dynamic shared memory of sparse_attention_wgmma_kernel (1024-byte alignment slack included).
inline constexpr size_t kAttnWgSmem = size_t(attn_wg_detail::kSmemUsed) + 1024;

// Profiling build (kProf, DSV4_ATTN_WG_PROF=1; measurement only): clock64 cycles per phase, summed over CTAs, for
// thread 0 of each warpgroup w: g_attn_wg_prof[kAttnWgProfPhases · w + phase], phases 0-6 per tile (raw copy
// issue, wgmma issue, raw wait + first barrier, conversion, wgmma wait, softmax, last barrier), 7 the prologue's
// first tile conversion and 8 the epilogue per CTA, 9-11 the prologue's pointers + block barrier, q, raw wait +
// barrier; then the tile count and the CTA count.
inline constexpr int kAttnWgProfPhases = 12;
inline constexpr int kAttnWgProfSlots = 2 * kAttnWgProfPhases + 2;
__device__ unsigned long long g_attn_wg_prof[kAttnWgProfSlots];

// kBulk (switch attn_bulk): Fp8Kv rows by copy_raw_rows_bulk (every warp, one mbarrier per raw slot), else by
// copy_raw_rows (every thread, cp.async groups only).
template <bool kProf = false, bool kBulk = true>
__global__ void __launch_bounds__(kAttnWgThreads, 1)
    sparse_attention_wgmma_kernel(const __grid_constant__ SparseAttnParams p) {
  __shared__ unsigned long long prof_s[2 * kAttnWgProfPhases];
  attn_wg_detail::WgPhaseProf<kProf, 2, kAttnWgProfPhases> prof(prof_s);
  auto mark = [&](int phase) { prof.mark(phase); };  // phase boundary: cycles since the previous mark
  mark(-1);
  grid_dependency_sync();
  using namespace attn_wg_detail;
  extern __shared__ __align__(16) unsigned char attn_wg_smem_raw[];
  uint8_t* smem = moe_wg_align1024(attn_wg_smem_raw);
  uint8_t* qs = smem;
  uint8_t* raw_s = smem + kOffRaw;

  // heads_per_cta (16, 32 or 64) real heads h0 .. of this CTA, spread over the 64 product rows (row_head)
  const int hpc = p.heads_per_cta, split = blockIdx.x, h0 = blockIdx.y * hpc, qi = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = tid >> 7, ww = warp & 3;  // warpgroup, warp within it
  const attn_wg_detail::SplitKeys sk(p, split, qi);
  const int kb = sk.kb, ke = sk.ke, nt = sk.nt;

  // Key pointers of tile j (one per row, nullptr past the split) in ring slot j % kPtrSlots, written by warp 0 an
  // iteration before their first use; the other loops read them from shared memory.
  const float** ptr_s = reinterpret_cast<const float**>(smem + kOffPtr);
  __shared__ bool all_fp8[kPtrSlots];  // ring slot's tile: every row a valid Fp8Kv row (the branch-free convert)
  auto put_ptrs = [&](int j, const float* kp) { put_tile_ptrs(ptr_s, all_fp8, j, kp, lane); };  // warp 0
  auto tile_ptr = [&](int j) { return sk.tile_ptr(j, lane); };
  // Fp8Kv rows of tile j into raw slot j % kStages (one commit group per call, empty past the last tile). Row r
  // lands at r * kRawPitch + (its address & 8), so all but one of its copies are 16-byte ones.
  __shared__ __align__(8) uint64_t raw_bar[kStages];  // kBulk: slot s's bulk bytes landed (phase per use)
  auto issue_raw = [&](int j) {
    if constexpr (kBulk) {
      if (j < nt)
        copy_raw_rows_bulk(raw_s + (j % kStages) * kRawBytes, ptr_s + (j % kPtrSlots) * kT,
                           moe_wg_smem_u32(&raw_bar[j % kStages]), warp, lane);
    } else if (j < nt) {
      copy_raw_rows<kThreads>(raw_s + (j % kStages) * kRawBytes, ptr_s + (j % kPtrSlots) * kT, tid);
    }
    attn_detail::cp_async_commit();
  };
  // Tile j's raw bytes landed (with the caller's cp.async wait and block barrier after it): its bulk copies.
  auto wait_raw = [&](int j) {
    if constexpr (kBulk) moe_wg_bar_wait(moe_wg_smem_u32(&raw_bar[j % kStages]), uint32_t(j / kStages) & 1u);
  };
  // Tile j (raw slot landed) -> bf16 key buffer j % kKBufs. Thread: unit u of rows 4k + warp / 2; the f32 rows'
  // loads are all issued before the first store.
  const int u = 32 * (warp & 1) + lane, r_first = warp >> 1;
  // first: the prologue's tile 0, whose Fp8Kv rows are converted loads first (convert_fp8_tile); in the loop, beside
  // O's registers, that form spills (ptxas), so the rows go one by one there.
  auto convert = [&](int j, bool first) {
    uint8_t* kt = smem + kOffK + (j % kKBufs) * kKBytes;
    const uint8_t* slot = raw_s + (j % kStages) * kRawBytes;
    const float* const* ptrs = ptr_s + (j % kPtrSlots) * kT;
    if (all_fp8[j % kPtrSlots]) {  // branch-free: unit u of each row from the raw slot
      if (first) {
        convert_fp8_tile(kt, slot, ptrs, u, r_first);
        return;
      }
#pragma unroll
      for (int k = 0; k < kT / 4; ++k) {
        const int r = 4 * k + r_first;
        const uint8_t* row = slot + r * kRawPitch + (reinterpret_cast<uintptr_t>(ptrs[r]) & 8u);
        *reinterpret_cast<uint4*>(kt + swz(r, u, kKBlock)) = raw_unit_bf16(row, u);
      }
      return;
    }
    convert_mixed_tile<kT / 4>(kt, slot, ptrs, u, r_first);
  };

  // Pointers of tiles 0 .. kStages - 1, and tile kStages's in warp 0's register (stored at the end of iteration 0).
  const float* next_ptr = nullptr;
  if (warp == 0) {
#pragma unroll
    for (int j = 0; j < kStages; ++j) put_ptrs(j, tile_ptr(j));
    next_ptr = tile_ptr(kStages);
  }
  if constexpr (kBulk) {
    if (tid == 0) {
      for (int st = 0; st < kStages; ++st) moe_wg_bar_init(moe_wg_smem_u32(&raw_bar[st]), kBulkWarps);
      asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
  }
  __syncthreads();
  mark(9);
  QUnits qu;  // q's loads before the first copies' issue
  load_q_units(qu, p.q_rows[qi] + int64_t(h0) * kD, u, r_first, hpc);
#pragma unroll
  for (int j = 0; j < kStages - 1; ++j) issue_raw(j);
  // q (f32 rows h0.., loaded at the start) -> bf16 A operand: unit u of heads 4k + warp / 2.
  store_q_units(qs, qu, u, r_first);
  mark(10);
  moe_cp_async_wait<kStages - 2>();
  if (nt > 0) wait_raw(0);
  __syncthreads();
  mark(11);
  if (nt > 0) convert(0, true);
  moe_wg_fence_async_smem();
  __syncthreads();

  const uint32_t k_addr = moe_wg_smem_u32(smem + kOffK);
  const uint64_t dq = moe_wg_desc(moe_wg_smem_u32(qs));
  const int qd = lane & 3;
  float o[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.0f;
  float s[16];
  uint32_t pa[2][4];
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  const float sl2 = p.scale * 1.4426950408889634f;  // scale · log2 e
#pragma unroll
  for (int i = 0; i < 2; ++i) pa[i][0] = pa[i][1] = pa[i][2] = pa[i][3] = 0u;

  mark(7);
  for (int i = 0; i < nt; ++i) {
    issue_raw(i + kStages - 1);
    mark(0);
    tile_products(o, s, pa, dq, k_addr, i, wg);
    moe_wg_commit();
    mark(1);
    moe_cp_async_wait<kStages - 2>();
    if (i + 1 < nt) wait_raw(i + 1);
    __syncthreads();  // tile i + 1's raw bytes landed; key buffer (i + 1) % 3 (tile i - 2) read by every wgmma
    mark(2);
    if (i + 1 < nt) convert(i + 1, false);
    moe_wg_fence_async_smem();
    mark(3);
    moe_wg_wait<0>();
    moe_wg_fence_acc(s);
    moe_wg_fence_acc(o);
    fence_regs(pa[0]);
    fence_regs(pa[1]);
    mark(4);

    tile_softmax(s, pa, o, m_run, l_run, kb + i * kT, ke, qd, sl2, i > 0 || p.rescale_first);
    if (warp == 0) {  // pointers of tile i + kStages (first read by issue_raw in iteration i + 1)
      put_ptrs(i + kStages, next_ptr);
      next_ptr = tile_ptr(i + kStages + 1);
    }
    mark(5);
    __syncthreads();  // tile i + 1 converted (and fenced) by every thread; the new pointers visible
    mark(6);
  }
  if (nt > 0) last_products(o, pa, k_addr, nt, wg);
  tile_store(p, o, m_run, l_run, qi, h0, split, wg, ww, lane, hpc);
  mark(8);
  prof.flush(g_attn_wg_prof, nt);
}

}  // namespace dsv4::cuda
