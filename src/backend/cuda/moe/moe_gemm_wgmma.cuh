// Hopper wgmma version of the prefill grouped expert GEMM (MoeGemmPath::MmaPrefill): the same MoeGemmParams,
// moe_align tile list (tiles of at most kMoeWgBM = moe_gemm_bm(MmaPrefill) = 128 slots of one expert) and
// epilogue (moe_store) as moe_gemm_mma_kernel (moe_gemm.cuh states the operand contract), so its results equal
// that kernel's up to the f32 summation order.
// moe_gemm_wgmma_kernel<kGateUp, kFmt, kVariant>: CTA tile = one moe_align tile (128 slots) x 256 B rows, K steps
// of 64.
//   B rows are w1[n0, n0 + 128) then w3[n0, n0 + 128) for gate_up (g and u of a column land in one thread), or
//   w2[n0, n0 + 256) for down. grid: x = N / moe_wgmma_bn(gate_up), y = tile capacity (CTAs past n_tiles exit).
//   384 threads, one CTA per SM, three warpgroups:
//   * producer (warpgroup 0): cp.asyncs the gathered A rows (bf16, exact FP8 fake-quant values) and the raw
//     weight bytes (MXFP4 nibbles / FP8 codes) two K steps ahead into a kMoeWgStages ring, coalesced: a warp
//     instruction copies whole rows (A: 4 rows x 128 B; raw: 16 rows x 32 B MXFP4 / 8 rows x 64 B FP8), so a K
//     step touches ~384 (MXFP4) 128-byte lines instead of ~1536 with one row per thread (run 52: 7.1 ms at Flash
//     T=4096, independent of the tile's rows, ~2 us per K step against ~0.7 us of wgmma). A rows past the tile's
//     rows are not loaded (their stale shared bytes only feed accumulator rows that are never stored). After its
//     copies of step kt landed, a producer barrier (bar.sync 1, 128); then thread t expands raw B rows t and
//     t + 128 of the step to bf16 (code x e8m0 scale through bf16 multiplies: exact, subnormals kept) into a
//     two-slot B buffer, fences the async proxy (its B rows and its own completed A copies) and arrives on
//     full[s]. The e8m0 scales of the CTA's 256 B rows for the whole K are copied into shared memory once, at CTA
//     start (moe_wg_load_scales: coalesced cp.async, overlapping the perm read and steps 0-1 of A / raw), so no
//     synchronous global load remains in the K loop (a per-step register prefetch of them waited on HBM latency
//     every step: ncu run 48, 12.3 of 15.9 stall cycles per instruction on L1TEX scoreboards).
//   * consumers (warpgroups 1, 2): rows [0, 64) and [64, 128) of the tile; per K step four wgmma m64n256k16,
//     both operands through shared-memory descriptors, f32 accumulators in 128 registers per thread; step kt
//     is issued, then step kt - 1 retired (wait_group 1) and released (empty[s]). A consumer whose 64 rows all
//     lie past the tile's rows skips its wgmmas (it still releases the stages).
//   Shared memory (1024-byte aligned base): A [kMoeWgStages][128 rows][128 B] and B [2][256 rows][128 B], both
//   K-major with the 128-byte swizzle of wgmma / TMA (16-byte chunk c of row r stored at chunk c ^ (r & 7),
//   1024-byte atoms of 8 rows); raw [kMoeWgStages][256 rows][32 B (MXFP4) or 64 B (FP8)] with its 16-byte chunks
//   xor-swizzled so that a quarter warp reads 8 rows conflict-free; mbarriers full[s] (128 producer arrivals)
//   and empty[s] (one per consumer warp: 8); rsrc[128] source rows of A; then the e8m0 scales, rows
//   moe_wg_scale_pitch bytes apart: MXFP4 [256 B rows][K/32 used] (an odd number of 16-byte chunks per row, so
//   the rows of 8 consecutive threads start in distinct bank groups), FP8 [2][ceil(K/128) used] (the 128-row
//   blocks of B rows [0, 128) and [128, 256)). MoeWgSmem::bytes(fp4, K): MXFP4 165,440 + 256 * pitch (K = 4096:
//   202,304; at most 227 KiB, so K <= 7680), FP8 198,208 + 2 * pitch.
//   Deadlock freedom: the producer fills step kt (A/raw of kt + 2 into slot (kt + 2) % 4, B of kt into slot
//   kt % 2) after empty(kt - 2); consumers release kt - 2 after issuing kt - 1, which needs only full(kt - 1).
//   Raw slot reuse across producer threads: raw of kt - 2 is overwritten (issue at step kt) only after the
//   issuing thread passed step kt - 1's producer barrier, i.e. after every producer thread expanded kt - 2.
// Variants (template kVariant, chosen at run time by KernelPaths::moe_wgmma_variant):
//   0: as above.
//   (1: weights by per-thread bulk copies 6-8 K steps ahead was slower on the H200, 9.6 vs 5.8 ms at Flash
//     T=4096, runs 47-54, and was removed.)
//   2: variant 0 with two producer warpgroups (512 threads: warpgroups 0, 1 produce, 2, 3 consume; results
//     bit-identical to variant 0). Producer warpgroup h (thread t of 256, h = t / 128) owns B rows
//     [128h, 128h + 128): it copies their e8m0 scales (at CTA start) and raw bytes, and thread t expands B row t
//     alone; it also copies A tile rows [64h, 64h + 64). So the raw rows and scales a warpgroup expands are the ones
//     it copied: the producer barrier is per warpgroup (bar.sync 1 + h, 128), and the raw-slot reuse argument of
//     variant 0 holds per warpgroup. full[s] counts 256 producer arrivals. setmaxnreg moves registers from the
//     producers (kMoeWg2ProdRegs) to the consumers (kMoeWg2ConsRegs; 256 of each, within the 65,536 that
//     __launch_bounds__(512, 1) gives at launch). ptxas still refuses any single instruction needing more than
//     the 128 entry registers, so a consumer K step is two wgmma groups of four m64n128k16 (B rows [0, 128), then
//     [128, 256); per-element k order unchanged) instead of four m64n256k16 (moe_wg_consume, kSplitN). Shared
//     memory as variant 0 (MoeWgSmem). Uses all 16 named barriers (bar.sync with a register id): 1 CTA/SM anyway.
//   3: swap AB, the weights as the register A operand of wgmma RS: moe_gemm_wgmma_rs.cuh.
// Not bit-equal to moe_gemm_mma_kernel in one corner: an FP8 NaN code (0x7F / 0xFF) decodes to a finite value
// here (no checkpoint holds one). Needs sm_90a, N % moe_wgmma_bn == 0, K % 64 == 0, MXFP4 / FP8 weights with
// e8m0 scales, variants 0 and 2 a shared-memory carve-up within 227 KiB (moe_wgmma_unsupported; variant 3:
// moe_wgmma_rs_unsupported).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "backend/cuda/common/bf16_expand.cuh"
#include "backend/cuda/common/pdl.cuh"
#include "backend/cuda/moe/moe_gemm.cuh"
#include "backend/cuda/moe/params.h"

namespace dsv4::cuda {

inline constexpr int kMoeWgBM = 128;      // slots per tile: moe_gemm_bm(MoeGemmPath::MmaPrefill)
inline constexpr int kMoeWgBK = 64;       // K per step: one 128-byte swizzle row of bf16
inline constexpr int kMoeWgRows = 256;    // B rows per CTA (the wgmma N)
inline constexpr int kMoeWgStages = 4;    // A / raw ring; the producer loads kMoeWgStages - 2 steps ahead
inline constexpr int kMoeWgThreads = 384;    // variant 0
inline constexpr int kMoeWg2ProdRegs = 72;   // v2: registers per producer thread after setmaxnreg.dec
inline constexpr int kMoeWg2ConsRegs = 184;  // v2: registers per consumer thread after setmaxnreg.inc
static_assert(256 * (kMoeWg2ProdRegs + kMoeWg2ConsRegs) <= 512 * 128 && kMoeWg2ProdRegs % 8 == 0 &&
              kMoeWg2ConsRegs % 8 == 0);
inline constexpr int64_t kMoeWgMaxSmem = 227 * 1024;  // dynamic shared memory of one CTA (sm_90)

// Threads of moe_gemm_wgmma_kernel<·, ·, variant>; producer warpgroups of it (the first ones).
__host__ __device__ constexpr int moe_wgmma_threads(int variant) { return variant == 2 ? 512 : kMoeWgThreads; }
__host__ __device__ constexpr int moe_wgmma_producers(int variant) { return variant == 2 ? 2 : 1; }

// Output columns per CTA.
__host__ __device__ constexpr int moe_wgmma_bn(bool gate_up) { return gate_up ? kMoeWgRows / 2 : kMoeWgRows; }
// Raw weight bytes of one row per K step.
__host__ __device__ constexpr int moe_wgmma_raw_row(bool fp4) { return fp4 ? kMoeWgBK / 2 : kMoeWgBK; }

// Variants 0, 2: shared bytes per e8m0 scale row: MXFP4 K/32 rounded up to an odd number of 16-byte chunks, FP8
// ceil(K/128) rounded up to 16.
__host__ __device__ constexpr int64_t moe_wg_scale_pitch(bool fp4, int64_t K) {
  return fp4 ? 16 * (((K / 32 + 15) / 16) | 1) : ((K + 127) / 128 + 15) / 16 * 16;
}

// Carve-up of the dynamic shared memory: byte offsets from the 1024-byte aligned base. kStages slots of A (the
// gathered activation rows) and of raw weight bytes; kBBuf: the two-slot expanded bf16 B buffer (variants 0, 2;
// variant 3 converts into registers and has none).
template <int kStages, bool kBBuf>
struct MoeWgSmemT {
  static constexpr int kAStage = kMoeWgBM * 128;
  static constexpr int kBStage = kMoeWgRows * 128;
  static constexpr int kA = 0;
  static constexpr int kB = kA + kStages * kAStage;
  static constexpr int kRaw = kB + (kBBuf ? 2 * kBStage : 0);
  __host__ __device__ static constexpr int raw_stage(bool fp4) { return kMoeWgRows * moe_wgmma_raw_row(fp4); }
  __host__ __device__ static constexpr int bars(bool fp4) { return kRaw + kStages * raw_stage(fp4); }
  __host__ __device__ static constexpr int rsrc(bool fp4) { return bars(fp4) + 2 * kStages * 8; }
  __host__ __device__ static constexpr int scales(bool fp4) { return rsrc(fp4) + 4 * kMoeWgBM; }  // 16-aligned
  // Bytes to request: the carve-up plus the slack to align the base to 1024.
  __host__ __device__ static constexpr int64_t bytes(bool fp4, int64_t K) {
    return scales(fp4) + (fp4 ? kMoeWgRows : 2) * moe_wg_scale_pitch(fp4, K) + 1024;
  }
};
using MoeWgSmem = MoeWgSmemT<kMoeWgStages, true>;
static_assert(MoeWgSmem::scales(true) % 16 == 0 && MoeWgSmem::scales(false) % 16 == 0);

// Dynamic shared memory of moe_gemm_wgmma_kernel<·, fp4 ? Mxfp4 : Fp8, ·> for K.
inline int64_t moe_wgmma_smem_bytes(bool fp4, int64_t K) { return MoeWgSmem::bytes(fp4, K); }

// Empty when the wgmma kernels (every variant) support the call's formats and shape, shared memory aside.
inline std::string moe_wgmma_shape_unsupported(const MoeGemmParams& p) {
  if (p.format != MoeWeightFormat::Fp8 && p.format != MoeWeightFormat::Mxfp4) return "moe wgmma: not FP8 / MXFP4";
  if (p.scale_dtype != MoeScaleDtype::E8m0) return "moe wgmma: weight scales are not e8m0";
  if (p.N <= 0 || p.N % moe_wgmma_bn(p.gate_up) != 0)
    return "moe wgmma: N " + std::to_string(p.N) + " is not a multiple of " + std::to_string(moe_wgmma_bn(p.gate_up));
  if (p.K <= 0 || p.K % kMoeWgBK != 0) return "moe wgmma: K " + std::to_string(p.K) + " is not a multiple of 64";
  if (p.a_bf16 == nullptr) return "moe wgmma: reads bf16 A";
  return {};
}

// Empty when moe_gemm_wgmma_kernel supports the call (on top of moe_mma_unsupported).
inline std::string moe_wgmma_unsupported(const MoeGemmParams& p) {
  if (std::string why = moe_wgmma_shape_unsupported(p); !why.empty()) return why;
  const int64_t smem = moe_wgmma_smem_bytes(p.format == MoeWeightFormat::Mxfp4, p.K);
  if (smem > kMoeWgMaxSmem)
    return "moe wgmma: K " + std::to_string(p.K) + " needs " + std::to_string(smem) +
           " bytes of shared memory (e8m0 scales of the CTA's rows)";
  return {};
}

__device__ __forceinline__ uint32_t moe_wg_smem_u32(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}
// The 1024-byte aligned base (the swizzle atoms' alignment) within a kernel's dynamic shared memory at p.
__device__ __forceinline__ uint8_t* moe_wg_align1024(uint8_t* p) {
  return p + ((1024 - (moe_wg_smem_u32(p) & 1023)) & 1023);
}
__device__ __forceinline__ void moe_wg_bar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void moe_wg_bar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Returns once the phase of parity `parity` has completed.
__device__ __forceinline__ void moe_wg_bar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred P1;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DONE;\n"
      "bra WAIT;\n"
      "DONE:\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// Generic-proxy writes of shared memory (st.shared, completed cp.async) made visible to wgmma (async proxy).
__device__ __forceinline__ void moe_wg_fence_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void moe_wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void moe_wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void moe_wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accumulator reads / writes across the asynchronous wgmma instructions.
template <int N>
__device__ __forceinline__ void moe_wg_fence_acc(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// wgmma shared-memory descriptor of a K-major, 128-byte-swizzled operand at shared address `addr`: start address
// >> 4 (bits 0-13), leading byte offset 16 >> 4 (bits 16-29; unused by swizzled K-major layouts), stride byte
// offset 1024 >> 4 between 8-row atoms (bits 32-45), base offset 0 (atoms 1024-byte aligned), layout 1 = 128B
// swizzle (bits 62-63). The k-th 16-wide K slice of a 64-wide row starts at addr + 32·k.
__device__ __forceinline__ uint64_t moe_wg_desc(uint32_t addr) {
  return static_cast<uint64_t>((addr >> 4) & 0x3FFFu) | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) |
         (uint64_t{1} << 62);
}

// The accumulator operands of a wgmma asm statement: "+f" of d[0, 64) / d[0, 128), in order.
#define DSV4_WG_ACC8(d, i)                                                                                   \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
      "+f"(d[i + 7])
#define DSV4_WG_ACC64(d)                                                                                   \
  DSV4_WG_ACC8(d, 0), DSV4_WG_ACC8(d, 8), DSV4_WG_ACC8(d, 16), DSV4_WG_ACC8(d, 24), DSV4_WG_ACC8(d, 32),  \
      DSV4_WG_ACC8(d, 40), DSV4_WG_ACC8(d, 48), DSV4_WG_ACC8(d, 56)
#define DSV4_WG_ACC128(d)                                                                                 \
  DSV4_WG_ACC64(d), DSV4_WG_ACC8(d, 64), DSV4_WG_ACC8(d, 72), DSV4_WG_ACC8(d, 80), DSV4_WG_ACC8(d, 88), \
      DSV4_WG_ACC8(d, 96), DSV4_WG_ACC8(d, 104), DSV4_WG_ACC8(d, 112), DSV4_WG_ACC8(d, 120)

// d[64 x 256] += A[64 x 16] · B[256 x 16]ᵀ, bf16 in, f32 accumulate. Thread (warp w of the warpgroup, lane l)
// holds d[4j + v] = element (row 16w + l/4 + 8·(v >> 1), column 8j + 2·(l % 4) + (v & 1)), j in [0, 32).
// kTransB = 1: B is MN-major in shared memory (B[16 x 256] rows along K), e.g. the attention's V.
template <int kTransB = 0>
__device__ __forceinline__ void moe_wg_mma(float (&d)[128], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "
      "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, "
      "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, "
      "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, "
      "%82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, "
      "%102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, "
      "%119, %120, %121, %122, %123, %124, %125, %126, %127}, "
      "%128, %129, p, 1, 1, 0, %131;\n"
      "}\n"
      : DSV4_WG_ACC128(d)
      : "l"(da), "l"(db), "r"(1), "n"(kTransB));
}

// Variant 2: d[64 x 128] += A[64 x 16] · B[128 x 16]ᵀ, d = 64 consecutive accumulators; thread (warp w, lane l)
// holds d[4j + v] = element (row 16w + l/4 + 8·(v >> 1), column 8j + 2·(l % 4) + (v & 1)), j in [0, 16): two of
// them on B rows [0, 128) into d[0, 64) and [128, 256) into d[64, 128) equal one moe_wg_mma (same per-element
// k order). ptxas (13.0) rejects an instruction needing more registers than the entry count (128 at 512
// threads), whatever setmaxnreg says: m64n256 needs 154. accumulate = false: d = A · Bᵀ (d's values unread).
__device__ __forceinline__ void moe_wg_mma128(float* d, uint64_t da, uint64_t db, bool accumulate = true) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "
      "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, "
      "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, "
      "%62, %63}, "
      "%64, %65, p, 1, 1, 0, 0;\n"
      "}\n"
      : DSV4_WG_ACC64(d)
      : "l"(da), "l"(db), "r"(accumulate ? 1 : 0));
}

// Weight expansion: the exact code x e8m0 helpers of common/bf16_expand.cuh.

// One B row of one K step: raw row (chunks swizzled by rswz) -> 64 bf16 at b_row (chunks swizzled by r7 = row & 7).
// sc: MXFP4: the two e8m0 bytes of k groups [0, 32) and [32, 64) (low byte first); FP8: the block's e8m0 byte.
// Branches (warp-uniform for real scales) on whether the second factor is needed.
template <bool kFp4>
__device__ __forceinline__ void moe_wg_expand_row(const uint8_t* raw_row, uint8_t* b_row, int r7, int rswz,
                                                  uint32_t sc) {
  if constexpr (kFp4) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint4 v = *reinterpret_cast<const uint4*>(raw_row + ((h ^ rswz) << 4));
      uint32_t f1, f2;
      e8m0_factors((sc >> (8 * h)) & 0xFFu, 126, f1, f2);
      const uint32_t w[4] = {v.x, v.y, v.z, v.w};
      uint4 o[4];
      if (f2 == kBf16x2One) {
#pragma unroll
        for (int q = 0; q < 4; ++q) o[q] = fp4x8_to_bf16<false>(w[q], f1, f2);
      } else {
#pragma unroll
        for (int q = 0; q < 4; ++q) o[q] = fp4x8_to_bf16<true>(w[q], f1, f2);
      }
#pragma unroll
      for (int q = 0; q < 4; ++q) *reinterpret_cast<uint4*>(b_row + (((4 * h + q) ^ r7) << 4)) = o[q];
    }
  } else {
    uint32_t f1, f2;
    e8m0_factors(sc & 0xFFu, 120, f1, f2);
    auto expand = [&]<bool kTwo>() {
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const uint4 v = *reinterpret_cast<const uint4*>(raw_row + ((q ^ rswz) << 4));
        *reinterpret_cast<uint4*>(b_row + (((2 * q) ^ r7) << 4)) = fp8x8_to_bf16<kTwo>(v.x, v.y, f1, f2);
        *reinterpret_cast<uint4*>(b_row + (((2 * q + 1) ^ r7) << 4)) = fp8x8_to_bf16<kTwo>(v.z, v.w, f1, f2);
      }
    };
    if (f2 == kBf16x2One) expand.template operator()<false>();
    else expand.template operator()<true>();
  }
}

// Barrier of the 128 producer threads (warpgroup 0) alone; also orders their shared-memory accesses.
__device__ __forceinline__ void moe_wg_producer_sync() { asm volatile("bar.sync 1, 128;\n" ::: "memory"); }
// Variant 2: barrier of the 128 threads of producer warpgroup h alone (named barrier 1 + h).
__device__ __forceinline__ void moe_wg_producer_sync(int h) {
  asm volatile("bar.sync %0, 128;\n" ::"r"(1 + h) : "memory");
}
// Variant 2: this warpgroup's registers per thread become kRegs (all its threads, warpgroup-uniform).
template <int kRegs>
__device__ __forceinline__ void moe_wg_regs_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void moe_wg_regs_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// Producer thread t of 128: starts copying `rows` rows of `len` bytes, contiguous in global memory from src, into
// shared rows `pitch` bytes apart from dst (pitch % 16 == 0): coalesced 16-byte cp.asyncs (in the caller's next
// cp.async group) when src is 16-byte aligned and len % 16 == 0 (cudaMalloc'd scales of K % 512 == 0 for MXFP4,
// K % 2048 == 0 for FP8), else plain byte loads (complete on return).
__device__ __forceinline__ void moe_wg_copy_rows(uint8_t* dst, const uint8_t* src, int rows, int len, int pitch,
                                                 int t) {
  if ((reinterpret_cast<uintptr_t>(src) & 15) == 0 && len % 16 == 0) {
    const int cpr = len / 16;  // chunks per row
    for (int i = t; i < rows * cpr; i += 128) {
      const int r = i / cpr;
      moe_cp_async16(dst + r * pitch + 16 * (i - r * cpr), src + 16 * static_cast<int64_t>(i));
    }
  } else {
    for (int i = t; i < rows * len; i += 128) {
      const int r = i / len;
      dst[r * pitch + (i - r * len)] = __ldg(src + i);
    }
  }
}

// Variants 0, 3 (kProd = 1), 2 (kProd = 2), producer thread t of 128·kProd: starts copying the e8m0 scales of the
// CTA's B rows for the whole K (kProd = 2: of B rows [128h, 128h + 128) alone, h = t / 128) into Sm::scales
// (layout in the file comment; Sm = MoeRsSmem for variant 3) and commits them as one cp.async group; the producer
// waits for it before its first expansion (variant 3: before its first full arrival).
template <bool kGateUp, bool kFp4, int kProd = 1, typename Sm = MoeWgSmem>
__device__ __forceinline__ void moe_wg_load_scales(const MoeGemmParams& p, uint8_t* smem, int expert, int n0,
                                                   int t) {
  const int K = p.K, pitch = static_cast<int>(moe_wg_scale_pitch(kFp4, K));
  const uint8_t* sc_lo = p.w1[expert].scale;                           // B rows [0, 128): w1 rows n0 + i
  const uint8_t* sc_hi = (kGateUp ? p.w3[expert] : p.w1[expert]).scale;  // B rows [128, 256)
  const int n_hi = kGateUp ? n0 : n0 + 128;                             // w3 rows n0 + i / w2 rows n0 + 128 + i
  uint8_t* const dst = smem + Sm::scales(kFp4);
  if constexpr (kProd == 2) {  // warpgroup h: one half
    const int h = t >> 7, pt = t & 127;
    const uint8_t* const sc = h ? sc_hi : sc_lo;
    const int n = h ? n_hi : n0;
    if constexpr (kFp4) {
      const int len = K / 32;
      moe_wg_copy_rows(dst + h * 128 * pitch, sc + static_cast<int64_t>(n) * len, 128, len, pitch, pt);
    } else {
      const int kb = (K + 127) / 128;
      moe_wg_copy_rows(dst + h * pitch, sc + static_cast<int64_t>(n / 128) * kb, 1, kb, pitch, pt);
    }
  } else if constexpr (kFp4) {  // [N, K/32]: 128 rows each
    const int len = K / 32;
    moe_wg_copy_rows(dst, sc_lo + static_cast<int64_t>(n0) * len, 128, len, pitch, t);
    moe_wg_copy_rows(dst + 128 * pitch, sc_hi + static_cast<int64_t>(n_hi) * len, 128, len, pitch, t);
  } else {  // [ceil(N/128), ceil(K/128)]: n0 % 128 == 0, so one block row each
    const int kb = (K + 127) / 128;
    moe_wg_copy_rows(dst, sc_lo + static_cast<int64_t>(n0 / 128) * kb, 1, kb, pitch, t);
    moe_wg_copy_rows(dst + pitch, sc_hi + static_cast<int64_t>(n_hi / 128) * kb, 1, kb, pitch, t);
  }
  moe_cp_async_commit();
}

// Producer warpgroup(s), thread t of 128·kProd (see the file comment: kProd = 1 variant 0, kProd = 2 variant 2).
// Expects moe_wg_load_scales<·, ·, kProd>'s cp.async group committed. rows: the tile's rows (A rows past them are
// not loaded).
template <bool kGateUp, MoeWeightFormat kFmt, int kProd = 1>
__device__ __forceinline__ void moe_wg_produce(const MoeGemmParams& p, uint8_t* smem, int expert, int n0, int t,
                                               int rows) {
  static_assert(kProd == 1 || kProd == 2);
  constexpr bool kFp4 = kFmt == MoeWeightFormat::Mxfp4;
  constexpr int S = kMoeWgStages, kRawRow = moe_wgmma_raw_row(kFp4), kRawStage = MoeWgSmem::raw_stage(kFp4);
  constexpr int kCpr = kRawRow / 16;      // 16-byte chunks per raw row and step: 2 (MXFP4) / 4 (FP8)
  constexpr int kRawIt = 128 / kCpr;      // raw rows per copy round of the warpgroup: 64 / 32
  constexpr int kARounds = 8 / kProd;     // A copy rounds per thread and step
  const int K = p.K, KT = K / kMoeWgBK;
  const int h = kProd == 2 ? t >> 7 : 0, pt = kProd == 2 ? t & 127 : t;  // warpgroup, thread in it
  const uint32_t full0 = moe_wg_smem_u32(smem + MoeWgSmem::bars(kFp4)), empty0 = full0 + 8 * S;
  const MoeWeightPtr w_lo = p.w1[expert], w_hi = kGateUp ? p.w3[expert] : p.w1[expert];
  const int64_t row_bytes = kFp4 ? K / 2 : K;
  // Raw copies: round j (of 2·kCpr / kProd) covers B rows 128·hj + kRawIt·(j % kCpr) + [0, kRawIt), hj = j / kCpr
  // (kProd = 1) or h (kProd = 2); thread pt takes chunk pt % kCpr of row pt / kCpr of them (a warp: 32 / kCpr
  // whole rows, kRawRow contiguous bytes each).
  const int rr = pt / kCpr, rc = pt % kCpr;
  const int n_hi0 = kGateUp ? n0 : n0 + 128;  // weight row of B row 128
  const uint8_t* const raw_lo = w_lo.data + (n0 + rr) * row_bytes + 16 * rc;
  const uint8_t* const raw_hi = w_hi.data + (n_hi0 + rr) * row_bytes + 16 * rc;
  const int rr_swz = kFp4 ? (rr >> 2) & 1 : (rr >> 1) & 3;  // rows rr + multiples of 8 share it
  uint8_t* const raw_cp = smem + MoeWgSmem::kRaw + (128 * h + rr) * kRawRow + ((rc ^ rr_swz) << 4);
  // A copies: round i (of kARounds) covers tile rows a0 + 16·i + [0, 16), a0 = 64·h; thread pt takes chunk pt % 8
  // of row a0 + 16·i + pt / 8 (a warp: 4 whole 128-byte rows). Rows >= `rows` are skipped: their stale shared
  // bytes (any values) only reach accumulator rows that are never stored.
  const int ar = 64 * h + (pt >> 3), ac = pt & 7;
  const int* const rsrc = reinterpret_cast<const int*>(smem + MoeWgSmem::rsrc(kFp4));
  const __nv_bfloat16* a_src[kARounds];
#pragma unroll
  for (int i = 0; i < kARounds; ++i) a_src[i] = p.a_bf16 + static_cast<int64_t>(rsrc[16 * i + ar]) * K + 8 * ac;
  uint8_t* const a_cp = smem + MoeWgSmem::kA + ar * 128 + ((ac ^ (ar & 7)) << 4);  // (16·i + ar) & 7 == ar & 7
  // Expansion: thread t expands B rows t and t + 128 (kProd = 1) / B row t (kProd = 2), copied by other threads of
  // its warpgroup (producer barrier in between).
  const int r7 = t & 7, rswz = kFp4 ? (t >> 2) & 1 : (t >> 1) & 3;  // rows t and t + 128 share both
  const uint8_t* const raw_ex = smem + MoeWgSmem::kRaw + t * kRawRow;
  // e8m0 bytes of step kt (shared copy, moe_wg_load_scales): MXFP4 two per row (k groups 2kt, 2kt + 1) of B
  // rows t, t + 128 (kProd = 1: low, high 16 bits) / t (kProd = 2); FP8 one per row block (K block kt / 2) of B
  // rows [0, 128), [128, 256) / of B row t.
  const int sc_pitch = static_cast<int>(moe_wg_scale_pitch(kFp4, K));
  const uint8_t* const sc_s = smem + MoeWgSmem::scales(kFp4) + (kFp4 ? t * sc_pitch : h * sc_pitch);
  auto scales_at = [&](int kt) -> uint32_t {
    if constexpr (kProd == 2) {
      if constexpr (kFp4) return reinterpret_cast<const unsigned short*>(sc_s)[kt];
      else return sc_s[kt / 2];
    } else if constexpr (kFp4) {
      const uint32_t lo = reinterpret_cast<const unsigned short*>(sc_s)[kt];
      const uint32_t hi = reinterpret_cast<const unsigned short*>(sc_s + 128 * sc_pitch)[kt];
      return lo | (hi << 16);
    } else {
      return static_cast<uint32_t>(sc_s[kt / 2]) | (static_cast<uint32_t>(sc_s[sc_pitch + kt / 2]) << 16);
    }
  };
  auto sync = [&] {
    if constexpr (kProd == 2) moe_wg_producer_sync(h);
    else moe_wg_producer_sync();
  };
  auto issue = [&](int kt) {
    const int s = kt % S;
#pragma unroll
    for (int i = 0; i < kARounds; ++i)
      if (16 * i + ar < rows) moe_cp_async16(a_cp + s * MoeWgSmem::kAStage + 16 * i * 128, a_src[i] + kt * kMoeWgBK);
    const int64_t koff = static_cast<int64_t>(kt) * kRawRow;
#pragma unroll
    for (int j = 0; j < 2 * kCpr / kProd; ++j) {
      const int rb = kRawIt * (j % kCpr);  // row offset within the half
      if constexpr (kProd == 2) {
        const uint8_t* src = (h ? raw_hi : raw_lo) + rb * row_bytes + koff;
        moe_cp_async16(raw_cp + s * kRawStage + rb * kRawRow, src);
      } else {
        const uint8_t* src = (j < kCpr ? raw_lo : raw_hi) + rb * row_bytes + koff;
        moe_cp_async16(raw_cp + s * kRawStage + (128 * (j / kCpr) + rb) * kRawRow, src);
      }
    }
  };
  issue(0);
  moe_cp_async_commit();
  if (KT > 1) issue(1);
  moe_cp_async_commit();
  moe_cp_async_wait<2>();  // this thread's scale copies (the group before step 0's) have landed
  sync();                  // every producer thread's (of the warpgroup: kProd = 2 copies only the rows it expands)
  for (int kt = 0; kt < KT; ++kt) {
    const uint32_t sc = scales_at(kt);
    // Frees A / raw of kt + 2 (raw of kt - 2 was last read before every producer of the warpgroup passed step
    // kt - 1's barrier) and B of kt.
    if (kt >= 2) moe_wg_bar_wait(empty0 + 8 * ((kt - 2) % S), ((kt - 2) / S) & 1);
    if (kt + 2 < KT) issue(kt + 2);
    moe_cp_async_commit();
    moe_cp_async_wait<2>();  // step kt's copies (this thread's) have landed
    sync();                  // every producer thread's of the warpgroup (the raw rows expanded below)
    const uint8_t* raw_s = raw_ex + (kt % S) * kRawStage;
    uint8_t* b_s = smem + MoeWgSmem::kB + (kt & 1) * MoeWgSmem::kBStage + t * 128;
    if constexpr (kProd == 2) {
      moe_wg_expand_row<kFp4>(raw_s, b_s, r7, rswz, sc);
    } else {
      moe_wg_expand_row<kFp4>(raw_s, b_s, r7, rswz, sc & 0xFFFFu);
      moe_wg_expand_row<kFp4>(raw_s + 128 * kRawRow, b_s + 128 * 128, r7, rswz, sc >> 16);
    }
    moe_wg_fence_async_smem();  // this thread's B rows and its completed A copies
    moe_wg_bar_arrive(full0 + 8 * (kt % S));
  }
}

// Consumer warpgroup cw (0, 1): tile rows [64·cw, 64·cw + 64); ct = thread index in the warpgroup. kSplitN
// (variant 2): each K step as two wgmma groups of four m64n128 (B rows [0, 128), then [128, 256)); wait_group 1
// then leaves only the second half of step kt in flight (a whole m64n256 group in flight serializes the wgmmas
// at 128 entry registers: ptxas C7511), and step kt - 1 is retired as before.
template <bool kGateUp, bool kFp4, typename Sm, bool kSplitN = false>
__device__ __forceinline__ void moe_wg_consume(const MoeGemmParams& p, uint8_t* smem, int cw, int ct, int row0,
                                               int rows, int n0) {
  constexpr int S = kMoeWgStages;
  const int KT = p.K / kMoeWgBK, m0 = 64 * cw;
  const bool active = m0 < rows;
  const uint32_t full0 = moe_wg_smem_u32(smem + Sm::bars(kFp4)), empty0 = full0 + 8 * S;
  const uint32_t a_base = moe_wg_smem_u32(smem + Sm::kA) + m0 * 128;
  const uint32_t b_base = moe_wg_smem_u32(smem + Sm::kB);
  float acc[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) acc[i] = 0.0f;
  for (int kt = 0; kt < KT; ++kt) {
    const int s = kt % S;
    moe_wg_bar_wait(full0 + 8 * s, (kt / S) & 1);
    if (active) {
      moe_wg_fence();
      if constexpr (kSplitN) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
          for (int k = 0; k < kMoeWgBK / 16; ++k)
            moe_wg_mma128(acc + 64 * h, moe_wg_desc(a_base + s * Sm::kAStage + 32 * k),
                          moe_wg_desc(b_base + (kt & 1) * Sm::kBStage + h * 128 * 128 + 32 * k));
          moe_wg_commit();
        }
      } else {
#pragma unroll
        for (int k = 0; k < kMoeWgBK / 16; ++k)
          moe_wg_mma(acc, moe_wg_desc(a_base + s * Sm::kAStage + 32 * k),
                     moe_wg_desc(b_base + (kt & 1) * Sm::kBStage + 32 * k));
        moe_wg_commit();
      }
      moe_wg_wait<1>();  // step kt - 1 has retired
    }
    if (kt > 0 && (ct & 31) == 0) moe_wg_bar_arrive(empty0 + 8 * ((kt - 1) % S));
  }
  moe_wg_wait<0>();
  moe_wg_fence_acc(acc);
  if (!active) return;
  const int lane = ct & 31, r_lo = m0 + 16 * (ct >> 5) + (lane >> 2), c_lo = n0 + 2 * (lane & 3);
  constexpr int kBlocks = kGateUp ? 16 : 32;  // 8-column blocks written; gate_up: u of block j is block j + 16
#pragma unroll
  for (int j = 0; j < kBlocks; ++j)
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const int r = r_lo + 8 * (v >> 1);
      if (r < rows)
        moe_store<kGateUp>(p, row0 + r, c_lo + 8 * j + (v & 1), acc[4 * j + v], acc[(kGateUp ? 64 : 0) + 4 * j + v]);
    }
}

template <bool kGateUp, MoeWeightFormat kFmt, int kVariant>
__global__ void __launch_bounds__(moe_wgmma_threads(kVariant), 1)
    moe_gemm_wgmma_kernel(const __grid_constant__ MoeGemmParams p) {
  static_assert(kVariant == 0 || kVariant == 2);
  grid_dependency_sync();
  constexpr bool kFp4 = kFmt == MoeWeightFormat::Mxfp4;
  constexpr int kProd = moe_wgmma_producers(kVariant);  // producer warpgroups
  using Sm = MoeWgSmem;
  const int tile = blockIdx.y;
  if (tile >= *p.n_tiles) return;
  const int expert = p.tiles[3 * tile], row0 = p.tiles[3 * tile + 1], rows = p.tiles[3 * tile + 2];
  const int n0 = blockIdx.x * moe_wgmma_bn(kGateUp);
  const int tid = threadIdx.x, wg = tid >> 7;
  extern __shared__ uint8_t moe_wg_dyn_smem[];
  uint8_t* smem = moe_wg_align1024(moe_wg_dyn_smem);
  if constexpr (kVariant == 2) {  // the producer warpgroups
    if (tid < 2 * 128) {
      int slot = 0;
      if (tid < kMoeWgBM) slot = p.gather ? p.perm[row0 + min(tid, rows - 1)] : row0 + min(tid, rows - 1);
      moe_wg_load_scales<kGateUp, kFp4, 2>(p, smem, expert, n0, tid);
      if (tid < kMoeWgBM) reinterpret_cast<int*>(smem + Sm::rsrc(kFp4))[tid] = p.gather ? slot / p.top_k : slot;
    }
  } else if (tid < kMoeWgBM) {  // the producer warpgroup
    const int i = row0 + min(tid, rows - 1);
    const int slot = p.gather ? p.perm[i] : i;  // in flight during the scale copy's issue
    moe_wg_load_scales<kGateUp, kFp4>(p, smem, expert, n0, tid);
    reinterpret_cast<int*>(smem + Sm::rsrc(kFp4))[tid] = p.gather ? slot / p.top_k : slot;
  }
  if (tid == 0) {
    const uint32_t bars = moe_wg_smem_u32(smem + Sm::bars(kFp4));
    for (int s = 0; s < kMoeWgStages; ++s) {
      moe_wg_bar_init(bars + 8 * s, 128 * kProd);              // full: every producer thread
      moe_wg_bar_init(bars + 8 * (kMoeWgStages + s), 8);       // empty: lane 0 of every consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (wg < kProd) {
    if constexpr (kVariant == 2) {
      moe_wg_regs_dec<kMoeWg2ProdRegs>();
      moe_wg_produce<kGateUp, kFmt, 2>(p, smem, expert, n0, tid, rows);
    } else {
      moe_wg_produce<kGateUp, kFmt>(p, smem, expert, n0, tid, rows);
    }
  } else {
    if constexpr (kVariant == 2) moe_wg_regs_inc<kMoeWg2ConsRegs>();
    moe_wg_consume<kGateUp, kFp4, Sm, kVariant == 2>(p, smem, wg - kProd, tid & 127, row0, rows, n0);
  }
}

}  // namespace dsv4::cuda
