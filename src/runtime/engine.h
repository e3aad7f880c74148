// Engine: the serving engine behind the CLI and the server. submit() validates a request and queues it;
// an engine loop on its own thread runs continuous batching: Scheduler::step() → one batched forward over
// the paged KV store (chunked prefills mixed with decodes) → sampling → stop checks → Scheduler::commit(),
// and streams Events to each request's RequestStream. cancel() may be called at any time from any thread.
#pragma once
#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backend/ops.h"
#include "core/result.h"
#include "kv/hybrid_kv_manager.h"
#include "runtime/device_sampler.h"
#include "runtime/events.h"
#include "runtime/local_model.h"
#include "runtime/paged_cache.h"
#include "scheduler/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::runtime {

struct EngineOptions {
  std::filesystem::path model_dir;
  backend::Numerics numerics;
  Device device = Device::Host;                // backend: CPU reference or CUDA
  LoadProgress progress;                       // weight upload progress (device backends)
  int64_t kv_memory_bytes = int64_t{1} << 30;  // budget for the paged KV pools
  double kv_memory_fraction = 0;               // > 0: that share of the device's free memory after the weights
                                               // are loaded, instead of kv_memory_bytes
  int64_t max_running = 16;                    // sequences holding KV at once
  int64_t max_tokens_per_step = 512;           // token budget of one step
  int64_t max_prefill_chunk = 256;             // prompt tokens of one request per step
  int64_t max_model_len = 0;                   // prompt + generated tokens; 0 = min(config limit, KV capacity)
  bool prefix_caching = false;                 // reuse the KV of cached whole-page prompt prefixes
  double prefix_cache_share = 0.25;            // with prefix_caching: share of the KV memory left after the
                                               // running sequences' window and state for cached pages
  bool device_sampling = true;                 // on Device::Cuda, sample on the GPU (DeviceSampler); false copies
                                               // the logits to the host and runs sampling::Sampler (same tokens)
};

struct EngineStats {
  int64_t waiting = 0, running = 0;
  int64_t kv_pages_used = 0, kv_pages_free = 0;  // compressed pool
  int64_t steps = 0;
  int64_t preemptions = 0;                      // requests preempted (freed, recomputed later) so far
  int64_t prefix_cache_pages = 0;               // prefix caching: cached pages (their pages count as free above)
  int64_t prefix_queried_tokens = 0, prefix_hit_tokens = 0, prefix_evictions = 0;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(const EngineOptions& opts);
  ~Engine();

  // Validates and queues; the error names what is wrong (prompt too long, bad sampling value, ...).
  Result<RequestId> submit(GenerateRequest req, std::shared_ptr<RequestStream> stream);
  // Cancels a live request; its stream gets a Finished("cancelled") event. False for an unknown id.
  bool cancel(RequestId id);
  EngineStats stats() const;

  const model::ModelConfig& config() const { return model_->cfg; }
  const tokenizer::Tokenizer* tokenizer() const { return tokenizer_ ? &*tokenizer_ : nullptr; }
  int64_t max_model_len() const { return max_model_len_; }
  int64_t kv_tokens_capacity() const { return kv_capacity_; }

 private:
  struct Live;
  Engine() = default;
  void loop();
  void step_once();
  // One result per owner row of fo.logits (host or device), in order.
  std::vector<sampling::SampleResult> sample(model::ForwardOutput& fo, std::span<const int64_t> logit_rows,
                                             std::span<const sampling::SampleRow> rows);
  void finish(RequestId id, const std::string& reason);

  std::unique_ptr<LocalModel> model_;
  std::optional<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<kv::HybridKvManager> kv_;
  std::unique_ptr<PagedKvStore> store_;
  std::unique_ptr<scheduler::Scheduler> sched_;
  std::unique_ptr<DeviceSampler> device_sampler_;  // set when the model runs on CUDA with device_sampling
  int64_t max_model_len_ = 0, kv_capacity_ = 0;

  mutable std::mutex mu_;                 // guards pending_, cancels_, stats_, live_ membership
  std::condition_variable cv_;
  std::vector<std::pair<RequestId, std::unique_ptr<Live>>> pending_;
  std::vector<RequestId> cancels_;
  std::unordered_map<RequestId, std::unique_ptr<Live>> live_;
  EngineStats stats_;
  std::atomic<RequestId> next_id_{1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace dsv4::runtime
