// Synthetic caches; see cuda_bench_cache.h.
#include "cuda_bench_cache.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <random>

#include "backend/cuda/common/cuda_check.h"
#include "backend/cuda/ops/context.h"
#include "core/dtype.h"
#include "core/numerics.h"

namespace dsv4::bench {

namespace {

constexpr int64_t kRandomFloats = 16ll << 20;  // 64 MiB source block

int64_t entries(int64_t end_pos, int64_t ratio) { return ratio > 0 ? std::max<int64_t>(1, end_pos / ratio) : 0; }

// Allocates rows [0, n) of every compressed layer and fills window, compressed rows and indexer keys.
void prepare(const model::ModelConfig& cfg, model::SequenceState& s, int64_t end_pos, const RandomRows& rnd) {
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il) {
    const int64_t ratio = cfg.compress_ratio(il);
    if (s.kv_format() == RowFormat::Fp8Kv)
      rnd.fill_fp8kv(s.window_row(il, 0), cfg.sliding_window);
    else
      rnd.fill(s.window_row(il, 0), cfg.sliding_window * cfg.head_dim);
    if (ratio == 0) continue;
    const int64_t n = entries(end_pos, ratio);
    s.compressed_row(il, n - 1);  // one growth to the final size
    if (s.kv_format() == RowFormat::Fp8Kv)
      rnd.fill_fp8kv(s.compressed_row(il, 0), n);
    else
      rnd.fill(s.compressed_row(il, 0), n * cfg.head_dim);
    if (ratio == 4) {
      s.index_key_row(il, n - 1);
      rnd.fill_mxfp4(s.index_key_row(il, 0), n);
    }
  }
}

}  // namespace

RandomRows::RandomRows(uint64_t seed, const model::ModelConfig& cfg)
    : row_words_(mxfp4_row_bytes(cfg.index_head_dim) / 4),
      kv_words_(fp8kv_row_bytes(cfg.head_dim, cfg.qk_rope_head_dim) / 4) {
  const int64_t ihd = cfg.index_head_dim, d = cfg.head_dim, rope = cfg.qk_rope_head_dim;
  Tensor host({kRandomFloats});
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (float& v : host.vec()) v = uni(rng);
  const int64_t rows = std::min<int64_t>(kRandomFloats / ihd, int64_t{1} << 15);
  Tensor packed({rows, row_words_});
  for (int64_t r = 0; r < rows; ++r) fp4_pack_row(host.data() + r * ihd, static_cast<size_t>(ihd), packed.row(r));
  const bool fp8kv = (d - rope) % 64 == 0;
  const int64_t kv_rows = fp8kv ? std::min<int64_t>(kRandomFloats / d, int64_t{1} << 15) : 0;
  Tensor kv_packed({std::max<int64_t>(kv_rows, 1), kv_words_});
  std::vector<float> row(static_cast<size_t>(d));
  for (int64_t r = 0; r < kv_rows; ++r) {  // the FP8 KV rounding, then the lossless packing
    for (int64_t c = 0; c < d; ++c) row[static_cast<size_t>(c)] = round_bf16(host.data()[r * d + c]);
    fp8_fake_quant(row.data(), static_cast<size_t>(d - rope), 64);
    fp8kv_pack_row(row.data(), static_cast<size_t>(d), static_cast<size_t>(rope), kv_packed.row(r));
  }
  block_ = host.to(Device::Cuda);
  packed_ = packed.to(Device::Cuda);
  kv_packed_ = kv_packed.to(Device::Cuda);
}

void RandomRows::fill_fp8kv(float* dst, int64_t n_rows) const { repeat_rows(kv_packed_, kv_words_, dst, n_rows); }

void RandomRows::fill_mxfp4(float* dst, int64_t n_rows) const { repeat_rows(packed_, row_words_, dst, n_rows); }

void RandomRows::repeat_rows(const Tensor& src, int64_t words, float* dst, int64_t n_rows) {
  cudaStream_t s = cuda::CudaContext::get().stream();
  const int64_t block_rows = src.dim(0);
  for (int64_t off = 0; off < n_rows; off += block_rows) {
    const int64_t m = std::min(block_rows, n_rows - off);
    DSV4_CUDA_CHECK(cudaMemcpyAsync(dst + off * words, src.data(), static_cast<size_t>(m * words) * 4,
                                    cudaMemcpyDeviceToDevice, s));
  }
}

void RandomRows::fill(float* dst, int64_t n) const {
  cudaStream_t s = cuda::CudaContext::get().stream();
  for (int64_t off = 0; off < n; off += kRandomFloats) {
    const int64_t m = std::min(kRandomFloats, n - off);
    DSV4_CUDA_CHECK(cudaMemcpyAsync(dst + off, block_.data(), static_cast<size_t>(m) * sizeof(float),
                                    cudaMemcpyDeviceToDevice, s));
  }
}

int64_t sequence_bytes(const model::ModelConfig& cfg, int64_t end_pos, RowFormat kv_format) {
  const int64_t kv_words = row_bytes(kv_format, cfg.head_dim, cfg.qk_rope_head_dim) / 4;
  int64_t floats = 0;
  for (int64_t il = 0; il < cfg.num_hidden_layers; ++il) {
    const int64_t ratio = cfg.compress_ratio(il);
    floats += cfg.sliding_window * kv_words;
    if (ratio == 0) continue;
    const int64_t n = entries(end_pos, ratio);
    floats += n * kv_words + model::compressor_state_floats(ratio, (ratio == 4 ? 2 : 1) * cfg.head_dim);
    if (ratio == 4)
      floats += n * mxfp4_row_bytes(cfg.index_head_dim) / 4 + model::compressor_state_floats(4, 2 * cfg.index_head_dim);
  }
  return floats * static_cast<int64_t>(sizeof(float));
}

SequenceSet make_sequences(const model::ModelConfig& cfg, int64_t batch, int64_t end_pos, int64_t budget_bytes,
                           const RandomRows& rnd, RowFormat kv_format) {
  SequenceSet set;
  const int64_t per_seq = sequence_bytes(cfg, end_pos, kv_format);
  set.shared = batch > 1 && batch * per_seq > budget_bytes;
  const int64_t n_states = set.shared ? 1 : batch;
  for (int64_t i = 0; i < n_states; ++i) {
    set.states.push_back(std::make_unique<model::SequenceState>(cfg, Device::Cuda, RowFormat::Mxfp4, kv_format));
    prepare(cfg, *set.states.back(), end_pos, rnd);
  }
  for (int64_t i = 0; i < batch; ++i) {
    if (set.shared) {
      set.views.push_back(std::make_unique<SharedRowsCache>(*set.states[0]));
      set.seqs.push_back(set.views.back().get());
    } else {
      set.seqs.push_back(set.states[static_cast<size_t>(i)].get());
    }
  }
  set.bytes = n_states * per_seq;
  cuda::CudaContext::get().sync();
  return set;
}

void trim_device_pool() {
  cuda::CudaContext::get().sync();
  cudaMemPool_t pool;
  DSV4_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, 0));
  DSV4_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
}

int64_t device_free_bytes() {
  size_t free_b = 0, total_b = 0;
  DSV4_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return static_cast<int64_t>(free_b);
}

}  // namespace dsv4::bench
