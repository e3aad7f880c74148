// Engine tests on a golden checkpoint (official numerics): continuous batching over the paged KV store gives
// bitwise the same greedy tokens as the single-sequence contiguous path, whatever else is in the batch;
// seeded sampling is batch-independent; preemption under a tiny KV budget recomputes correctly; cancel
// frees the KV; validation errors are clear.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "kv/memory_budget.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace dsv4::runtime {
namespace {

namespace fs = std::filesystem;

fs::path model_dir() { return fs::path(DSV4_TEST_DATA) / "golden" / "v4_tiny_fp8_mtp"; }

std::vector<int32_t> prompt_ids(size_t n, size_t offset = 0) {
  std::ifstream f(model_dir() / "input_ids.json");
  auto all = nlohmann::json::parse(f).get<std::vector<int32_t>>();
  return std::vector<int32_t>(all.begin() + static_cast<long>(offset), all.begin() + static_cast<long>(offset + n));
}

struct Collected {
  std::vector<int32_t> tokens;
  std::string finish;
  std::string error;
  Usage usage;
};

Collected drain(RequestStream& s) {
  Collected c;
  Event e;
  while (s.next(e, std::chrono::milliseconds(60000))) {
    if (e.kind == EventKind::Token) c.tokens.insert(c.tokens.end(), e.token_ids.begin(), e.token_ids.end());
    if (e.kind == EventKind::Finished) {
      c.finish = e.finish_reason;
      c.usage = e.usage;
      return c;
    }
    if (e.kind == EventKind::Error) {
      c.error = e.error;
      return c;
    }
  }
  c.error = "timeout";
  return c;
}

std::unique_ptr<Engine> make_engine(int64_t kv_bytes = int64_t{256} << 20, int64_t max_running = 8) {
  EngineOptions o{.model_dir = model_dir(), .numerics = backend::Numerics{}, .kv_memory_bytes = kv_bytes,
                  .max_running = max_running, .max_tokens_per_step = 96, .max_prefill_chunk = 40};
  auto e = Engine::create(o);
  EXPECT_TRUE(e.ok()) << e.message();
  return e.ok() ? std::move(e.value()) : nullptr;
}

sampling::SamplingParams greedy(int n) {
  sampling::SamplingParams p;
  p.temperature = 0;
  p.max_tokens = n;
  p.ignore_eos = true;
  return p;
}

TEST(Engine, ConcurrentGreedyEqualsSingleSequence) {
  auto ref_model = load_local_model(model_dir(), backend::Numerics{});
  ASSERT_TRUE(ref_model.ok());
  auto eng = make_engine();
  ASSERT_TRUE(eng);
  const int64_t free0 = eng->stats().kv_pages_free;  // reported before any step
  EXPECT_GT(free0, 0);
  std::vector<std::vector<int32_t>> prompts{prompt_ids(150), prompt_ids(37, 5), prompt_ids(200, 20), prompt_ids(3, 9)};
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (auto& p : prompts) {
    streams.push_back(std::make_shared<RequestStream>());
    ASSERT_TRUE(eng->submit({.prompt = p, .params = greedy(12)}, streams.back()).ok());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    Collected c = drain(*streams[i]);
    ASSERT_EQ(c.error, "");
    EXPECT_EQ(c.finish, "length");
    EXPECT_EQ(c.usage.prompt_tokens, static_cast<int64_t>(prompts[i].size()));
    EXPECT_EQ(c.usage.completion_tokens, 12);
    EXPECT_EQ(c.tokens, generate_greedy(*ref_model.value(), prompts[i], 12)) << "request " << i;
  }
  EngineStats st = eng->stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.kv_pages_used, 0);
  EXPECT_EQ(st.kv_pages_free, free0);
}

TEST(Engine, SeededSamplingIsIndependentOfTheBatch) {
  auto eng = make_engine();
  ASSERT_TRUE(eng);
  sampling::SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.9f;
  p.seed = 1234;
  p.max_tokens = 10;
  p.ignore_eos = true;
  auto alone = std::make_shared<RequestStream>();
  ASSERT_TRUE(eng->submit({.prompt = prompt_ids(60), .params = p}, alone).ok());
  Collected a = drain(*alone);
  std::vector<std::shared_ptr<RequestStream>> others;
  for (int i = 0; i < 3; ++i) {
    others.push_back(std::make_shared<RequestStream>());
    sampling::SamplingParams q = p;
    q.seed = 99 + i;
    ASSERT_TRUE(eng->submit({.prompt = prompt_ids(40 + 10 * i, i), .params = q}, others.back()).ok());
  }
  auto again = std::make_shared<RequestStream>();
  ASSERT_TRUE(eng->submit({.prompt = prompt_ids(60), .params = p}, again).ok());
  Collected b = drain(*again);
  for (auto& s : others) drain(*s);
  ASSERT_EQ(a.tokens.size(), 10u);
  EXPECT_EQ(a.tokens, b.tokens);
}

// The smallest KV budget whose pools (official numerics' row formats) have `pages` compressed pages.
int64_t budget_for_pages(const model::ModelConfig& cfg, const kv::Concurrency& c, int64_t pages) {
  auto layout = kv::make_layout(cache_shape(cfg, index_row_format(backend::Numerics{}),
                                            kv_row_format(backend::Numerics{}, cfg)));
  EXPECT_TRUE(layout.ok());
  int64_t lo = 0, hi = int64_t{1} << 30;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    auto s = kv::size_pools(*layout, mid, c);
    if (s.ok() && s->n_compressed_pages >= pages) hi = mid; else lo = mid;
  }
  return hi;
}

TEST(Engine, PreemptionUnderTinyKvBudgetRecomputesCorrectly) {
  auto ref_model = load_local_model(model_dir(), backend::Numerics{});
  ASSERT_TRUE(ref_model.ok());
  // Budget: the window and state pools for 4 sequences plus only 3 compressed pages (768 tokens in all).
  // Three requests of ~250 prompt tokens fit one page each, then each needs a second page past token 259:
  // someone must be preempted and recomputed.
  const int64_t budget = budget_for_pages(ref_model.value()->cfg, {.max_seqs = 4, .max_step_tokens = 96}, 3);
  auto eng = make_engine(budget, 4);
  ASSERT_TRUE(eng);
  std::vector<std::vector<int32_t>> prompts{prompt_ids(250), prompt_ids(245, 10), prompt_ids(240, 20), prompt_ids(248, 5)};
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (auto& p : prompts) {
    streams.push_back(std::make_shared<RequestStream>());
    auto r = eng->submit({.prompt = p, .params = greedy(20)}, streams.back());
    ASSERT_TRUE(r.ok()) << r.message();
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    Collected col = drain(*streams[i]);
    ASSERT_EQ(col.error, "");
    EXPECT_EQ(col.tokens, generate_greedy(*ref_model.value(), prompts[i], 20)) << "request " << i;
  }
  EXPECT_GT(eng->stats().preemptions, 0);
  EXPECT_EQ(eng->stats().kv_pages_used, 0);
}

// Random prompt ids of the golden model's vocabulary (deterministic).
std::vector<int32_t> random_ids(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& t : ids) t = static_cast<int32_t>(rng() % 500) + 2;
  return ids;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Submits the prompts together (greedy, n tokens each) and expects every answer to equal the single-sequence
// contiguous path of `ref`.
void expect_reference_greedy(Engine& eng, LocalModel& ref, const std::vector<std::vector<int32_t>>& prompts, int n) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& p : prompts) {
    streams.push_back(std::make_shared<RequestStream>());
    EXPECT_TRUE(eng.submit({.prompt = p, .params = greedy(n)}, streams.back()).ok());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    Collected c = drain(*streams[i]);
    ASSERT_EQ(c.error, "") << "prompt " << i;
    EXPECT_EQ(c.tokens, generate_greedy(ref, prompts[i], n)) << "prompt " << i;
  }
}

// Prefix caching: requests that share whole 256-token pages with earlier ones start after the cached pages
// (compressed entries, the window page and the compressor-state snapshot reused), and still give bitwise the
// tokens of the single-sequence contiguous path, alone, concurrently and after the cache is warm.
TEST(Engine, PrefixCachingGivesTheSameTokens) {
  auto ref_model = load_local_model(model_dir(), backend::Numerics{});
  ASSERT_TRUE(ref_model.ok());
  EngineOptions o{.model_dir = model_dir(), .numerics = backend::Numerics{}, .kv_memory_bytes = int64_t{256} << 20,
                  .max_running = 8, .max_tokens_per_step = 96, .max_prefill_chunk = 40, .prefix_caching = true};
  auto created = Engine::create(o);
  ASSERT_TRUE(created.ok()) << created.message();
  Engine& eng = *created.value();
  const std::vector<int32_t> shared = random_ids(600, 7);
  auto head = [&](size_t n) { return std::vector<int32_t>(shared.begin(), shared.begin() + static_cast<long>(n)); };
  auto run = [&](const std::vector<std::vector<int32_t>>& prompts) {
    expect_reference_greedy(eng, *ref_model.value(), prompts, 10);
  };
  run({shared});  // caches pages 0 and 1
  EXPECT_EQ(eng.stats().prefix_hit_tokens, 0);
  EXPECT_GE(eng.stats().prefix_cache_pages, 2);
  run({concat(head(520), random_ids(30, 8)),  // hits both pages
       head(512),                             // hits page 0 only (one token at least is computed)
       concat(head(300), random_ids(9, 9)),   // hits page 0
       concat(random_ids(280, 10), head(100))});  // misses
  EXPECT_EQ(eng.stats().prefix_hit_tokens, 512 + 256 + 256);
  run({shared, concat(head(257), random_ids(3, 11))});
  EXPECT_EQ(eng.stats().prefix_hit_tokens, 512 + 256 + 256 + 512 + 256);
  const EngineStats st = eng.stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.kv_pages_used, 0) << "cached-only pages count as free";
  EXPECT_GT(st.prefix_queried_tokens, st.prefix_hit_tokens);
}

// Prefill chunks longer than a page: the boundaries inside a chunk become state-less links, so only the chunks'
// last boundaries are resumable (periodic checkpoints), and answers stay exact.
TEST(Engine, PrefixCachingWithLongChunksResumesAtChunkEnds) {
  auto ref_model = load_local_model(model_dir(), backend::Numerics{});
  ASSERT_TRUE(ref_model.ok());
  EngineOptions o{.model_dir = model_dir(), .numerics = backend::Numerics{}, .kv_memory_bytes = int64_t{256} << 20,
                  .max_running = 4, .max_tokens_per_step = 700, .max_prefill_chunk = 600, .prefix_caching = true};
  auto created = Engine::create(o);
  ASSERT_TRUE(created.ok()) << created.message();
  Engine& eng = *created.value();
  const std::vector<int32_t> shared = random_ids(600, 17);
  auto head = [&](size_t n) { return std::vector<int32_t>(shared.begin(), shared.begin() + static_cast<long>(n)); };
  for (const auto& prompt : {shared, concat(head(530), random_ids(20, 18)), concat(head(300), random_ids(20, 19))})
    expect_reference_greedy(eng, *ref_model.value(), {prompt}, 8);  // one at a time
  // The first prompt ran as chunks [0, 512) and [512, 600): 256 is a link, 512 resumable. So the second prompt
  // resumes at 512 and the third (which shares only page 0) starts from scratch.
  EXPECT_EQ(eng.stats().prefix_hit_tokens, 512);
}

// Prefix caching under a KV budget too small for the cache and the running requests together: cached pages
// are evicted, requests are preempted and re-admitted through the cache, and every answer stays exact.
TEST(Engine, PrefixCachingUnderMemoryPressureStaysExact) {
  auto ref_model = load_local_model(model_dir(), backend::Numerics{});
  ASSERT_TRUE(ref_model.ok());
  const int64_t budget = budget_for_pages(ref_model.value()->cfg,
                                          {.max_seqs = 4, .max_step_tokens = 96, .prefix_share = 0.25}, 5);
  EngineOptions o{.model_dir = model_dir(), .numerics = backend::Numerics{}, .kv_memory_bytes = budget, .max_running = 4,
                  .max_tokens_per_step = 96, .max_prefill_chunk = 40, .prefix_caching = true};
  auto created = Engine::create(o);
  ASSERT_TRUE(created.ok()) << created.message();
  Engine& eng = *created.value();
  const std::vector<int32_t> shared = random_ids(560, 21);
  std::vector<std::vector<int32_t>> prompts;
  for (uint32_t k = 0; k < 6; ++k) {
    std::vector<int32_t> p(shared.begin(), shared.begin() + 260 + 50 * k);
    prompts.push_back(concat(p, random_ids(5 + k, 30 + k)));
  }
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    expect_reference_greedy(eng, *ref_model.value(), prompts, 12);
  }
  const EngineStats st = eng.stats();
  std::printf("[ engine   ] preemptions %lld, prefix hit tokens %lld, evictions %lld\n",
              static_cast<long long>(st.preemptions), static_cast<long long>(st.prefix_hit_tokens),
              static_cast<long long>(st.prefix_evictions));
  EXPECT_GT(st.prefix_hit_tokens, 0);
  EXPECT_GT(st.preemptions + st.prefix_evictions, 0) << "memory was not tight";
  EXPECT_EQ(st.kv_pages_used, 0);
}

TEST(Engine, CancelFreesKv) {
  auto eng = make_engine();
  ASSERT_TRUE(eng);
  auto s = std::make_shared<RequestStream>();
  auto id = eng->submit({.prompt = prompt_ids(100), .params = greedy(100000 - 100)}, s);
  ASSERT_TRUE(id.ok()) << id.message();
  Event e;
  ASSERT_TRUE(s->next(e, std::chrono::milliseconds(60000)));  // generation has started
  // Stats are published at the end of a step, possibly just after the step's events: wait for them.
  for (int i = 0; i < 500 && eng->stats().kv_pages_used + eng->stats().running == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(eng->stats().kv_pages_used + eng->stats().running, 0);
  EXPECT_TRUE(eng->cancel(*id));
  Collected c = drain(*s);
  EXPECT_EQ(c.finish, "cancelled");
  // The loop frees the pages at its next step; a loaded machine may take a while to get there.
  for (int i = 0; i < 1000 && (eng->stats().kv_pages_used != 0 || eng->stats().running != 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(eng->stats().kv_pages_used, 0);
  EXPECT_EQ(eng->stats().running, 0);
  EXPECT_FALSE(eng->cancel(*id + 1000));
}

TEST(Engine, KvBudgetAsAShareOfFreeMemory) {
  // A share of the host's free memory, resolved after the model is loaded: the pools get a non-zero budget below
  // what is free, and requests run.
  EngineOptions o{.model_dir = model_dir(), .numerics = backend::Numerics{}, .kv_memory_fraction = 0.001,
                  .max_running = 4, .max_tokens_per_step = 96, .max_prefill_chunk = 40};
  auto e = Engine::create(o);
  ASSERT_TRUE(e.ok()) << e.message();
  EXPECT_GT((*e)->max_model_len(), 0);
  auto s = std::make_shared<RequestStream>();
  ASSERT_TRUE((*e)->submit({.prompt = prompt_ids(20), .params = greedy(4)}, s).ok());
  Collected c = drain(*s);
  EXPECT_EQ(c.finish, "length") << c.error;
  EXPECT_EQ(c.tokens.size(), 4u);
  o.kv_memory_fraction = 1.5;
  auto bad = Engine::create(o);
  EXPECT_FALSE(bad.ok());
}

TEST(Engine, ValidationErrors) {
  auto eng = make_engine();
  ASSERT_TRUE(eng);
  auto s = std::make_shared<RequestStream>();
  auto r = eng->submit({.prompt = {}, .params = greedy(4)}, s);
  EXPECT_FALSE(r.ok());
  r = eng->submit({.prompt = {0, 100000}, .params = greedy(4)}, s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("100000"), std::string::npos) << r.message();
  sampling::SamplingParams bad = greedy(4);
  bad.top_p = 1.5f;
  r = eng->submit({.prompt = {0, 1}, .params = bad}, s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("top_p"), std::string::npos) << r.message();
  r = eng->submit({.prompt = std::vector<int32_t>(10, 3), .params = greedy(static_cast<int>(eng->max_model_len()))}, s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("exceeds the maximum context"), std::string::npos) << r.message();
}

}  // namespace
}  // namespace dsv4::runtime

namespace dsv4::runtime {
namespace {

fs::path tiny_model() { return fs::path(DSV4_TEST_DATA) / ".." / ".." / "models" / "dsv4-tiny"; }

struct TextRun {
  std::vector<int32_t> ids;
  std::string text;
  std::string finish;
};

TextRun run_text(Engine& eng, const std::string& prompt, sampling::SamplingParams p) {
  const tokenizer::Tokenizer* tok = eng.tokenizer();
  std::vector<int32_t> ids{*tok->bos_id()};
  tok->encode(prompt, ids);
  auto s = std::make_shared<RequestStream>();
  EXPECT_TRUE(eng.submit({.prompt = ids, .params = p}, s).ok());
  TextRun r;
  Event e;
  while (s->next(e, std::chrono::milliseconds(60000))) {
    r.ids.insert(r.ids.end(), e.token_ids.begin(), e.token_ids.end());
    r.text += e.text;
    if (e.final()) {
      r.finish = e.finish_reason;
      break;
    }
  }
  return r;
}

TEST(EngineText, DeltasConcatenateToTheDecodeAndStopStringsCutTheText) {
  auto e = Engine::create({.model_dir = tiny_model(), .numerics = backend::Numerics{}, .kv_memory_bytes = int64_t{128} << 20});
  ASSERT_TRUE(e.ok()) << e.message();
  Engine& eng = *e.value();
  ASSERT_NE(eng.tokenizer(), nullptr);
  sampling::SamplingParams p = greedy(40);
  TextRun full = run_text(eng, "In the beginning God created", p);
  ASSERT_EQ(full.ids.size(), 40u);
  auto decoded = eng.tokenizer()->decode(full.ids, {.skip_special_tokens = true});
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(full.text, *decoded);
  // A stop string taken from the middle of the greedy text: the same run stops there, without emitting it.
  ASSERT_GT(full.text.size(), 40u);
  std::string stop = full.text.substr(full.text.size() / 2, 5);
  size_t first = full.text.find(stop);
  p.stop = {stop};
  TextRun cut = run_text(eng, "In the beginning God created", p);
  EXPECT_EQ(cut.finish, "stop");
  EXPECT_EQ(cut.text, full.text.substr(0, first)) << "stop string '" << stop << "'";
}

}  // namespace
}  // namespace dsv4::runtime
