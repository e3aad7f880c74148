// LocalModel: a loaded model ready to run on a backend (CPU reference or CUDA): validated config, bound weights (mmapped),
// the backend ops with the chosen numerics, and the Transformer. Plus greedy generation for one sequence,
// used by `dsv4 generate` and the golden tests.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <memory>
#include <span>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "model/config.h"
#include "model/sequence_state.h"
#include "model/transformer.h"
#include "weights/model_weights.h"

namespace dsv4::runtime {

struct LocalModel {
  model::ModelConfig cfg;
  weights::ModelWeights weights;
  std::unique_ptr<backend::Ops> ops;
  std::unique_ptr<model::Transformer> transformer;
};

// Upload progress of the weights to a device: bytes done, bytes total.
using LoadProgress = std::function<void(int64_t done, int64_t total)>;

// Loads config and weights and builds the backend of `device` (Device::Cuda needs a build with
// -DDSV4_CUDA=ON: otherwise an error says so). On a device all weights are uploaded before this returns.
Result<std::unique_ptr<LocalModel>> load_local_model(const std::filesystem::path& dir, backend::Numerics numerics,
                                                     Device device = Device::Host,
                                                     const LoadProgress& progress = {});
// "cpu" | "cuda".
Result<Device> parse_device(const std::string& s);
// Whether this build has the CUDA backend.
bool cuda_available();
// Memory available for new allocations on `device`: MemAvailable of /proc/meminfo for the host, the free
// memory the CUDA driver reports for the GPU (after whatever this process already holds, e.g. the weights).
int64_t free_memory_bytes(Device device);

// Checks token ids against the vocabulary; the error names the first bad id and its index.
Status validate_tokens(const model::ModelConfig& cfg, std::span<const int32_t> tokens);

// Logits of every position of `tokens` (f32 [n, vocab]) from a fresh sequence. With chunk > 0 the prompt
// is fed in chunks of that many tokens (chunked prefill); the result is the same.
HostTensor all_logits(LocalModel& m, std::span<const int32_t> tokens, int64_t chunk = 0);

// MTP logits (spec §8) for a fresh sequence: row t (t < n-1) combines the main model's final streams at
// position t with token t+1 and predicts token t+2. f32 [n-1, vocab]. Requires an MTP block.
Result<HostTensor> mtp_logits(LocalModel& m, std::span<const int32_t> tokens);

// Greedy continuation: prefill `prompt` then n_new decode steps; returns the new ids (stops at no EOS).
std::vector<int32_t> generate_greedy(LocalModel& m, std::span<const int32_t> prompt, int64_t n_new);

}  // namespace dsv4::runtime
