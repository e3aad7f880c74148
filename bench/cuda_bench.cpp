// GPU benchmark of the CUDA backend at DeepSeek-V4-Flash shapes (issue 6, item 6). Random weights in the
// checkpoint dtypes (cuda_bench_model.h), one layer of each kind by default (ratio 0 SWA, 4 CSA, 128 HCA),
// the real forward (model::Transformer over CudaOps, official numerics), timed per layer kind by
// ProfilingOps (cuda_bench_profiling.h) and compared with floors from ceilings measured in the same run:
//   decode   batch B at context C (caches filled synthetically, cuda_bench_cache.h): time per layer of each
//            kind; floor = bytes that must be read once / HBM copy rate, bytes = the layer's attention-side
//            weights + the shared expert + the distinct routed experts expected for B tokens
//            (256 * (1 - (1 - 6/256)^B), uniform routing) + the KV rows the step reads (f32 rows, as stored);
//   prefill  a prompt of P tokens in chunks of --chunk tokens continuing one sequence: chunks at the start,
//            middle and end of the prompt are timed on synthetic caches, the rest interpolated linearly
//            (the chunk cost is affine in its start: HCA keys, indexer candidates); floor = FLOPs / rate with
//            FP8/MXFP4 linears at the FP8 rate and everything else (attention, indexer, bf16/f32 linears) at
//            the bf16 rate;
//   model    the full 43-layer Flash step = embed+head + 2 SWA + 21 CSA + 20 HCA layers (spec compress_ratios).
// Usage: dsv4_cuda_bench [--quick] [--layers 0,4,128] [--batches 1,8,64,256] [--contexts 4K,64K,1M]
//                        [--prefill 8K,128K] [--chunk 8K] [--out results.csv] [--budget-s 200] [--seed N]
// Exit code 77 without a CUDA device. Results go to docs/perf.md; this is never a timed unit test.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "backend/cuda/sampling/cuda_sampler.h"
#include "cuda_bench_cache.h"
#include "cuda_bench_ceilings.h"
#include "cuda_bench_model.h"
#include "cuda_bench_profiling.h"
#include "cuda_bench_report.h"
#include "model/transformer.h"

using namespace dsv4;
using namespace dsv4::bench;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::vector<int64_t> layers{0, 4, 128};
  std::vector<int64_t> batches{1, 8, 64, 256};
  std::vector<int64_t> contexts{4096, 65536, 1048576};
  std::vector<int64_t> prefill{8192, 131072};
  std::vector<int64_t> op_batches{1, 64};  // per-op profile of the decode at the first context
  int64_t chunk = 8192;
  std::string out;
  double budget_s = 200;  // no new condition starts after this many seconds from the program start
  double reserve_gib = 20;  // device memory kept free for activations when sizing the synthetic caches
  uint64_t seed = 20261128;
  bool quick = false;
  std::string graphs = "on";  // decode steps: on (CUDA graphs), off (eager), ab (eager, then graphs)
  std::string kv_rows = "fp8";  // compressed KV rows of the synthetic caches: fp8 (Fp8Kv, the engine's) or f32
};

// "4K" = 4096, "1M" = 1048576, plain numbers as they are.
int64_t parse_count(const std::string& s) {
  size_t used = 0;
  const long long v = std::stoll(s, &used);
  const std::string suffix = s.substr(used);
  if (suffix == "K" || suffix == "k") return v * 1024;
  if (suffix == "M" || suffix == "m") return v * 1024 * 1024;
  if (!suffix.empty()) throw std::invalid_argument("bad count " + s);
  return v;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) v.push_back(parse_count(x));
  return v;
}

bool parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--quick") {
      o.quick = true;
      o.batches = {1, 64};
      o.contexts = {4096};
      o.prefill = {8192};
    } else if (a == "--layers") {
      o.layers = parse_list(val());
    } else if (a == "--batches") {
      o.batches = parse_list(val());
    } else if (a == "--contexts") {
      o.contexts = parse_list(val());
    } else if (a == "--prefill") {
      o.prefill = parse_list(val());
    } else if (a == "--op-batches") {
      o.op_batches = parse_list(val());
    } else if (a == "--chunk") {
      o.chunk = parse_count(val());
    } else if (a == "--out") {
      o.out = val();
    } else if (a == "--budget-s") {
      o.budget_s = std::stod(val());
    } else if (a == "--reserve-gib") {
      o.reserve_gib = std::stod(val());
    } else if (a == "--seed") {
      o.seed = std::stoull(val());
    } else if (a == "--graphs") {
      o.graphs = val();
      if (o.graphs != "on" && o.graphs != "off" && o.graphs != "ab")
        throw std::invalid_argument("--graphs takes on, off or ab");
    } else if (a == "--kv-rows") {
      o.kv_rows = val();
      if (o.kv_rows != "fp8" && o.kv_rows != "f32") throw std::invalid_argument("--kv-rows takes fp8 or f32");
    } else {
      std::fprintf(stderr,
                   "usage: dsv4_cuda_bench [--quick] [--layers 0,4,128] [--batches 1,8,64,256] "
                   "[--contexts 4K,64K,1M] [--prefill 8K,128K] [--chunk 8K] [--op-batches 1,64] [--out FILE.csv] "
                   "[--budget-s 200] [--reserve-gib 20] [--seed N] [--graphs on|off|ab] [--kv-rows fp8|f32]\n");
      return false;
    }
  }
  for (int64_t r : o.layers)
    if (r != 0 && r != 4 && r != 128) throw std::invalid_argument("--layers takes compress ratios 0, 4, 128");
  if (o.layers.empty() || o.chunk <= 0) throw std::invalid_argument("--layers and --chunk must not be empty/zero");
  return true;
}

std::string fmt_double(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f", v);
  return b;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Medians of a timed run: wall ms per step and ms per segment ([embed, block 0..n-1, head]).
struct StepTimes {
  double wall_ms = 0;
  std::vector<double> seg_ms;
  int steps = 0;
};

class Bench {
 public:
  // t0: the program start (the time budget covers setup too).
  Bench(const Options& o, BenchModel& m, backend::CudaOps& cuda_ops, ProfilingOps& prof, const Ceilings& c, Report& rep,
        Clock::time_point t0)
      : o_(o), m_(m), cfg_(m.cfg()), cuda_ops_(cuda_ops), prof_(prof), tf_(m.cfg(), m.weights(), prof), ceil_(c),
        rep_(rep),
        rnd_(o.seed + 7, m.cfg()), rng_(o.seed + 3), t0_(t0) {}

  void decode(int64_t ctx, int64_t batch);
  void prefill(int64_t prompt);
  bool over_budget(const std::string& what);

 private:
  // Compressed KV rows of the synthetic caches (--kv-rows): Fp8Kv, the engine's store with the FP8 KV cache.
  RowFormat kv_format() const { return o_.kv_rows == "f32" ? RowFormat::F32 : RowFormat::Fp8Kv; }
  StepTimes time_steps(const std::function<void(int)>& prepare, const std::function<void()>& run, int warmup,
                       int max_steps, double min_s);
  void profile_ops(const std::function<void(int)>& prepare, const std::function<void()>& run, Row base);
  void report_decode(const StepTimes& t, const Row& base);
  void report_prefill(int64_t prompt, int64_t n_chunks, const std::vector<int64_t>& measure,
                      const std::map<int64_t, std::vector<double>>& seg_at);
  // Median ms per layer of each kind present (mean over the blocks of that kind).
  std::map<int64_t, double> per_kind(const StepTimes& t) const;
  double embed_head_ms(const StepTimes& t) const { return t.seg_ms.front() + t.seg_ms.back(); }
  int64_t kv_bytes(int64_t ratio, int64_t ctx) const;
  double attention_flops(int64_t ratio, int64_t begin, int64_t end) const;
  int first_layer(int64_t ratio) const;
  std::vector<int32_t> tokens(int64_t n);
  int64_t cache_budget() const;

  const Options& o_;
  cuda::CudaSampler sampler_;  // decode steps end as the engine's do: greedy sampling on the device logits
  BenchModel& m_;
  const model::ModelConfig& cfg_;
  backend::CudaOps& cuda_ops_;
  ProfilingOps& prof_;
  model::Transformer tf_;
  Ceilings ceil_;
  Report& rep_;
  RandomRows rnd_;
  std::mt19937_64 rng_;
  Clock::time_point t0_;
};

bool Bench::over_budget(const std::string& what) {
  const double s = std::chrono::duration<double>(Clock::now() - t0_).count();
  if (s < o_.budget_s) return false;
  rep_.note("skipped (time budget of " + std::to_string(static_cast<int>(o_.budget_s)) + " s spent): " + what);
  std::printf("[cuda_bench] skipped (time budget): %s\n", what.c_str());
  return true;
}

std::vector<int32_t> Bench::tokens(int64_t n) {
  std::uniform_int_distribution<int32_t> d(2, static_cast<int32_t>(cfg_.vocab_size - 1));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng_);
  return t;
}

int64_t Bench::cache_budget() const {
  trim_device_pool();
  return std::max<int64_t>(0, device_free_bytes() - static_cast<int64_t>(o_.reserve_gib * (1ull << 30)));
}

int Bench::first_layer(int64_t ratio) const {
  for (int64_t il = 0; il < cfg_.num_hidden_layers; ++il)
    if (cfg_.compress_ratio(il) == ratio) return static_cast<int>(il);
  return -1;
}

StepTimes Bench::time_steps(const std::function<void(int)>& prepare, const std::function<void()>& run, int warmup,
                            int max_steps, double min_s) {
  auto one = [&](int i, std::vector<double>* seg) {
    prepare(i);
    prof_.begin_step();
    const auto a = Clock::now();
    run();  // returns with the stream idle (decode: the sampled tokens, prefill: the logits reached the host)
    const double wall = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
    prof_.end_step();
    std::vector<double> s = prof_.collect();
    if (seg) *seg = std::move(s);
    return wall;
  };
  int i = 0;
  for (int w = 0; w < warmup; ++w)
    if (one(i++, nullptr) > 5000.0) break;  // a very slow step: one warm-up is enough
  std::vector<double> walls;
  std::vector<std::vector<double>> segs;
  const auto start = Clock::now();
  while (static_cast<int>(walls.size()) < max_steps) {
    std::vector<double> seg;
    walls.push_back(one(i++, &seg));
    segs.push_back(std::move(seg));
    if (std::chrono::duration<double>(Clock::now() - start).count() >= min_s) break;
  }
  StepTimes t;
  t.steps = static_cast<int>(walls.size());
  t.wall_ms = median(walls);
  t.seg_ms.assign(segs.front().size(), 0.0);
  for (size_t k = 0; k < t.seg_ms.size(); ++k) {
    std::vector<double> v;
    for (const auto& s : segs) v.push_back(s[k]);
    t.seg_ms[k] = median(v);
  }
  return t;
}

std::map<int64_t, double> Bench::per_kind(const StepTimes& t) const {
  std::map<int64_t, std::pair<double, int>> acc;
  for (int64_t il = 0; il < cfg_.num_hidden_layers; ++il) {
    auto& a = acc[cfg_.compress_ratio(il)];
    a.first += t.seg_ms[static_cast<size_t>(1 + il)];
    a.second += 1;
  }
  std::map<int64_t, double> out;
  for (const auto& [r, a] : acc) out[r] = a.first / a.second;
  return out;
}

void Bench::profile_ops(const std::function<void(int)>& prepare, const std::function<void()>& run, Row base) {
  prof_.set_mode(ProfilingOps::Mode::Ops);
  time_steps(prepare, run, 1, 1, 0.0);  // warm the event pool
  prof_.reset_ops();
  const StepTimes t = time_steps(prepare, run, 0, 3, 1e9);  // exactly 3 steps
  prof_.set_mode(ProfilingOps::Mode::Layers);
  std::vector<std::pair<std::pair<std::string, std::string>, ProfilingOps::OpTotal>> v(prof_.op_totals().begin(),
                                                                                       prof_.op_totals().end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.first.first != b.first.first ? a.first.first < b.first.first : a.second.ms > b.second.ms;
  });
  for (const auto& [key, tot] : v) {
    Row r = base;
    r.section = "op";
    r.kind = key.first;
    r.op = key.second;
    r.ms = tot.ms / t.steps;
    r.calls = static_cast<double>(tot.calls) / t.steps;
    r.host_ms = tot.host_ms / t.steps;
    rep_.add(r);
  }
}


int64_t Bench::kv_bytes(int64_t ratio, int64_t ctx) const {
  // As stored by the engine: window and compressed rows in the --kv-rows format, Mxfp4 indexer keys.
  const int64_t d = cfg_.head_dim, W = cfg_.sliding_window;
  const int64_t row = row_bytes(kv_format(), d, cfg_.qk_rope_head_dim);
  int64_t bytes = std::min(W, ctx) * row;
  if (ratio == 4) bytes += std::min(cfg_.index_topk, ctx / 4) * row + (ctx / 4) * mxfp4_row_bytes(cfg_.index_head_dim);
  if (ratio == 128) bytes += (ctx / 128) * row;
  return bytes;
}

double Bench::attention_flops(int64_t ratio, int64_t begin, int64_t end) const {
  const double H = static_cast<double>(cfg_.num_attention_heads), d = static_cast<double>(cfg_.head_dim);
  const double ix = 2.0 * static_cast<double>(cfg_.index_n_heads * cfg_.index_head_dim);
  double f = 0;
  for (int64_t p = begin; p < end; ++p) {
    int64_t keys = std::min(cfg_.sliding_window, p + 1);
    if (ratio == 4) {
      keys += std::min(cfg_.index_topk, (p + 1) / 4);
      f += ix * static_cast<double>((p + 1) / 4);  // indexer scores
    }
    if (ratio == 128) keys += (p + 1) / 128;
    f += 4.0 * H * d * static_cast<double>(keys);  // q·k and p·v, K = V
  }
  return f;
}

void Bench::decode(int64_t ctx, int64_t batch) {
  const std::string what = "decode B=" + std::to_string(batch) + " ctx=" + std::to_string(ctx);
  if (over_budget(what)) return;
  std::printf("[cuda_bench] %s\n", what.c_str());
  std::fflush(stdout);
  SequenceSet set = make_sequences(cfg_, batch, ctx, cache_budget(), rnd_, kv_format());
  const std::string cache = set.shared ? "shared" : "per-seq";
  model::ForwardBatch fb;
  model::ForwardOutput out;
  auto prepare = [&](int i) {
    const int64_t pos = std::max<int64_t>(0, ctx - 4 + (i % 4));
    fb = {};
    fb.tokens = tokens(batch);
    for (int64_t k = 0; k < batch; ++k) {
      set.seqs[static_cast<size_t>(k)]->n_past = pos;
      fb.pos.push_back(pos);
      fb.chunks.push_back({.seq = set.seqs[static_cast<size_t>(k)], .row_begin = k, .n_rows = 1, .pos0 = pos});
    }
  };
  std::vector<cuda::SampleRowParams> greedy(static_cast<size_t>(batch));
  for (int64_t k = 0; k < batch; ++k) greedy[static_cast<size_t>(k)] = {.logits_row = k, .greedy = 1};
  std::vector<double> host_fwd;  // host time in Transformer::forward per step (returns once all is queued)
  auto run = [&] {
    const auto a = Clock::now();
    tf_.forward(fb, {.logits_on_device = true}, out);
    host_fwd.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    sampler_.sample(out.logits, greedy, {});  // downloads the B tokens: the stream is idle after it
  };
  // Graphs: the first step at a batch size runs eagerly and each of the 4 positions of the cycle has its own
  // segment topologies (the compressors emit at different steps), so more warm-up steps.
  const bool graphs = cuda::kernel_paths().graphs;
  const cuda::GraphStats g0 = cuda_ops_.graph_stats();
  const StepTimes t = time_steps(prepare, run, graphs ? 6 : 2, 10, 0.5);
  const cuda::GraphStats g1 = cuda_ops_.graph_stats();
  Row base;
  base.batch = batch;
  base.context = ctx;
  base.cache = cache + (graphs ? ", graphs" : ", eager");
  report_decode(t, base);
  {
    std::vector<double> last(host_fwd.end() - std::min<size_t>(host_fwd.size(), t.steps), host_fwd.end());
    char b[160];
    std::snprintf(b, sizeof(b), "%s (%s): host time in forward %.3f ms per step (median), step wall %.3f ms",
                  what.c_str(), graphs ? "graphs" : "eager", median(last), t.wall_ms);
    rep_.note(b);
  }
  if (graphs) {
    std::string n = what + ": " + std::to_string(g1.graph_steps - g0.graph_steps) + " graph steps, " +
                    std::to_string(g1.launches - g0.launches) + " segment launches, " +
                    std::to_string(g1.instantiated - g0.instantiated) + " instantiated, " +
                    std::to_string(g1.updated - g0.updated) + " updated, " +
                    std::to_string(g1.update_failed - g0.update_failed) + " updates refused, " +
                    std::to_string((g1.nodes - g0.nodes) / std::max<int64_t>(1, g1.launches - g0.launches)) +
                    " nodes per segment";
    const double steps = static_cast<double>(std::max<int64_t>(1, g1.graph_steps - g0.graph_steps));
    char b[320];
    std::snprintf(b, sizeof(b),
                  "; host ms per graph step: issuing ops %.3f, end capture %.3f, update %.3f, instantiate %.3f, "
                  "launch %.3f, destroy %.3f",
                  (g1.capture_ms - g0.capture_ms) / steps, (g1.end_capture_ms - g0.end_capture_ms) / steps,
                  (g1.update_ms - g0.update_ms) / steps, (g1.instantiate_ms - g0.instantiate_ms) / steps,
                  (g1.launch_ms - g0.launch_ms) / steps, (g1.destroy_ms - g0.destroy_ms) / steps);
    n += b;
    rep_.note(n);
    // The engine's segmentation (growing segments, a few graph launches per step) for the step wall; the
    // per-layer rows above need a segment per break point (their boundaries are recorded between launches).
    cuda_ops_.graphs().set_split_every_break(false);
    const cuda::GraphStats w0 = cuda_ops_.graph_stats();
    const StepTimes tw = time_steps(prepare, run, 6, 10, 0.3);
    const cuda::GraphStats w1 = cuda_ops_.graph_stats();
    cuda_ops_.graphs().set_split_every_break(true);
    Row r = base;
    r.section = "decode";
    r.kind = "step wall (" + std::to_string(cfg_.num_hidden_layers) + " layers), growing segments";
    r.ms = tw.wall_ms;
    r.tok_s = static_cast<double>(batch) / tw.wall_ms * 1e3;
    r.note = std::to_string(tw.steps) + " timed steps; " +
             fmt_double(static_cast<double>(w1.launches - w0.launches) /
                        static_cast<double>(std::max<int64_t>(1, w1.graph_steps - w0.graph_steps))) +
             " graph launches per step";
    rep_.add(r);
  }
  if (ctx == o_.contexts.front() &&
      std::find(o_.op_batches.begin(), o_.op_batches.end(), batch) != o_.op_batches.end())
    profile_ops(prepare, run, base);
}

void Bench::report_decode(const StepTimes& t, const Row& base) {
  const int64_t batch = base.batch, ctx = base.context;
  const double bps = ceil_.copy_gbps * 1e9;
  const double E = static_cast<double>(cfg_.n_routed_experts), k = static_cast<double>(cfg_.num_experts_per_tok);
  const double distinct = E * (1.0 - std::pow(1.0 - k / E, static_cast<double>(batch)));
  std::map<int64_t, std::pair<double, double>> kinds;  // ratio -> (ms, floor ms)
  for (const auto& [ratio, ms] : per_kind(t)) {
    const LayerBytes lb = m_.layer_bytes(first_layer(ratio));
    Row r = base;
    r.section = "decode";
    r.kind = kind_name(ratio);
    r.ms = ms;
    r.bytes = static_cast<double>(lb.attention + lb.shared) + distinct * static_cast<double>(lb.expert) +
              static_cast<double>(batch * kv_bytes(ratio, ctx));
    r.floor_ms = r.bytes / bps * 1e3;
    r.note = "experts read: " + std::to_string(static_cast<int>(std::lround(distinct)));
    kinds[ratio] = {r.ms, r.floor_ms};
    rep_.add(r);
  }
  Row eh = base;
  eh.section = "decode";
  eh.kind = "embed+head";
  eh.ms = embed_head_ms(t);
  eh.bytes = static_cast<double>(m_.embed_head_bytes() + batch * cfg_.hidden_size * 2);
  eh.floor_ms = eh.bytes / bps * 1e3;
  eh.note = "includes greedy sampling on the device (logits stay there) and the token download";
  rep_.add(eh);
  Row st = base;
  st.section = "decode";
  st.kind = "step wall (" + std::to_string(cfg_.num_hidden_layers) + " layers)";
  st.ms = t.wall_ms;
  st.tok_s = static_cast<double>(batch) / t.wall_ms * 1e3;
  st.note = std::to_string(t.steps) + " timed steps";
  rep_.add(st);
  if (kinds.size() == 3) {
    const LayerMix mix = flash_layer_mix();
    Row r = base;
    r.section = "decode_model";
    r.kind = "Flash 43 layers";
    auto sum = [&](auto get) {
      return mix.swa * get(kinds[0]) + mix.csa * get(kinds[4]) + mix.hca * get(kinds[128]);
    };
    r.ms = eh.ms + sum([](const auto& p) { return p.first; });
    r.floor_ms = eh.floor_ms + sum([](const auto& p) { return p.second; });
    r.tok_s = static_cast<double>(batch) / r.ms * 1e3;
    rep_.add(r);
  }
}

void Bench::prefill(int64_t prompt) {
  const int64_t C = o_.chunk, n_chunks = (prompt + C - 1) / C;
  std::vector<int64_t> measure;
  if (n_chunks <= 3)
    for (int64_t i = 0; i < n_chunks; ++i) measure.push_back(i);
  else
    measure = {0, n_chunks / 2, n_chunks - 1};
  std::map<int64_t, std::vector<double>> seg_at;  // chunk index -> segment ms
  for (int64_t idx : measure) {
    const int64_t s = idx * C, len = std::min(C, prompt - s);
    const std::string what = "prefill P=" + std::to_string(prompt) + " chunk at " + std::to_string(s);
    if (over_budget(what)) return;
    std::printf("[cuda_bench] %s\n", what.c_str());
    std::fflush(stdout);
    SequenceSet set = make_sequences(cfg_, 1, s + len, cache_budget(), rnd_, kv_format());
    const std::vector<int32_t> toks = tokens(len);
    model::ForwardBatch fb;
    model::ForwardOutput out;
    auto prepare = [&](int) {
      set.seqs[0]->n_past = s;
      fb = model::single_batch(*set.seqs[0], toks);
    };
    auto run = [&] { tf_.forward(fb, {}, out); };
    seg_at[idx] = time_steps(prepare, run, 1, 3, 0.5).seg_ms;
    if (idx == 0 && prompt == o_.prefill.front()) {
      Row base;
      base.batch = 1;
      base.prompt = len;
      base.cache = "per-seq";
      profile_ops(prepare, run, base);
    }
  }
  report_prefill(prompt, n_chunks, measure, seg_at);
}

void Bench::report_prefill(int64_t prompt, int64_t n_chunks, const std::vector<int64_t>& measure,
                           const std::map<int64_t, std::vector<double>>& seg_at) {
  const int64_t C = o_.chunk;
  // Every chunk's segments, interpolated linearly in the chunk index between the measured ones.
  const size_t n_seg = seg_at.begin()->second.size();
  std::vector<double> total(n_seg, 0.0);
  for (int64_t c = 0; c < n_chunks; ++c) {
    auto hi = seg_at.lower_bound(c);
    auto lo = hi;
    if (hi->first != c) --lo;
    const double f = hi->first == lo->first ? 0.0 : static_cast<double>(c - lo->first) / (hi->first - lo->first);
    for (size_t k = 0; k < n_seg; ++k) total[k] += (1 - f) * lo->second[k] + f * hi->second[k];
  }
  StepTimes t;
  t.seg_ms = total;
  std::string note = "chunks of " + std::to_string(C) + "; timed at chunk";
  for (int64_t idx : measure) note += " " + std::to_string(idx);
  if (static_cast<int64_t>(measure.size()) < n_chunks) note += " of " + std::to_string(n_chunks) + ", rest interpolated";
  const double fp8_rate = ceil_.fp8_tflops * 1e12, bf16_rate = ceil_.bf16_tflops * 1e12;
  const double P = static_cast<double>(prompt);
  std::map<int64_t, std::pair<double, double>> kinds;
  for (const auto& [ratio, ms] : per_kind(t)) {
    const LayerFlops lf = m_.layer_flops(first_layer(ratio));
    const double attn = attention_flops(ratio, 0, prompt);
    Row r;
    r.section = "prefill";
    r.kind = kind_name(ratio);
    r.batch = 1;
    r.prompt = prompt;
    r.cache = "per-seq";
    r.ms = ms;
    r.flops = P * (lf.fp8 + lf.bf16) + attn;
    if (fp8_rate > 0 && bf16_rate > 0) r.floor_ms = (P * lf.fp8 / fp8_rate + (P * lf.bf16 + attn) / bf16_rate) * 1e3;
    r.tok_s = P / ms * 1e3;
    r.note = note;
    kinds[ratio] = {r.ms, r.floor_ms};
    rep_.add(r);
  }
  Row eh;
  eh.section = "prefill";
  eh.kind = "embed+head";
  eh.batch = 1;
  eh.prompt = prompt;
  eh.ms = embed_head_ms(t);
  eh.note = "logits of the last row of each chunk";
  rep_.add(eh);
  if (kinds.size() == 3) {
    const LayerMix mix = flash_layer_mix();
    Row r;
    r.section = "prefill_model";
    r.kind = "Flash 43 layers";
    r.batch = 1;
    r.prompt = prompt;
    r.ms = eh.ms + mix.swa * kinds[0].first + mix.csa * kinds[4].first + mix.hca * kinds[128].first;
    r.floor_ms = mix.swa * kinds[0].second + mix.csa * kinds[4].second + mix.hca * kinds[128].second;
    r.tok_s = P / r.ms * 1e3;
    r.note = note;
    rep_.add(r);
  }
}

// Runs one condition; false when the CUDA context is no longer usable.
bool guarded(Report& rep, const std::string& what, const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[cuda_bench] %s failed: %s\n", what.c_str(), e.what());
    Row r;
    r.section = "info";
    r.kind = what;
    r.note = std::string("error: ") + e.what();
    rep.add(r);
    rep.note(what + ": error: " + e.what());
  }
  const cudaError_t sticky = cudaDeviceSynchronize();
  if (sticky != cudaSuccess) {
    rep.note(std::string("CUDA context lost after ") + what + ": " + cudaGetErrorString(sticky));
    return false;
  }
  cudaGetLastError();
  trim_device_pool();
  return true;
}

std::string header(const DeviceInfo& dev, const Ceilings& c, const Options& o, const BenchModel& m, int64_t dev_bytes) {
  char b[2048];
  std::string layers;
  for (int64_t r : o.layers) layers += (layers.empty() ? "" : ",") + std::string(kind_name(r));
  std::snprintf(b, sizeof(b),
                "GPU: %s (sm_%d%d, %d SMs, %.1f GiB), driver %d, runtime %d. Ceilings: HBM copy %.0f GB/s "
                "(read+write), bf16 dense %.1f TFLOP/s, FP8 dense %.1f TFLOP/s (cuBLASLt 8192^3).\n"
                "Model: DeepSeek-V4-Flash shapes, %zu layers [%s], random weights in the checkpoint dtypes "
                "(FP8 e4m3 + e8m0 128x128, MXFP4 experts, bf16/f32 rest), %.2f GB on the device (host view %.2f GB). "
                "Numerics: official (bf16 activations, FP8 KV rounding, FP4 indexer), CudaOps; compressed KV rows %s; "
                "decode steps as CUDA "
                "graphs (one per segment: embed, each half block, head) where the cache column says graphs, else eager "
                "launches.\n",
                dev.name.c_str(), dev.cc_major, dev.cc_minor, dev.sm_count, dev.mem_gib, dev.driver, dev.runtime,
                c.copy_gbps, c.bf16_tflops, c.fp8_tflops, o.layers.size(), layers.c_str(),
                static_cast<double>(dev_bytes) * 1e-9, static_cast<double>(m.total_bytes()) * 1e-9,
                o.kv_rows == "f32" ? "f32 (2 KB)" : "Fp8Kv (584 B: e4m3 nope, bf16 rope, e8m0 scales)");
  return b;
}

void add_notes(Report& rep, const Options& o) {
  rep.note("per-layer times: CUDA events at the block boundaries on the CudaOps stream (eager: found by counting "
           "hc_pre/hc_post calls; graphs: recorded between the segment graph launches); they include the host work "
           "done inside the layer where the stream waits for it (pointer lists, plan uploads, capture), medians "
           "over the timed steps (warm-up 2 eager / 6 graphs, then up to 10 steps or 0.5 s; prefill: warm-up 1, "
           "up to 3 chunks or 0.5 s)");
  rep.note("decode: each sequence continues at position ctx-4+(step%4) (n_past reset before every step, so "
           "the context stays fixed and no cache grows inside a timed step); window rows, compressed rows and "
           "indexer keys are synthetic random values (packed in the cache's formats) allocated up to ctx/ratio "
           "entries");
  rep.note("cache 'shared': the batch's rows did not fit the device memory budget (free - " +
           std::to_string(static_cast<int>(o.reserve_gib)) +
           " GiB), so every sequence of the batch maps onto one shared SequenceState (same rows for all "
           "sequences, own n_past); the kernels read the same bytes for every sequence, so L2 can serve part of "
           "them and times are optimistic there");
  rep.note("decode floor: (attention-side weights + shared expert + expected distinct routed experts "
           "256*(1-(1-6/256)^B) + B x KV rows read as stored: window and entries in --kv-rows, Mxfp4 indexer keys) / "
           "HBM copy rate; embed+head floor: head + hc_head + norm + B embed rows; the step ends with greedy sampling on the device (the engine's path since "
           "run 11; before, the f32 logits were copied to the host), whose time is in embed+head");
  rep.note("prefill floor: FP8/MXFP4 linear FLOPs (6 routed + shared expert, attention and indexer projections) / "
           "FP8 rate + bf16/f32 linear, attention (4*H*d per key) and indexer score FLOPs / bf16 rate");
  rep.note("prefill: one sequence in chunks of --chunk tokens; a timed chunk continues a sequence whose cache "
           "up to the chunk start is synthetic; untimed chunks are interpolated linearly in their index");
  rep.note("full Flash estimates: embed+head + 2 x SWA + 21 x CSA + 20 x HCA layer times (spec compress_ratios "
           "[0,0]+[4,128]x20+[4]); the real model hash-routes layers 0-2 (here every layer routes by gate+bias) "
           "and has an MTP block (not included)");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    if (!parse_options(argc, argv, o)) return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsv4_cuda_bench: %s\n", e.what());
    return 2;
  }
  const DeviceInfo dev = device_info();
  if (dev.name.empty()) {
    std::printf("dsv4_cuda_bench: no CUDA device\n");
    return 77;
  }
  std::printf("[cuda_bench] %s; measuring ceilings\n", dev.name.c_str());
  std::fflush(stdout);
  const auto t_start = Clock::now();
  Report rep;
  const Ceilings ceil = measure_ceilings(o.seed);
  auto add_ceiling = [&](const char* name, double v, const char* how) {
    Row r;
    r.section = "ceiling";
    r.op = name;
    r.value = v;
    r.note = how;
    rep.add(r);
  };
  add_ceiling("HBM copy GB/s", ceil.copy_gbps, "cudaMemcpyAsync D2D 2 GiB, (read+write)/time, median of 10");
  add_ceiling("bf16 TFLOP/s", ceil.bf16_tflops, "cuBLASLt 8192^3 TN bf16, f32 accumulate, median of 10");
  add_ceiling("FP8 TFLOP/s", ceil.fp8_tflops, "cuBLASLt 8192^3 TN e4m3, per-tensor scales, median of 10");
  std::printf("[cuda_bench] building random Flash weights (%zu layers) and uploading\n", o.layers.size());
  std::fflush(stdout);
  BenchModel model(o.layers, o.seed);
  backend::CudaOps cuda_ops(backend::Numerics{});
  cuda_ops.upload_weights(model.weights());
  std::vector<std::string> kinds;
  for (int64_t r : o.layers) kinds.push_back(kind_name(r));
  ProfilingOps prof(cuda_ops, kinds);
  Bench bench(o, model, cuda_ops, prof, ceil, rep, t_start);
  std::printf("[cuda_bench] setup %.1f s\n", std::chrono::duration<double>(Clock::now() - t_start).count());
  std::fflush(stdout);
  add_notes(rep, o);

  bool ok = true;
  auto decode_at = [&](int64_t ctx) {
    for (int64_t B : o.batches) {
      const std::string what = "decode B=" + std::to_string(B) + " ctx=" + std::to_string(ctx);
      if (o.graphs == "ab") {
        cuda::kernel_paths().graphs = false;
        if (ok) ok = guarded(rep, what + " eager", [&] { bench.decode(ctx, B); });
      }
      cuda::kernel_paths().graphs = o.graphs != "off";
      if (ok) ok = guarded(rep, what, [&] { bench.decode(ctx, B); });
    }
  };
  auto prefill_of = [&](int64_t P) {
    if (ok) ok = guarded(rep, "prefill P=" + std::to_string(P), [&] { bench.prefill(P); });
  };
  // Most informative first, so a spent time budget cuts the long-context conditions.
  if (!o.contexts.empty()) decode_at(o.contexts.front());
  if (!o.prefill.empty()) prefill_of(o.prefill.front());
  for (size_t i = 1; i < o.contexts.size(); ++i) decode_at(o.contexts[i]);
  for (size_t i = 1; i < o.prefill.size(); ++i) prefill_of(o.prefill[i]);

  rep.note("total run time " + std::to_string(static_cast<int>(std::chrono::duration<double>(Clock::now() - t_start).count())) + " s");
  rep.print_markdown(header(dev, ceil, o, model, cuda_ops.weights().bytes()));
  if (!o.out.empty()) {
    if (!rep.write_csv(o.out)) {
      std::fprintf(stderr, "dsv4_cuda_bench: cannot write %s\n", o.out.c_str());
      return 1;
    }
    std::printf("\nCSV: %s\n", o.out.c_str());
  }
  return ok ? 0 : 1;
}
