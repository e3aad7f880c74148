// Engine: request validation, the engine loop and one continuous-batching step; see engine.h.
#include "runtime/engine.h"

#include "core/log.h"
#include "sampling/sampler.h"
#include "sampling/stop_checker.h"
#include "tokenizer/stream_decoder.h"

namespace dsv4::runtime {

struct Engine::Live {
  std::shared_ptr<RequestStream> stream;
  sampling::SamplingParams params;
  std::optional<sampling::SamplingState> state;
  std::optional<sampling::StopChecker> stop;
  std::optional<tokenizer::StreamDecoder> decoder;
  std::vector<int32_t> prompt;
  Usage usage;
};

Result<std::unique_ptr<Engine>> Engine::create(const EngineOptions& opts) {
  std::unique_ptr<Engine> e(new Engine());
  auto m = load_local_model(opts.model_dir, opts.numerics, opts.device, opts.progress);
  if (!m.ok()) return m.error();
  e->model_ = std::move(m.value());
  if (std::filesystem::exists(opts.model_dir / "tokenizer.json")) {
    auto t = tokenizer::Tokenizer::load(opts.model_dir);
    if (!t.ok()) return t.error();
    e->tokenizer_.emplace(std::move(t.value()));
  } else {
    log::warn(opts.model_dir.string() + " has no tokenizer.json: text output and stop strings are unavailable");
  }
  // Rows in the packed formats that hold the numerics' rounded values exactly (window rows stay f32).
  const RowFormat index_format = index_row_format(opts.numerics);
  const RowFormat kv_format = kv_row_format(opts.numerics, e->model_->cfg);
  auto layout = kv::make_layout(cache_shape(e->model_->cfg, index_format, kv_format));
  if (!layout.ok()) return layout.error();
  kv::Concurrency conc{.max_seqs = opts.max_running, .max_step_tokens = opts.max_tokens_per_step,
                       .prefix_share = opts.prefix_caching ? opts.prefix_cache_share : 0.0};
  int64_t kv_bytes = opts.kv_memory_bytes;
  if (opts.kv_memory_fraction > 0) {
    auto b = kv::resolve_budget(kv::BudgetFraction{opts.kv_memory_fraction}, free_memory_bytes(opts.device));
    if (!b.ok()) return make_error("KV memory: " + b.message());
    kv_bytes = *b;
  }
  auto sizes = kv::size_pools(*layout, kv_bytes, conc);
  if (!sizes.ok()) return make_error("KV memory " + std::to_string(kv_bytes) + " bytes: " + sizes.message());
  e->kv_ = std::make_unique<kv::HybridKvManager>(*layout, *sizes);
  if (opts.prefix_caching) {
    if (auto s = e->kv_->enable_prefix_cache(true); !s.ok()) return s.error();
    log::info("prefix caching: up to " + std::to_string(sizes->n_prefix_entries) + " cached pages of " +
              std::to_string(layout->page_tokens()) + " tokens");
  }
  e->store_ = std::make_unique<PagedKvStore>(e->model_->cfg, *layout, *sizes, opts.device, index_format, kv_format);
  e->kv_capacity_ = kv::tokens_that_fit(*layout, *sizes);
  scheduler::SchedulerConfig sc{.max_tokens_per_step = opts.max_tokens_per_step, .max_running = opts.max_running,
                                .max_prefill_chunk = opts.max_prefill_chunk};
  if (auto s = scheduler::validate(sc); !s.ok()) return s.error();
  e->sched_ = std::make_unique<scheduler::Scheduler>(sc, *e->kv_);
  if (opts.device == Device::Cuda && opts.device_sampling)
    e->device_sampler_ = std::make_unique<DeviceSampler>(e->model_->cfg.vocab_size);
  int64_t limit = std::min(e->model_->cfg.max_position_embeddings, e->kv_capacity_);
  e->max_model_len_ = opts.max_model_len > 0 ? std::min(opts.max_model_len, limit) : limit;
  log::info("KV cache: " + std::to_string(e->store_->bytes() >> 20) + " MiB, " + std::to_string(e->kv_capacity_) +
            " tokens fit; max model length " + std::to_string(e->max_model_len_));
  e->stats_.kv_pages_free = e->kv_->pool(kv::PoolKind::Compressed).n_free();  // before the first step too
  e->thread_ = std::thread([p = e.get()] { p->loop(); });
  return e;
}

Engine::~Engine() {
  {
    // Set under the loop's mutex: otherwise the loop can test its wait predicate, miss the flag and the
    // notification, and sleep forever (seen as a hang of `dsv4 run` exiting early on a bad prompt).
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<RequestId> Engine::submit(GenerateRequest req, std::shared_ptr<RequestStream> stream) {
  const model::ModelConfig& cfg = model_->cfg;
  if (auto s = validate_tokens(cfg, req.prompt); !s.ok()) return make_error("prompt: " + s.message());
  if (auto s = sampling::validate(req.params, cfg.vocab_size); !s.ok()) return s.error();
  int64_t need = static_cast<int64_t>(req.prompt.size()) + req.params.max_tokens;
  if (need > max_model_len_)
    return make_error("prompt of " + std::to_string(req.prompt.size()) + " tokens plus max_tokens " +
                      std::to_string(req.params.max_tokens) + " exceeds the maximum context of " +
                      std::to_string(max_model_len_) + " tokens");
  if (!req.params.stop.empty() && !tokenizer_) return make_error("stop strings need a model with a tokenizer");
  auto live = std::make_unique<Live>();
  live->stream = std::move(stream);
  live->params = req.params;
  live->state.emplace(live->params, req.prompt, sampling::resolve_seed(live->params));
  std::vector<int32_t> eos(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end());
  live->stop.emplace(live->params, eos);
  if (tokenizer_) live->decoder.emplace(*tokenizer_, tokenizer::DecodeOptions{.skip_special_tokens = req.skip_special_tokens});
  live->prompt = std::move(req.prompt);
  live->usage.prompt_tokens = static_cast<int64_t>(live->prompt.size());
  RequestId id = next_id_++;
  {
    std::lock_guard lk(mu_);
    pending_.emplace_back(id, std::move(live));
  }
  cv_.notify_all();
  return id;
}

bool Engine::cancel(RequestId id) {
  std::lock_guard lk(mu_);
  bool known = live_.count(id) != 0;
  for (auto& p : pending_) known = known || p.first == id;
  if (known) cancels_.push_back(id);
  cv_.notify_all();
  return known;
}

EngineStats Engine::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void Engine::finish(RequestId id, const std::string& reason) {
  std::unique_ptr<Live> l;
  {
    std::lock_guard lk(mu_);
    auto it = live_.find(id);
    if (it == live_.end()) return;
    l = std::move(it->second);
    live_.erase(it);
  }
  Event ev{.kind = EventKind::Finished, .id = id, .finish_reason = reason, .usage = l->usage};
  l->stream->push(std::move(ev));
}

void Engine::loop() {
  while (!stop_) {
    std::vector<std::pair<RequestId, std::unique_ptr<Live>>> incoming;
    std::vector<RequestId> cancels;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !pending_.empty() || !cancels_.empty() || sched_->has_work(); });
      if (stop_) break;
      incoming.swap(pending_);
      cancels.swap(cancels_);
    }
    for (auto& [id, live] : incoming) {
      scheduler::RequestSpec spec{.id = id, .prompt = live->prompt, .max_new_tokens = live->params.max_tokens};
      if (auto s = sched_->add_request(spec); !s.ok()) {
        live->stream->push({.kind = EventKind::Error, .id = id, .error = s.message()});
        continue;
      }
      std::lock_guard lk(mu_);
      live_.emplace(id, std::move(live));
    }
    for (RequestId id : cancels) sched_->cancel(id);
    step_once();
  }
  // Shutdown: end every live request.
  std::vector<RequestId> ids;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, l] : live_) ids.push_back(id);
  }
  for (RequestId id : ids) finish(id, "cancelled");
}

std::vector<sampling::SampleResult> Engine::sample(model::ForwardOutput& fo, std::span<const int64_t> logit_rows,
                                                  std::span<const sampling::SampleRow> rows) {
  if (!fo.logits.on_host()) return device_sampler_->sample(fo.logits, logit_rows, rows);
  const int64_t V = model_->cfg.vocab_size;
  HostTensor logits({static_cast<int64_t>(rows.size()), V});
  for (size_t k = 0; k < rows.size(); ++k)
    std::copy(fo.logits.row(logit_rows[k]), fo.logits.row(logit_rows[k]) + V, logits.row(static_cast<int64_t>(k)));
  sampling::Sampler sampler(V);
  return sampler.sample({.logits = TensorView{logits.data(), DType::F32, logits.shape()}, .rows = rows});
}

void Engine::step_once() {
  scheduler::StepPlan plan = sched_->step();
  for (const scheduler::Finished& f : plan.finished)
    finish(f.id, f.reason == scheduler::FinishReason::Length ? "length"
                 : f.reason == scheduler::FinishReason::Stop ? "stop" : "cancelled");
  scheduler::StepResult result;
  if (!plan.empty()) {
    model::ForwardBatch batch;
    std::vector<std::unique_ptr<model::SequenceCache>> views;
    for (const scheduler::ScheduledSeq& s : plan.seqs) {
      views.push_back(store_->view(*kv_, s.id, s.start));
      batch.chunks.push_back({.seq = views.back().get(), .row_begin = s.row_begin, .n_rows = s.n(), .pos0 = s.start});
      for (int64_t p = s.start; p < s.end; ++p) batch.pos.push_back(p);
    }
    batch.tokens = plan.input_ids;
    std::vector<std::pair<kv::PageId, kv::PageId>> restores, snapshots;  // prefix caching
    for (const scheduler::ScheduledSeq& s : plan.seqs) {
      if (s.restore_state != kv::kNoPage) restores.emplace_back(s.restore_state, kv_->pages(s.id).state);
      if (s.snapshot_state != kv::kNoPage) snapshots.emplace_back(kv_->pages(s.id).state, s.snapshot_state);
    }
    store_->copy_states(*model_->ops, restores);
    model::ForwardOutput fo;
    model_->transformer->forward(batch, {.logits_on_device = device_sampler_ != nullptr}, fo);
    store_->copy_states(*model_->ops, snapshots);
    std::vector<sampling::SampleRow> rows;
    std::vector<std::pair<size_t, Live*>> owners;  // chunk index, request
    for (size_t i = 0; i < plan.seqs.size(); ++i) {
      std::lock_guard lk(mu_);
      auto it = live_.find(plan.seqs[i].id);
      if (it == live_.end()) continue;
      if (plan.seqs[i].needs_logits) {
        owners.emplace_back(i, it->second.get());
      } else {
        Event ev{.kind = EventKind::Progress, .id = plan.seqs[i].id};
        ev.usage.prompt_tokens = plan.seqs[i].end;
        it->second->stream->push(std::move(ev));
      }
    }
    std::vector<int64_t> logit_rows;
    for (size_t k = 0; k < owners.size(); ++k) {
      logit_rows.push_back(static_cast<int64_t>(owners[k].first));
      rows.push_back({&owners[k].second->params, &*owners[k].second->state});
    }
    auto sampled = sample(fo, logit_rows, rows);
    for (size_t k = 0; k < owners.size(); ++k) {
      Live& l = *owners[k].second;
      const sampling::SampleResult& r = sampled[k];
      l.state->append(r.token);
      ++l.usage.completion_tokens;
      std::string delta;
      if (l.decoder) {
        auto d = l.decoder->push(r.token);
        if (d.ok()) delta = std::move(d.value());
      }
      sampling::StopResult st = l.stop->on_token(r.token, delta);
      Event ev{.kind = EventKind::Token, .id = plan.seqs[owners[k].first].id, .token_ids = {r.token}, .text = st.text};
      if (r.has_logprobs) ev.logprobs = TokenLogprobs{r.token, r.logprob, r.top_logprobs};
      l.stream->push(std::move(ev));
      result.sampled.push_back({.id = plan.seqs[owners[k].first].id, .token = r.token,
                                .stop = st.finish == sampling::FinishReason::kStop});
    }
  }
  sched_->commit(result);
  std::lock_guard lk(mu_);
  const kv::PagePool& pool = kv_->pool(kv::PoolKind::Compressed);
  stats_.waiting = sched_->n_waiting() + static_cast<int64_t>(pending_.size());
  stats_.running = sched_->n_running();
  const int64_t cached_only = kv_->reclaimable(kv::PoolKind::Compressed);  // prefix cache: evictable at will
  stats_.kv_pages_used = pool.n_pages() - pool.n_free() - cached_only;
  stats_.kv_pages_free = pool.n_free() + cached_only;
  const kv::PrefixCacheStats& pc = kv_->prefix_stats();
  stats_.prefix_cache_pages = pc.entries;
  stats_.prefix_queried_tokens = pc.queried_tokens;
  stats_.prefix_hit_tokens = pc.hit_tokens;
  stats_.prefix_evictions = pc.evictions;
  ++stats_.steps;
  stats_.preemptions += static_cast<int64_t>(plan.preempted.size());
}

}  // namespace dsv4::runtime
