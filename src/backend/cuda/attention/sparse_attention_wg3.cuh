// sparse_attention_wg3_kernel: the wgmma wide attention (sparse_attention_wgmma.cuh) with its work split by role
// over three warpgroups (switch attn_wg3). Why: in the two-warpgroup kernel both warpgroups compute all of S from q
// in shared memory (2 x 64 KB of operand reads per 32-key tile) and both convert, so a tile costs the sum of its
// phases, bound by shared-memory traffic (~294 KB per tile; docs/cuda.md Next item 5). Here:
//   - warpgroup 0 holds half of q as bf16 wgmma A fragments in registers (the converters load all of q and store
//     the other half in shared memory; this half goes through key buffer 2 before tile 2 does),
//     issues the raw Fp8Kv rows' copies (cp.async.bulk, kStages tiles ahead), computes S = Q·Kᵀ of each tile alone
//     (16 register-A and 16 shared-A wgmma m64n32k16), runs the online softmax and leaves P (bf16, 64-byte swizzle)
//     and the rows' rescale factors in one of two P buffers;
//   - warpgroups 1 and 2 each own 256 output columns: per tile they convert the raw rows to the bf16 key tile two
//     tiles ahead and run O = O·alpha + P·V with P and V from shared memory, the P·V beside the conversion.
// Hand-offs by mbarriers: raw_bar[slot] (the slot's bulk bytes, and every warpgroup-0 thread's 8-byte cp.asyncs
// through cp.async.mbarrier.arrive), kfull[b] (key buffer b converted: 256 arrivals; also frees the tile's raw slot
// and pointer slot for warpgroup 0), pfull[s] (P buffer s written: 128) and pempty[s] (P·V of that tile done by
// both converter warpgroups: 256; also frees the key buffer of that tile for the next conversion into it).
// Same arithmetic as the two-warpgroup kernel (the same wgmma products in the same k order, the same softmax
// code, P rounded to bf16, O rescaled before each P·V): the op test checks the two bitwise. Needs the bulk raw-row
// path (attn_bulk), dim 512, 64-head groups and Fp8Kv rows (if any) with 64 RoPE values; the launcher checks.
// Measured (H200, ncu kernel only): run 170 (docs/perf.md "Runs 165-170") B=64 37.8 us (+ 8.9 combine; 6.5 since run
// 176), B=256 124.0 us, against 48.6 / 180.5 for the two-warpgroup kernel; at one tile per CTA (B=1, 20 splits) no
// faster (run 168: 13.4 against 13.5 us), so the launcher takes it from attn_wg3 = 2 tiles per CTA on. Run 182
// (docs/perf.md "Runs 179-186": Fp8Kv window rows, q loaded by the converters, one path per converter warp):
// B=64 32.1-32.2, B=256 99.1-99.3 us. Left (phase profile, run 182, B=256): the converters' ~2,080 cycles per
// tile of conversion, and per CTA the q prologue (~9.5 K cycles, bound by the f32 bytes of q per wave) and the f32
// output epilogue (~13 K) of ~90 K.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention/sparse_attention_wgmma.cuh"

namespace dsv4::cuda {
namespace attn_wg3_detail {

using namespace attn_wg_detail;
inline constexpr int kThreads3 = 384;          // warpgroup 0: S and softmax; 1-2: copies, conversion, P·V
inline constexpr int kConv = 256;              // converter / P·V threads
inline constexpr int kPBytes = kH * kT * 2;    // P of one tile: 64 rows x 32 keys of bf16
// q: the k16 steps st < kQRegSteps as register A fragments of warpgroup 0 (4 registers per step), the rest as the
// shared-memory A operand (the two-warpgroup kernel's layout, 64-wide K blocks from kQRegSteps / 4 on). All of q in
// registers (128) left no room for S, P and the addresses under the 168 registers of 384 threads (ptxas spilled);
// 24 steps (152 + 2 x 176 registers) measured slower than 16 (run 166: B=256 146.4 against 139.3 us).
inline constexpr int kQRegSteps = 16, kQSmemBlocks = 8 - kQRegSteps / 4;
inline constexpr int kRegsWg0 = 128, kRegsConv = 184;  // setmaxnreg: 128 + 2 x 184 <= 168 x 3 (the launch's)
// Shared layout: q's shared blocks, the two-warpgroup kernel's key buffers, kStages raw slots and pointer ring
// (four raw slots measured slower than three: run 169, B=64 / 256 37.7-38.0 / 129.4-129.5 us against 36.9-37.1 /
// 127.2-127.7), then two P buffers, the rows' factors of each (f32 [2][256]) and warpgroup 0's final m and l (f32
// [4][128]).
inline constexpr int kOffQ3 = 0, kOffK3 = kQSmemBlocks * kQBlock, kOffRaw3 = kOffK3 + kKBufs * kKBytes;
inline constexpr int kOffPtr3 = kOffRaw3 + kStages * kRawBytes;
inline constexpr int kOffP3 = kOffPtr3 + kPtrSlots * kT * 8, kOffAlpha3 = kOffP3 + 2 * kPBytes;
inline constexpr int kOffMl3 = kOffAlpha3 + 2 * 256 * 4, kSmemUsed3 = kOffMl3 + 4 * 128 * 4;
static_assert(kSmemUsed3 + 1024 + 256 <= 227 * 1024, "one CTA per SM (1024 B alignment slack, static shared)");
static_assert(kOffK3 % 1024 == 0 && kOffP3 % 512 == 0, "key buffers and P buffers on their swizzle atoms");
static_assert(kRegsWg0 + 2 * kRegsConv <= 168 * 3, "register budget");
// raw_bar arrivals per phase: one expect_tx per warpgroup-0 warp, one cp.async.mbarrier.arrive per its thread.
inline constexpr int kRawArrivals = 4 + 128;
static_assert(kKBufs == 3, "key buffers: tiles j - 2 (P·V), j - 1 (S), j (being converted)");

// K-major descriptor of a P buffer: 64-byte swizzle (layout type 2), 8-row atoms 512 bytes apart.
__device__ __forceinline__ uint64_t desc_p(uint32_t addr) {
  return static_cast<uint64_t>((addr >> 4) & 0x3FFFu) | (uint64_t{1} << 16) | (uint64_t{512 >> 4} << 32) |
         (uint64_t{2} << 62);
}

// P fragments pa (tile_softmax_p) into a P buffer at ps: the m16n8k16 A fragment of warp ww, lane (g, qd): pa[kk][v]
// holds keys 16 kk + 8 (v >> 1) + 2 qd, +1 of row 16 ww + g + 8 (v & 1); 16-byte chunk c of row r at chunk
// c ^ ((r >> 1) & 3).
__device__ __forceinline__ void store_p(uint8_t* ps, const uint32_t (&pa)[2][4], int ww, int lane) {
  const int g = lane >> 2, qd = lane & 3;
#pragma unroll
  for (int kk = 0; kk < 2; ++kk)
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const int r = 16 * ww + g + 8 * (v & 1), k = 16 * kk + 8 * (v >> 1) + 2 * qd;
      *reinterpret_cast<uint32_t*>(ps + r * 64 + (((k >> 3) ^ ((r >> 1) & 3)) << 4) + (k & 7) * 2) = pa[kk][v];
    }
}

// s[64 x 32] (+)= A[64 x 16] · B[32 x 16]ᵀ with A from registers (the m16n8k16 A fragment per warp) and B K-major in
// shared memory; s as in mma_s.
__device__ __forceinline__ void mma_s_rs(float (&d)[16], const uint32_t (&a)[4], uint64_t db, bool accumulate) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %21, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, {%16, %17, %18, %19}, %20, p, 1, 1, "
      "0;\n"
      "}\n"
      : DSV4_WG_ACC8(d, 0), DSV4_WG_ACC8(d, 8)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate ? 1 : 0));
}

__device__ __forceinline__ void wg0_sync() { asm volatile("bar.sync 2, 128;\n" ::: "memory"); }
// q's shared half stored by the converters (bar.arrive) before warpgroup 0's first S (bar.sync), all 384 threads.
__device__ __forceinline__ void q_sync() { asm volatile("bar.sync 3, 384;\n" ::: "memory"); }
__device__ __forceinline__ void q_arrive() { asm volatile("bar.arrive 3, 384;\n" ::: "memory"); }
// Warpgroup 0 loaded q's register half out of key buffer 2 (bar.arrive) before the converters write tile 2 there
// (bar.sync: at iteration 2, or after the loop when a CTA has no tile).
__device__ __forceinline__ void q_regs_loaded() { asm volatile("bar.arrive 4, 384;\n" ::: "memory"); }
__device__ __forceinline__ void q_regs_wait() { asm volatile("bar.sync 4, 384;\n" ::: "memory"); }

}  // namespace attn_wg3_detail

// Dynamic shared memory of sparse_attention_wg3_kernel (1024-byte alignment slack included).
inline constexpr size_t kAttnWg3Smem = size_t(attn_wg3_detail::kSmemUsed3) + 1024;
inline constexpr int kAttnWg3Threads = attn_wg3_detail::kThreads3;

// Profiling build (kProf, DSV4_ATTN_WG_PROF=1 with attn_wg3; measurement only): clock64 cycles per phase summed over
// CTAs by thread 0 of each warpgroup w, g_attn_wg3_prof[kAttnWg3ProfPhases · w + phase]; then tiles and CTAs.
// Warpgroup 0: 0 prologue (pointers, first copies, q), per tile 1 kfull wait, 2 raw copy issue + pointers, 3 S,
// 4 softmax, 5 pempty wait + P store; 6 epilogue. Warpgroups 1-2: 0 prologue, per iteration 1 pfull wait +
// rescale + P·V issue, 2 conversion of an Fp8Kv tile, 3 P·V wait, 4 pempty wait + raw wait, 5 conversion of a
// tile with f32 rows; 6 epilogue (0: q's shared half).
inline constexpr int kAttnWg3ProfPhases = 7;
inline constexpr int kAttnWg3ProfSlots = 3 * kAttnWg3ProfPhases + 2;
__device__ unsigned long long g_attn_wg3_prof[kAttnWg3ProfSlots];

// (An L2 prefetch of the tiles' f32 rows, one cp.async.bulk.prefetch per row beside the raw copies, was slower:
// run 168, B=64 / 256 39.0 / 132.5 us against 37.1 / 127.4;
// bench/results/h200_r168_attn_wg3_prefetch_experiment.patch.)
template <bool kProf>
__global__ void __launch_bounds__(attn_wg3_detail::kThreads3, 1)
    sparse_attention_wg3_kernel(const __grid_constant__ SparseAttnParams p) {
  __shared__ unsigned long long prof_s[3 * kAttnWg3ProfPhases];
  attn_wg_detail::WgPhaseProf<kProf, 3, kAttnWg3ProfPhases> prof(prof_s);
  auto mark = [&](int phase) { prof.mark(phase); };
  auto prof_flush = [&](int nt) { prof.flush(g_attn_wg3_prof, nt); };
  grid_dependency_sync();
  using namespace attn_wg3_detail;
  extern __shared__ __align__(16) unsigned char attn_wg3_smem_raw[];
  uint8_t* smem = moe_wg_align1024(attn_wg3_smem_raw);
  uint8_t* raw_s = smem + kOffRaw3;
  uint8_t* p_s = smem + kOffP3;
  float* alpha_s = reinterpret_cast<float*>(smem + kOffAlpha3);
  float* ml_s = reinterpret_cast<float*>(smem + kOffMl3);
  const float** ptr_s = reinterpret_cast<const float**>(smem + kOffPtr3);

  const int split = blockIdx.x, h0 = blockIdx.y * kH, qi = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31;
  const attn_wg_detail::SplitKeys sk(p, split, qi);
  const int kb = sk.kb, ke = sk.ke, nt = sk.nt;

  __shared__ bool all_fp8[kPtrSlots];
  __shared__ __align__(8) uint64_t raw_bar[kStages];
  __shared__ __align__(8) uint64_t kfull[kKBufs], pfull[2], pempty[2];
  if (tid == 0) {
    for (int st = 0; st < kStages; ++st) moe_wg_bar_init(moe_wg_smem_u32(&raw_bar[st]), kRawArrivals);
    for (int b = 0; b < kKBufs; ++b) moe_wg_bar_init(moe_wg_smem_u32(&kfull[b]), kConv);
    for (int b = 0; b < 2; ++b) {
      moe_wg_bar_init(moe_wg_smem_u32(&pfull[b]), 128);
      moe_wg_bar_init(moe_wg_smem_u32(&pempty[b]), kConv);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  const uint32_t k_addr = moe_wg_smem_u32(smem + kOffK3), p_addr = moe_wg_smem_u32(p_s);

  // The role as a warp-uniform value (a shuffle): wgmma in a branch the compiler cannot prove uniform gets
  // serialized (ptxas C7518).
  const int role = __shfl_sync(0xffffffffu, tid >> 7, 0);
  if (role == 0) {  // warpgroup 0: raw copies, S, softmax, P
    moe_wg_regs_dec<kRegsWg0>();
    mark(-1);
    const int ww = tid >> 5, qd = lane & 3;
    auto tile_ptr = [&](int j) { return sk.tile_ptr(j, lane); };
    // Tile j's rows into raw slot j % kStages (its pointers in ring slot j % kPtrSlots, published by wg0_sync).
    auto issue_raw = [&](int j) {
      if (j < nt)
        copy_raw_rows_bulk<8, true>(raw_s + (j % kStages) * kRawBytes, ptr_s + (j % kPtrSlots) * kT,
                                    moe_wg_smem_u32(&raw_bar[j % kStages]), ww, lane);
    };
    const float* next_ptr = nullptr;
    if (ww == 0) {  // pointers of tiles 0 .. kStages, and tile kStages + 1's in warp 0's register
#pragma unroll
      for (int j = 0; j <= kStages; ++j) put_tile_ptrs(ptr_s, all_fp8, j, tile_ptr(j), lane);
      next_ptr = tile_ptr(kStages + 1);
    }
    wg0_sync();
#pragma unroll
    for (int j = 0; j < kStages; ++j) issue_raw(j);
    uint32_t qa[kQRegSteps][4];
    {
      q_sync();  // the converters stored all of q as bf16 (and fenced its shared half for wgmma)
      // The register half from key buffer 2 (ldmatrix x4: rows 16 ww + lane % 16, units 2 st + lane / 16, so the
      // registers are the m16n8k16 A fragment), then that buffer is the converters' again (tile 2).
      const uint8_t* qb = smem + kOffK3 + 2 * kKBytes;
#pragma unroll
      for (int st = 0; st < kQRegSteps; ++st)
        attn_detail::ldmatrix_x4(qa[st], qb + swz(16 * ww + (lane & 15), 2 * st + (lane >> 4), kQBlock));
      q_regs_loaded();
    }
    const uint64_t dq = moe_wg_desc(moe_wg_smem_u32(smem + kOffQ3));
    mark(0);
    float s[16];
    uint32_t pa[2][4];
    float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
    const float sl2 = p.scale * 1.4426950408889634f;  // scale · log2 e
    for (int i = 0; i < nt; ++i) {
      moe_wg_bar_wait(moe_wg_smem_u32(&kfull[i % kKBufs]), uint32_t(i / kKBufs) & 1u);
      mark(1);
      // tile i converted by every converter: its raw slot and pointer slot are free for tiles i + kStages and
      // i + kStages + 1 (whose pointers were published by the previous iteration's wg0_sync)
      issue_raw(i + kStages);
      if (ww == 0) {
        put_tile_ptrs(ptr_s, all_fp8, i + kStages + 1, next_ptr, lane);
        next_ptr = tile_ptr(i + kStages + 2);
      }
      mark(2);
      moe_wg_fence();
      const uint64_t dk = moe_wg_desc(k_addr + (i % kKBufs) * kKBytes);
#pragma unroll
      for (int st = 0; st < kD / 16; ++st) {  // descriptor + (byte offset >> 4), as in tile_products
        const uint64_t bk = dk + (((st >> 2) * kKBlock + 32u * uint32_t(st & 3)) >> 4);
        if (st < kQRegSteps)
          mma_s_rs(s, qa[st], bk, st > 0);
        else
          mma_s(s, dq + ((((st >> 2) - kQRegSteps / 4) * kQBlock + 32u * uint32_t(st & 3)) >> 4), bk, true);
      }
      moe_wg_commit();
      moe_wg_wait<0>();
      moe_wg_fence_acc(s);
      mark(3);
      float alpha[2];
      tile_softmax_p(s, pa, m_run, l_run, alpha, kb + i * kT, ke, qd, sl2);
      wg0_sync();  // the new pointers visible to every warp of warpgroup 0 before the next iteration's copies
      mark(4);
      if (i >= 2) moe_wg_bar_wait(moe_wg_smem_u32(&pempty[i & 1]), uint32_t((i - 2) >> 1) & 1u);
      store_p(p_s + (i & 1) * kPBytes, pa, ww, lane);
      alpha_s[(i & 1) * 256 + tid] = alpha[0];
      alpha_s[(i & 1) * 256 + 128 + tid] = alpha[1];
      moe_wg_fence_async_smem();
      moe_wg_bar_arrive(moe_wg_smem_u32(&pfull[i & 1]));
      mark(5);
    }
    ml_s[tid] = m_run[0];
    ml_s[128 + tid] = m_run[1];
    ml_s[256 + tid] = l_run[0];
    ml_s[384 + tid] = l_run[1];
    __syncthreads();
    mark(6);
    prof_flush(nt);
    return;
  }

  // Warpgroups 1-2: converter thread c, warp cw (0-7), column half wg, warp ww within it.
  moe_wg_regs_inc<kRegsConv>();
  mark(-1);
  const int c = tid - 128, cw = c >> 5, wg = cw >> 2, ww = cw & 3, tw = c & 127;
  // Conversion: unit u of rows 4k + r_first (k < 8). Warps 0-6 take the 56 e4m3 units of every row (224 threads x
  // 8 = 32 rows x 56), warp 7 the 8 bf16 RoPE units, so no warp runs both paths (before, the warps of units 32-63
  // ran the e4m3 path and then the RoPE path: run 181's ~2,130 cycles per tile).
  constexpr int kCodeUnits = kNope / 8;
  static_assert(kCodeUnits * (kT / 8) == 7 * 32 && (kUnits - kCodeUnits) * (kT / 8) == 32, "7 + 1 converter warps");
  const int f = 32 * cw + lane;
  const int u = cw < 7 ? f % kCodeUnits : kCodeUnits + lane % 8, r_first = cw < 7 ? f / kCodeUnits : lane / 8;
  {  // all of q as bf16 while warpgroup 0 issues the first copies: unit h · 32 + c % 32 of heads 8k + c / 32 for
     // both halves h, every load issued before the first store. The shared half (units 2 kQRegSteps .. 63) into
     // q's shared blocks, the register half (units 0 .. 2 kQRegSteps - 1) into key buffer 2 in the same layout,
     // from which warpgroup 0 loads its A fragments. Before (run 180, B=256), warpgroup 0 loaded the register half
     // itself: 64 KB by 128 threads, a ~17.3 K-cycle prologue against the converters' ~5.4 K.
    constexpr int kQU = kD / 8 - 2 * kQRegSteps, kRows = kConv / kQU;
    static_assert(kQU == 32 && 2 * kQRegSteps == kQU && kH % kRows == 0, "q's halves: 32 units per row each");
    static_assert(kQSmemBlocks * kQBlock == kKBytes, "q's register half fills one key buffer");
    const float* qrow = p.q_rows[qi] + int64_t(h0) * kD;
    const int uc = c % kQU;
    float4 qx[2][kH / kRows][2];
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int k = 0; k < kH / kRows; ++k) {
        const float* src = qrow + (kRows * k + c / kQU) * kD + 8 * (kQU * h + uc);
        qx[h][k][0] = __ldg(reinterpret_cast<const float4*>(src));
        qx[h][k][1] = __ldg(reinterpret_cast<const float4*>(src + 4));
      }
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int k = 0; k < kH / kRows; ++k)
        *reinterpret_cast<uint4*>(smem + (h == 0 ? kOffK3 + 2 * kKBytes : kOffQ3) +
                                  swz(kRows * k + c / kQU, uc, kQBlock)) = bf16x8(qx[h][k][0], qx[h][k][1]);
    moe_wg_fence_async_smem();
    q_arrive();
  }
  auto convert = [&](int j) {  // tile j (raw slot landed) -> bf16 key buffer j % kKBufs; as the 2-WG kernel's
    uint8_t* kt = smem + kOffK3 + (j % kKBufs) * kKBytes;
    const uint8_t* slot = raw_s + (j % kStages) * kRawBytes;
    const float* const* ptrs = ptr_s + (j % kPtrSlots) * kT;
    if (all_fp8[j % kPtrSlots]) {  // every load first (u is this thread's for all 8 rows), then convert and store
      convert_fp8_tile(kt, slot, ptrs, u, r_first);
      return;
    }
    convert_mixed_tile<2>(kt, slot, ptrs, u, r_first);  // 2 rows' loads in flight (4 spilled: O stays live)
  };

  float o[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) o[i] = 0.0f;
  mark(0);
  // Iteration j: P·V of tile t = j - 2 issued, tile j converted while it runs. Key buffer j % 3 last held tile
  // j - 3: both converter warpgroups' P·V of it are done once pempty of tile j - 3 completed (a warpgroup may run
  // one iteration ahead of the other).
  for (int j = 0; j < nt + 2; ++j) {
    const int t = j - 2;
    if (t >= 0) {
      moe_wg_bar_wait(moe_wg_smem_u32(&pfull[t & 1]), uint32_t(t >> 1) & 1u);
      const float a[2] = {alpha_s[(t & 1) * 256 + tw], alpha_s[(t & 1) * 256 + 128 + tw]};
      rescale_o(o, a);
      moe_wg_fence();
      const uint32_t kv = k_addr + (t % kKBufs) * kKBytes + 4 * wg * kKBlock;
      const uint32_t pb = p_addr + (t & 1) * kPBytes;
#pragma unroll
      for (int kk = 0; kk < 2; ++kk) moe_wg_mma<1>(o, desc_p(pb + 32 * kk), desc_v(kv + kk * 2048));
      moe_wg_commit();
    }
    mark(1);
    if (j == 2) q_regs_wait();  // key buffer 2 held q's register half until warpgroup 0 loaded it
    if (j < nt) {
      if (j >= 3) moe_wg_bar_wait(moe_wg_smem_u32(&pempty[(j - 3) & 1]), uint32_t((j - 3) >> 1) & 1u);
      moe_wg_bar_wait(moe_wg_smem_u32(&raw_bar[j % kStages]), uint32_t(j / kStages) & 1u);
      mark(4);
      const bool fp8_tile = all_fp8[j % kPtrSlots];
      convert(j);
      moe_wg_fence_async_smem();
      moe_wg_bar_arrive(moe_wg_smem_u32(&kfull[j % kKBufs]));
      mark(fp8_tile ? 2 : 5);
    } else {
      mark(2);
    }
    moe_wg_wait<0>();  // unconditional (a no-op without a P·V in flight): a wait under a branch the compiler
    moe_wg_fence_acc(o);  // cannot tie to the issue's makes ptxas serialize every wgmma (C7518)
    if (t >= 0) moe_wg_bar_arrive(moe_wg_smem_u32(&pempty[t & 1]));
    mark(3);
  }
  if (nt == 0) q_regs_wait();  // (no iteration 2)
  __syncthreads();  // warpgroup 0's final m and l
  const float m_fin[2] = {ml_s[tw], ml_s[128 + tw]}, l_fin[2] = {ml_s[256 + tw], ml_s[384 + tw]};
  tile_store(p, o, m_fin, l_fin, qi, h0, split, wg, ww, lane);
  mark(6);
  prof_flush(nt);
}

}  // namespace dsv4::cuda
