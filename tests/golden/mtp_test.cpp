// The MTP block (spec §8) checked against its definition composed from the same ops, on the golden
// checkpoints that carry mtp.0.* weights (HF has no MTP): e = RMSNorm(embed[τ]; enorm), hs = RMSNorm(H; hnorm)
// per stream, X = e_proj(e) + h_proj(hs), X = Block_mtp(X), logits = head(RMSNorm(hc_head(X))). Also checks
// that running the MTP token by token equals running it over the whole sequence.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/block.h"
#include "model/rope.h"
#include "runtime/local_model.h"
#include "testlib/compare.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> mtp_dirs() {
  std::vector<fs::path> out;
  fs::path root = fs::path(DSV4_TEST_DATA) / "golden";
  if (!fs::exists(root)) return out;
  for (auto& e : fs::directory_iterator(root)) {
    std::ifstream f(e.path() / "config.json");
    if (!f) continue;
    auto j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_object() && j.value("num_nextn_predict_layers", 0) > 0) out.push_back(e.path());
  }
  return out;
}

TEST(Mtp, MatchesComposedDefinition) {
  auto dirs = mtp_dirs();
  ASSERT_FALSE(dirs.empty()) << "no golden checkpoint with MTP weights";
  for (const auto& dir : dirs) {
    auto loaded = runtime::load_local_model(dir, backend::Numerics{});
    ASSERT_TRUE(loaded.ok()) << loaded.message();
    runtime::LocalModel& m = *loaded.value();
    ASSERT_EQ(m.weights.mtp.size(), 1u);
    std::ifstream f(dir / "input_ids.json");
    std::vector<int32_t> ids = nlohmann::json::parse(f).get<std::vector<int32_t>>();
    ids.resize(std::min<size_t>(ids.size(), 200));
    const int64_t T = static_cast<int64_t>(ids.size()) - 1, D = m.cfg.hidden_size, hc = m.cfg.hc_mult;
    std::vector<int32_t> main_in(ids.begin(), ids.end() - 1), next(ids.begin() + 1, ids.end());

    model::SequenceState seq(m.cfg);
    model::ForwardOutput fo;
    m.transformer->forward(model::single_batch(seq, main_in), {.keep_hidden = true}, fo);
    HostTensor via_model;
    m.transformer->mtp_forward(model::single_batch(seq, next, true), fo.hidden, via_model);

    // Composition from the ops.
    backend::Ops& ops = *m.ops;
    const weights::MtpWeights& w = m.weights.mtp[0];
    const float eps = static_cast<float>(m.cfg.rms_norm_eps);
    HostTensor e, hs = fo.hidden, pe, ph;
    ops.embed(m.weights.embed, next, e);
    ops.rms_norm(e, D, &w.enorm, eps);
    ops.rms_norm(hs, D, &w.hnorm, eps);
    ops.linear(e, w.e_proj, pe, backend::LinearKind::Quantized);
    ops.linear(hs, w.h_proj, ph, backend::LinearKind::Quantized);
    HostTensor X({T, hc, D});
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < hc; ++j)
        for (int64_t c = 0; c < D; ++c)
          X.data()[(t * hc + j) * D + c] = pe.data()[t * D + c] + ph.data()[(t * hc + j) * D + c];
    ops.round_act(X);
    model::SequenceState seq2(m.cfg);
    model::LayerContext layer{.il = m.cfg.num_hidden_layers, .ratio = m.cfg.compress_ratio(m.cfg.num_hidden_layers),
                              .hash = false, .mtp_index = 0,
                              .rope = model::layer_rope_table(m.cfg, m.cfg.num_hidden_layers)};
    ASSERT_EQ(layer.ratio, 0);
    model::block_forward(ops, m.cfg, layer, w.block, model::single_batch(seq2, next, true), X);
    HostTensor y, composed;
    ops.hc_head(X, w.hc_head, model::hc_params(m.cfg), y);
    ops.rms_norm(y, D, &w.norm, eps);
    ops.linear(y, m.weights.head, composed, backend::LinearKind::F32);
    // mtp_forward returns logits for every row.
    ASSERT_EQ(via_model.shape(), composed.shape());
    EXPECT_TRUE(testlib::bitwise_equal(via_model.data(), composed.data(), static_cast<size_t>(composed.numel())));

    // Token-by-token MTP after a prefix gives the same last-row logits.
    model::SequenceState seq3(m.cfg);
    HostTensor step_logits;
    for (int64_t t = 0; t < T; ++t) {
      HostTensor h1({1, hc, D});
      std::copy(fo.hidden.row(t), fo.hidden.row(t) + hc * D, h1.data());
      std::vector<int32_t> one{next[static_cast<size_t>(t)]};
      m.transformer->mtp_forward(model::single_batch(seq3, one, true), h1, step_logits);
    }
    EXPECT_TRUE(testlib::bitwise_equal(step_logits.data(), composed.row(T - 1), static_cast<size_t>(m.cfg.vocab_size)));
  }
}

}  // namespace
}  // namespace dsv4
