// End-to-end checks of the CUDA backend (label gpu; run on the GPU machine by tools/gpu_check.sh, skipped where no
// CUDA device is present). The whole model runs through CudaOps on the golden checkpoints and is compared with
// HF transformers' float32 logits (roundings off), with the CPU reference in the same numerics, teacher-forced
// top-1 agreement reported; chunked prefill, decode and a two-sequence batch must agree with one prefill; the
// serving engine on the GPU must produce the greedy continuation HF produced; on the embedded trained model the
// official numerics on the GPU must be as good as the CPU reference's (perplexity, distance to exact f32).
// Decode steps run as CUDA graphs must give the logits of eager launches, bit for bit.
// The data folder can be moved with DSV4_TEST_DATA_DIR (the binary is built on one machine and run on another).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/cuda/common/kernel_paths.h"
#include "backend/cuda/ops/cuda_ops.h"
#include "core/npy.h"
#include "runtime/engine.h"
#include "runtime/local_model.h"
#include "testlib/compare.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;

fs::path data_root() {
  const char* env = std::getenv("DSV4_TEST_DATA_DIR");
  return fs::path(env ? env : DSV4_TEST_DATA) / "golden";
}

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::vector<std::string> golden_dirs() {
  std::vector<std::string> out;
  if (!fs::exists(data_root())) return out;
  for (auto& e : fs::directory_iterator(data_root()))
    if (fs::exists(e.path() / "logits.npy")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int32_t> read_ids(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f).get<std::vector<int32_t>>();
}

struct Agreement {
  testlib::CompareStats st;
  double top1 = 0;
};

Agreement agree(const HostTensor& got, const HostTensor& ref) {
  Agreement a;
  a.st = testlib::compare(got.data(), ref.data(), static_cast<size_t>(got.numel()));
  a.top1 = testlib::argmax_agreement(got.data(), ref.data(), static_cast<size_t>(got.dim(0)),
                                     static_cast<size_t>(got.dim(1)));
  return a;
}

class GpuGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  }
  fs::path dir() const { return data_root() / GetParam(); }
  std::unique_ptr<runtime::LocalModel> load(backend::Numerics n, Device d) {
    auto m = runtime::load_local_model(dir(), n, d);
    EXPECT_TRUE(m.ok()) << m.message();
    return m.ok() ? std::move(m.value()) : nullptr;
  }
  void report(const char* what, const Agreement& a) {
    std::printf("[gpu %s] %s: rel_err %.3g cosine %.6f max_abs %.3g top-1 %.4f\n", GetParam().c_str(), what,
                a.st.rel_err, a.st.cosine, a.st.max_abs, a.top1);
  }
};

TEST_P(GpuGolden, F32LogitsMatchHfAndCpu) {
  auto gpu = load(backend::Numerics::exact_f32(), Device::Cuda);
  auto cpu = load(backend::Numerics::exact_f32(), Device::Host);
  ASSERT_TRUE(gpu && cpu);
  auto ids = read_ids(dir() / "input_ids.json");
  auto hf = read_npy_f32(dir() / "logits.npy");
  ASSERT_TRUE(hf.ok()) << hf.message();
  HostTensor g = runtime::all_logits(*gpu, ids), c = runtime::all_logits(*cpu, ids);
  ASSERT_EQ(g.shape(), hf->shape());
  Agreement vs_hf = agree(g, *hf), vs_cpu = agree(g, c);
  report("f32 GPU vs HF", vs_hf);
  report("f32 GPU vs CPU", vs_cpu);
  EXPECT_TRUE(vs_hf.st.finite());
  EXPECT_LT(vs_hf.st.rel_err, 1e-4);
  EXPECT_LT(vs_cpu.st.rel_err, 1e-4);
  EXPECT_EQ(vs_hf.top1, 1.0);
}

TEST_P(GpuGolden, F32GreedyContinuationMatchesHf) {
  auto gpu = load(backend::Numerics::exact_f32(), Device::Cuda);
  ASSERT_TRUE(gpu);
  auto ids = read_ids(dir() / "input_ids.json");
  auto want = read_ids(dir() / "greedy.json");
  EXPECT_EQ(runtime::generate_greedy(*gpu, ids, static_cast<int64_t>(want.size())), want);
}

TEST_P(GpuGolden, OfficialNumericsMatchCpuReference) {
  auto gpu = load(backend::Numerics{}, Device::Cuda);
  auto cpu = load(backend::Numerics{}, Device::Host);
  ASSERT_TRUE(gpu && cpu);
  auto ids = read_ids(dir() / "input_ids.json");
  auto hf = read_npy_f32(dir() / "logits.npy");
  ASSERT_TRUE(hf.ok());
  HostTensor g = runtime::all_logits(*gpu, ids), c = runtime::all_logits(*cpu, ids);
  Agreement vs_cpu = agree(g, c), gpu_hf = agree(g, *hf), cpu_hf = agree(c, *hf);
  report("official GPU vs CPU (teacher-forced)", vs_cpu);
  report("official GPU vs HF f32", gpu_hf);
  report("official CPU vs HF f32", cpu_hf);
  EXPECT_TRUE(vs_cpu.st.finite());
  // Same roundings, different summation orders: a bf16 rounding flips now and then and the random tiny model
  // amplifies it (spec §13; measured top-1 0.867-0.979). The GPU must stay as close to the reference function
  // (HF f32) as the CPU reference is.
  EXPECT_GE(vs_cpu.top1, 0.85);
  EXPECT_GT(vs_cpu.st.cosine, 0.99);
  EXPECT_LT(gpu_hf.st.rel_err, 1.1 * cpu_hf.st.rel_err + 0.01);
  EXPECT_GE(gpu_hf.top1, cpu_hf.top1 - 0.03);
}

TEST_P(GpuGolden, ChunkedPrefillDecodeAndBatchAgreeOnGpu) {
  // In f32 every path must agree to 1e-5. In the official numerics the GPU's kernels depend on the row count
  // (GEMV vs tensor-core tiles, split-K), so a different chunking moves bf16 roundings; the bound is the size of
  // the roundings' own effect on this model (official vs f32 logits), which random tiny models amplify.
  auto ids = read_ids(dir() / "input_ids.json");
  double rounding_effect = 0;
  {
    auto mf = load(backend::Numerics::exact_f32(), Device::Cuda);
    auto mo = load(backend::Numerics{}, Device::Cuda);
    ASSERT_TRUE(mf && mo);
    rounding_effect = agree(runtime::all_logits(*mo, ids), runtime::all_logits(*mf, ids)).st.rel_err;
    std::printf("[gpu %s] official vs f32 on the GPU: rel_err %.3g\n", GetParam().c_str(), rounding_effect);
  }
  for (backend::Numerics n : {backend::Numerics::exact_f32(), backend::Numerics{}}) {
    const bool f32 = n.act == backend::ActDtype::F32;
    const double tol = f32 ? 1e-5 : 1.5 * rounding_effect, top1_min = f32 ? 1.0 : 0.75;
    auto m = load(n, Device::Cuda);
    ASSERT_TRUE(m);
    HostTensor full = runtime::all_logits(*m, ids);
    const int64_t V = full.dim(1);
    // Chunked prefill.
    for (int64_t chunk : {37, 128}) {
      Agreement a = agree(runtime::all_logits(*m, ids, chunk), full);
      std::printf("[gpu %s] %s chunk %lld vs one prefill: rel_err %.3g top-1 %.4f\n", GetParam().c_str(),
                  f32 ? "f32" : "official", static_cast<long long>(chunk), a.st.rel_err, a.top1);
      EXPECT_LT(a.st.rel_err, tol);
      EXPECT_GE(a.top1, top1_min);
    }
    // Decode of the last 12 tokens.
    std::vector<int32_t> head(ids.begin(), ids.end() - 12);
    model::SequenceState seq(m->cfg, Device::Cuda);
    model::ForwardOutput fo;
    m->transformer->forward(model::single_batch(seq, head), {}, fo);
    HostTensor dec({12, V});
    for (size_t i = head.size(); i < ids.size(); ++i) {
      std::vector<int32_t> one{ids[i]};
      m->transformer->forward(model::single_batch(seq, one), {}, fo);
      std::copy(fo.logits.data(), fo.logits.data() + V, dec.row(static_cast<int64_t>(i - head.size())));
    }
    HostTensor tail({12, V});
    std::copy(full.row(full.dim(0) - 12), full.row(full.dim(0) - 12) + 12 * V, tail.data());
    Agreement d = agree(dec, tail);
    std::printf("[gpu %s] %s decode vs prefill: rel_err %.3g top-1 %.4f\n", GetParam().c_str(),
                f32 ? "f32" : "official", d.st.rel_err, d.top1);
    EXPECT_LT(d.st.rel_err, tol);
    // Two sequences in one batch equal each alone.
    std::vector<int32_t> a(ids.begin(), ids.begin() + 150), b(ids.begin() + 7, ids.end());
    HostTensor la = runtime::all_logits(*m, a), lb = runtime::all_logits(*m, b);
    model::SequenceState sa(m->cfg, Device::Cuda), sb(m->cfg, Device::Cuda);
    model::ForwardBatch batch;
    for (auto [seq_p, toks] : {std::pair{&sa, &a}, std::pair{&sb, &b}}) {
      model::BatchChunk c{.seq = seq_p, .row_begin = batch.n_rows(), .n_rows = static_cast<int64_t>(toks->size()),
                          .pos0 = 0};
      for (size_t i = 0; i < toks->size(); ++i) {
        batch.tokens.push_back((*toks)[i]);
        batch.pos.push_back(static_cast<int64_t>(i));
      }
      batch.chunks.push_back(c);
    }
    m->transformer->forward(batch, {.all_logits = true}, fo);
    HostTensor ba({la.dim(0), V}), bb({lb.dim(0), V});
    std::copy(fo.logits.data(), fo.logits.data() + la.numel(), ba.data());
    std::copy(fo.logits.row(la.dim(0)), fo.logits.row(la.dim(0)) + lb.numel(), bb.data());
    Agreement xa = agree(ba, la), xb = agree(bb, lb);
    std::printf("[gpu %s] %s batch vs single: rel_err %.3g / %.3g top-1 %.4f / %.4f\n", GetParam().c_str(),
                f32 ? "f32" : "official", xa.st.rel_err, xb.st.rel_err, xa.top1, xb.top1);
    EXPECT_LT(std::max(xa.st.rel_err, xb.st.rel_err), tol);
    EXPECT_GE(std::min(xa.top1, xb.top1), top1_min);
  }
}

// Decode as CUDA graphs (ops/step_graphs.h) against eager launches of the same kernels: three sequences at
// different positions (their compressors emit at different steps, so segment topologies change from step to
// step) decode together, then one alone, then a fresh model decodes from position 0 with no prefill (first
// uses of weight forms inside captures); the logits must be identical bit for bit, and the graph path must
// really have run (graph steps, updates of cached graphs). The reference runs eager and in order (no branches:
// model/branches.h); eager with branches and graphs with branches (concurrent graph nodes) must both equal it.
TEST_P(GpuGolden, GraphDecodeEqualsEagerDecode) {
  auto ids = read_ids(dir() / "input_ids.json");
  const size_t steps = 24;
  const std::vector<size_t> starts{40, 61, 90};
  ASSERT_GT(ids.size(), starts.back() + steps);
  cuda::GraphStats stats;
  auto run = [&](bool graphs, bool branches) {
    cuda::kernel_paths().graphs = graphs;
    cuda::kernel_paths().branches = branches;
    auto m = load(backend::Numerics{}, Device::Cuda);
    std::vector<float> all;
    if (!m) return all;
    std::vector<std::unique_ptr<model::SequenceState>> seqs;
    model::ForwardOutput fo;
    for (size_t s : starts) {
      seqs.push_back(std::make_unique<model::SequenceState>(m->cfg, Device::Cuda));
      m->transformer->forward(model::single_batch(*seqs.back(), std::span(ids).first(s)), {}, fo);
    }
    for (size_t k = 0; k < steps; ++k) {
      model::ForwardBatch b;
      for (size_t i = 0; i < starts.size(); ++i) {
        const int64_t pos = static_cast<int64_t>(starts[i] + k);
        b.tokens.push_back(ids[static_cast<size_t>(pos)]);
        b.pos.push_back(pos);
        b.chunks.push_back({.seq = seqs[i].get(), .row_begin = static_cast<int64_t>(i), .n_rows = 1, .pos0 = pos});
      }
      m->transformer->forward(b, {}, fo);
      all.insert(all.end(), fo.logits.data(), fo.logits.data() + fo.logits.numel());
    }
    for (size_t k = 0; k < steps; ++k) {  // the first sequence alone (one row per step)
      std::vector<int32_t> one{ids[starts[0] + steps + k]};
      m->transformer->forward(model::single_batch(*seqs[0], one), {}, fo);
      all.insert(all.end(), fo.logits.data(), fo.logits.data() + fo.logits.numel());
    }
    // A fresh model and sequence decoded from position 0 without a prefill: the first compressor entries (and
    // the derived weight forms they need on first use) are produced inside captured steps.
    auto fresh = load(backend::Numerics{}, Device::Cuda);
    if (!fresh) return std::vector<float>{};
    model::SequenceState s0(fresh->cfg, Device::Cuda);
    for (size_t k = 0; k < steps; ++k) {
      std::vector<int32_t> one{ids[k]};
      fresh->transformer->forward(model::single_batch(s0, one), {}, fo);
      all.insert(all.end(), fo.logits.data(), fo.logits.data() + fo.logits.numel());
    }
    const cuda::GraphStats& fs = dynamic_cast<backend::CudaOps&>(*fresh->ops).graph_stats();
    if (graphs) {
      EXPECT_EQ(fs.graph_steps, static_cast<int64_t>(steps - 1)) << "decode from scratch";
    }
    stats = dynamic_cast<backend::CudaOps&>(*m->ops).graph_stats();
    return all;
  };
  const std::vector<float> eager = run(false, false);
  const std::vector<float> eager_br = run(false, true);
  const std::vector<float> graph = run(true, true);
  cuda::kernel_paths().graphs = true;
  cuda::kernel_paths().branches = true;
  ASSERT_FALSE(eager.empty());
  ASSERT_EQ(graph.size(), eager.size());
  ASSERT_EQ(eager_br.size(), eager.size());
  size_t differ = 0, differ_br = 0;
  for (size_t i = 0; i < eager.size(); ++i) {
    differ += std::memcmp(&eager[i], &graph[i], sizeof(float)) != 0;
    differ_br += std::memcmp(&eager[i], &eager_br[i], sizeof(float)) != 0;
  }
  std::printf("[gpu %s] eager with branches vs in order: %zu of %zu logits differ\n", GetParam().c_str(), differ_br,
              eager.size());
  EXPECT_EQ(differ_br, 0u);
  std::printf("[gpu %s] graphs (branches) vs eager decode: %zu of %zu logits differ; %lld graph steps, %lld eager, "
              "%lld segment launches, %lld instantiated, %lld updated, %lld updates refused\n",
              GetParam().c_str(), differ, eager.size(), static_cast<long long>(stats.graph_steps),
              static_cast<long long>(stats.eager_steps), static_cast<long long>(stats.launches),
              static_cast<long long>(stats.instantiated), static_cast<long long>(stats.updated),
              static_cast<long long>(stats.update_failed));
  EXPECT_EQ(differ, 0u);
  EXPECT_EQ(stats.graph_steps, static_cast<int64_t>(2 * steps - 2));  // the first step at each row count is eager
  EXPECT_GT(stats.updated, 0);
}

TEST_P(GpuGolden, MtpLogitsMatchCpu) {
  auto gpu = load(backend::Numerics::exact_f32(), Device::Cuda);
  auto cpu = load(backend::Numerics::exact_f32(), Device::Host);
  ASSERT_TRUE(gpu && cpu);
  if (gpu->weights.mtp.empty()) GTEST_SKIP() << "no MTP block";
  auto ids = read_ids(dir() / "input_ids.json");
  auto g = runtime::mtp_logits(*gpu, ids);
  auto c = runtime::mtp_logits(*cpu, ids);
  ASSERT_TRUE(g.ok() && c.ok());
  Agreement a = agree(*g, *c);
  report("MTP f32 GPU vs CPU", a);
  EXPECT_LT(a.st.rel_err, 1e-4);
}

TEST_P(GpuGolden, EngineOnGpuReproducesHfGreedy) {
  auto want = read_ids(dir() / "greedy.json");
  auto ids = read_ids(dir() / "input_ids.json");
  auto eng = runtime::Engine::create({.model_dir = dir(), .numerics = backend::Numerics::exact_f32(),
                                      .device = Device::Cuda, .kv_memory_bytes = int64_t{256} << 20,
                                      .max_tokens_per_step = 96, .max_prefill_chunk = 40});
  ASSERT_TRUE(eng.ok()) << eng.message();
  // Four requests at once: the full prompt and three prefixes of it; the full one must reproduce HF.
  std::vector<std::shared_ptr<runtime::RequestStream>> streams;
  for (size_t cut : {ids.size(), ids.size() / 2, size_t{3}, ids.size() - 5}) {
    auto s = std::make_shared<runtime::RequestStream>();
    sampling::SamplingParams p;
    p.temperature = 0;
    p.max_tokens = static_cast<int32_t>(want.size());
    p.ignore_eos = true;
    std::vector<int32_t> prompt(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(cut));
    auto id = (*eng)->submit({.prompt = prompt, .params = p}, s);
    ASSERT_TRUE(id.ok()) << id.message();
    streams.push_back(s);
  }
  std::vector<int32_t> got;
  runtime::Event e;
  while (streams[0]->next(e, std::chrono::milliseconds(120000))) {
    if (e.kind == runtime::EventKind::Token) got.insert(got.end(), e.token_ids.begin(), e.token_ids.end());
    if (e.final()) break;
  }
  EXPECT_EQ(got, want);
}

// Prefix caching on the GPU: the prompt run a second time resumes after its cached first page (the compressor
// state snapshot copied on the device) and must still reproduce HF's greedy continuation.
TEST_P(GpuGolden, PrefixCachedEngineOnGpuReproducesHfGreedy) {
  auto want = read_ids(dir() / "greedy.json");
  auto ids = read_ids(dir() / "input_ids.json");
  if (ids.size() <= 256u) GTEST_SKIP() << ids.size() << "-token prompt: no whole 256-token page to cache";
  auto eng = runtime::Engine::create({.model_dir = dir(), .numerics = backend::Numerics::exact_f32(),
                                      .device = Device::Cuda, .kv_memory_bytes = int64_t{256} << 20,
                                      .max_tokens_per_step = 96, .max_prefill_chunk = 40, .prefix_caching = true});
  ASSERT_TRUE(eng.ok()) << eng.message();
  for (int round = 0; round < 2; ++round) {
    auto s = std::make_shared<runtime::RequestStream>();
    sampling::SamplingParams p;
    p.temperature = 0;
    p.max_tokens = static_cast<int32_t>(want.size());
    p.ignore_eos = true;
    ASSERT_TRUE((*eng)->submit({.prompt = ids, .params = p}, s).ok());
    std::vector<int32_t> got;
    runtime::Event e;
    while (s->next(e, std::chrono::milliseconds(120000))) {
      if (e.kind == runtime::EventKind::Token) got.insert(got.end(), e.token_ids.begin(), e.token_ids.end());
      if (e.final()) break;
    }
    EXPECT_EQ(got, want) << "round " << round;
  }
  EXPECT_EQ((*eng)->stats().prefix_hit_tokens, 256);
}

// Mean next-token negative log-likelihood of ids[1..] under logits rows [0, n-1).
double mean_nll(const HostTensor& logits, const std::vector<int32_t>& ids) {
  const int64_t V = logits.dim(1);
  double total = 0;
  for (int64_t t = 0; t + 1 < logits.dim(0); ++t) {
    const float* r = logits.row(t);
    double m = *std::max_element(r, r + V), z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(static_cast<double>(r[v]) - m);
    total += std::log(z) + m - r[ids[static_cast<size_t>(t) + 1]];
  }
  return total / static_cast<double>(logits.dim(0) - 1);
}

// The embedded trained model (models/dsv4-tiny, FP8 + MXFP4) on held-out text. In the official numerics every
// linear's input is FP8-quantized (3 mantissa bits), so a last-bit difference upstream moves some codes by a whole
// e4m3 step and the GPU cannot match the CPU's logits closely (measured: top-1 94%, rel. err 5-6%). What must hold
// is that the GPU computes the same function as well as the CPU does: its deviation from the exact f32 logits is
// no larger than the CPU's, and the held-out perplexity is the same to 1%.
TEST(GpuEmbedded, OfficialNumericsMatchTheCpuReferenceInQuality) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const fs::path model = data_root().parent_path().parent_path().parent_path() / "models" / "dsv4-tiny";
  if (!fs::exists(model / "config.json")) GTEST_SKIP() << model << " not present";
  std::ifstream f(model / "eval" / "heldout_ids.json");
  auto docs = nlohmann::json::parse(f).get<std::vector<std::vector<int32_t>>>();
  ASSERT_GE(docs.size(), 4u);
  auto gpu = runtime::load_local_model(model, backend::Numerics{}, Device::Cuda);
  auto cpu = runtime::load_local_model(model, backend::Numerics{}, Device::Host);
  auto exact = runtime::load_local_model(model, backend::Numerics::exact_f32(), Device::Host);
  ASSERT_TRUE(gpu.ok() && cpu.ok() && exact.ok());
  double nll_gpu = 0, nll_cpu = 0, nll_exact = 0, top1_sum = 0, rel_gpu = 0, rel_cpu = 0;
  const size_t n_docs = 4;
  for (size_t d = 0; d < n_docs; ++d) {
    std::vector<int32_t> ids(docs[d].begin(), docs[d].begin() + std::min<size_t>(docs[d].size(), 1024));
    HostTensor g = runtime::all_logits(**gpu, ids), c = runtime::all_logits(**cpu, ids),
               e = runtime::all_logits(**exact, ids);
    const Agreement gc = agree(g, c), ge = agree(g, e), ce = agree(c, e);
    top1_sum += gc.top1;
    rel_gpu += ge.st.rel_err;
    rel_cpu += ce.st.rel_err;
    nll_gpu += mean_nll(g, ids);
    nll_cpu += mean_nll(c, ids);
    nll_exact += mean_nll(e, ids);
    std::printf("[gpu dsv4-tiny] doc %zu (%zu tokens): GPU vs CPU rel_err %.3g top-1 %.4f; vs exact f32: GPU %.3g, "
                "CPU %.3g\n", d, ids.size(), gc.st.rel_err, gc.top1, ge.st.rel_err, ce.st.rel_err);
  }
  const double k = static_cast<double>(n_docs);
  const double ppl_gpu = std::exp(nll_gpu / k), ppl_cpu = std::exp(nll_cpu / k), ppl_exact = std::exp(nll_exact / k);
  std::printf("[gpu dsv4-tiny] official numerics: perplexity GPU %.3f, CPU %.3f (exact f32 %.3f); rel_err to exact "
              "f32 GPU %.3g, CPU %.3g; GPU vs CPU top-1 %.4f\n", ppl_gpu, ppl_cpu, ppl_exact, rel_gpu / k, rel_cpu / k,
              top1_sum / k);
  EXPECT_LT(std::abs(ppl_gpu / ppl_cpu - 1.0), 0.01);
  EXPECT_LT(rel_gpu, 1.2 * rel_cpu + 0.005 * k);
  EXPECT_GE(top1_sum / k, 0.9);
}

INSTANTIATE_TEST_SUITE_P(All, GpuGolden, ::testing::ValuesIn(golden_dirs()),
                         [](const auto& info) { return info.param; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GpuGolden);

}  // namespace
}  // namespace dsv4
