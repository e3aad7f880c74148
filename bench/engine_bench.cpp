// Engine benchmark on the CPU: tokens/s of prefill and of decode at several batch sizes, through the real
// serving path (scheduler, paged KV store, batched forward, sampler), plus peak resident memory.
// Usage: engine_bench MODEL_DIR [--batches 1,8,32] [--prompt 256] [--gen 64] [--prefix-cache 1]
// --prefix-cache 1: instead, time to first token of one --prompt request with prefix caching, cold and then
// again with the same prompt (its whole pages cached).
// Prefill time: from submitting B requests together until every one has its first token (prompts run in
// chunks of --chunk tokens mixed under the step budget). Decode: from then until all have --gen tokens.
// Results go to docs/perf.md; this is never a timed unit test.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/engine.h"

using namespace dsv4;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(std::stoll(x));
  return v;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

struct Timing {
  double prefill_s = 0, decode_s = 0;
};

Timing run_batch(runtime::Engine& eng, int64_t B, int64_t P, int64_t G, uint64_t seed) {
  std::mt19937_64 rng(seed);
  int64_t V = eng.config().vocab_size;
  std::vector<std::shared_ptr<runtime::RequestStream>> streams;
  auto t0 = Clock::now();
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> prompt(static_cast<size_t>(P));
    for (auto& t : prompt) t = static_cast<int32_t>(16 + rng() % static_cast<uint64_t>(V - 16));
    sampling::SamplingParams p;
    p.temperature = 0;
    p.max_tokens = static_cast<int32_t>(G);
    p.ignore_eos = true;
    streams.push_back(std::make_shared<runtime::RequestStream>());
    auto id = eng.submit({.prompt = prompt, .params = p}, streams.back());
    if (!id.ok()) std::fprintf(stderr, "submit: %s\n", id.message().c_str());
  }
  std::vector<int64_t> got(static_cast<size_t>(B), 0);
  std::vector<bool> done(static_cast<size_t>(B), false);
  Clock::time_point first_all{};
  int64_t n_first = 0, n_done = 0;
  while (n_done < B) {
    for (int64_t b = 0; b < B; ++b) {
      runtime::Event e;
      while (!done[b] && streams[b]->next(e, std::chrono::milliseconds(0))) {
        if (e.kind == runtime::EventKind::Token && got[b]++ == 0 && ++n_first == B) first_all = Clock::now();
        if (e.final()) {
          done[b] = true;
          ++n_done;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  auto t1 = Clock::now();
  return {std::chrono::duration<double>(first_all - t0).count(), std::chrono::duration<double>(t1 - first_all).count()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: engine_bench MODEL_DIR [--batches 1,8,32] [--prompt 256] [--gen 64] [--chunk 256]\n");
    return 2;
  }
  std::string dir = argv[1];
  std::vector<int64_t> batches{1, 8, 32};
  int64_t P = 256, G = 64, chunk = 256, prefix = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--batches") batches = parse_list(v);
    else if (k == "--prompt") P = std::stoll(v);
    else if (k == "--gen") G = std::stoll(v);
    else if (k == "--chunk") chunk = std::stoll(v);
    else if (k == "--prefix-cache") prefix = std::stoll(v);
  }
  if (prefix != 0) {
    auto e = runtime::Engine::create({.model_dir = dir, .numerics = backend::Numerics{},
                                      .kv_memory_bytes = int64_t{512} << 20, .max_running = 1,
                                      .max_tokens_per_step = chunk, .max_prefill_chunk = chunk, .prefix_caching = true});
    if (!e.ok()) {
      std::fprintf(stderr, "error: %s\n", e.message().c_str());
      return 1;
    }
    run_batch(*e.value(), 1, 32, 4, 1);  // warm-up
    const Timing cold = run_batch(*e.value(), 1, P, 2, 3);
    const Timing warm = run_batch(*e.value(), 1, P, 2, 3);
    std::printf("| prompt | cold TTFT ms | warm TTFT ms | cached tokens |\n|---|---|---|---|\n");
    std::printf("| %lld | %.1f | %.1f | %lld |\n", static_cast<long long>(P), 1000.0 * cold.prefill_s,
                1000.0 * warm.prefill_s, static_cast<long long>(e.value()->stats().prefix_hit_tokens));
    return 0;
  }
  std::printf("| batch | prompt | gen | prefill tok/s | decode tok/s (all sequences) | decode ms/step | peak RSS MiB |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int64_t B : batches) {
    auto e = runtime::Engine::create({.model_dir = dir, .numerics = backend::Numerics{},
                                      .kv_memory_bytes = int64_t{512} << 20, .max_running = std::max<int64_t>(B, 1),
                                      .max_tokens_per_step = std::max<int64_t>(chunk, B), .max_prefill_chunk = chunk});
    if (!e.ok()) {
      std::fprintf(stderr, "error: %s\n", e.message().c_str());
      return 1;
    }
    run_batch(*e.value(), B, 32, 4, 1);  // warm-up
    Timing r = run_batch(*e.value(), B, P, G, 2);
    double steps = static_cast<double>(G - 1);
    std::printf("| %lld | %lld | %lld | %.1f | %.1f | %.2f | %.0f |\n", static_cast<long long>(B),
                static_cast<long long>(P), static_cast<long long>(G), static_cast<double>(B * P) / r.prefill_s,
                static_cast<double>(B * (G - 1)) / r.decode_s, 1000.0 * r.decode_s / steps, peak_rss_mib());
    std::fflush(stdout);
  }
  return 0;
}
