// CPU reference ops checked against values worked out by hand from the spec (f32 numerics, no rounding).
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "model/rope.h"
#include "testlib/weights_builder.h"

namespace dsv4 {
namespace {

using backend::CpuOps;
using backend::Numerics;
using testlib::f32_weight;

TEST(RopeTable, YarnMatchesSpecTable) {
  // Spec §2.8 table: base 160000, YaRN factor 16, L0 65536, beta 32/1 -> lo 15, hi 25.
  model::YarnScaling y{.enabled = true, .factor = 16, .original_max_position = 65536, .beta_fast = 32, .beta_slow = 1};
  auto t = model::make_rope_table(64, 160000.0, &y);
  ASSERT_EQ(t.freqs.size(), 32u);
  EXPECT_FLOAT_EQ(t.freqs[0], 1.0f);
  EXPECT_NEAR(t.freqs[15] / 3.6355e-3, 1.0, 1e-4);  // pairs <= 15 keep theta_i
  EXPECT_NEAR(t.freqs[16] / 2.2656e-3, 1.0, 1e-4);  // blended: ramp 1/10
  EXPECT_NEAR(t.freqs[20] / 2.9698e-4, 1.0, 1e-4);
  EXPECT_NEAR(t.freqs[24] / 1.9531e-5, 1.0, 1e-4);
  EXPECT_NEAR(t.freqs[31] / 5.6805e-7, 1.0, 1e-4);  // pairs >= 25 divided by 16
}

TEST(RopeTable, PlainThetaHasNoYarn) {
  auto t = model::make_rope_table(64, 10000.0, nullptr);
  EXPECT_NEAR(t.freqs[1], std::pow(10000.0, -2.0 / 64.0), 1e-7);  // 0.7498942
  EXPECT_NEAR(t.freqs[31] / std::pow(10000.0, -62.0 / 64.0), 1.0, 1e-6);  // f32 table
}

TEST(CpuOps, RopeRotatesInterleavedTrailingPairsAndInverts) {
  CpuOps ops(Numerics::exact_f32());
  backend::RopeTable tab{{0.5f, 0.25f}};
  // dim 6, rope_dim 4: dims 0,1 untouched; pairs (2,3) and (4,5) rotated by p*f.
  HostTensor x({1, 6});
  float in[6] = {7, 8, 1, 0, 0, 1};
  std::copy(in, in + 6, x.data());
  std::vector<int64_t> pos{2};
  ops.rope(x, 6, 4, pos, tab, false);
  EXPECT_FLOAT_EQ(x.data()[0], 7);
  EXPECT_FLOAT_EQ(x.data()[1], 8);
  EXPECT_NEAR(x.data()[2], std::cos(1.0), 1e-6);   // (1,0) rotated by angle 1
  EXPECT_NEAR(x.data()[3], std::sin(1.0), 1e-6);
  EXPECT_NEAR(x.data()[4], -std::sin(0.5), 1e-6);  // (0,1) rotated by angle 0.5
  EXPECT_NEAR(x.data()[5], std::cos(0.5), 1e-6);
  ops.rope(x, 6, 4, pos, tab, true);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(x.data()[i], in[i], 1e-6);
}

TEST(CpuOps, SparseAttentionWithSink) {
  CpuOps ops(Numerics::exact_f32());
  float q[2] = {1, 0}, k1[2] = {1, 0}, k2[2] = {0, 1};
  // k1 is the window row, k2 the one compressed entry (a one-row block).
  std::vector<const float*> window{k1};
  backend::AttentionQuery aq{q, window, 1};
  std::vector<backend::SeqEntries> seqs{{.row_begin = 0, .n_rows = 1, .entries = {{k2}, 1, 2}}};
  std::vector<float> sink{0.0f};
  auto sink_w = f32_weight(sink, {1});
  HostTensor out;
  ops.sparse_attention({.queries = std::span(&aq, 1), .seqs = seqs}, 1, 2, sink_w, 1.0f, out);
  // z = (1, 0), M = 1: weights (1, e^-1), sink term e^-1 in the denominator only.
  double den = 1.0 + 2.0 * std::exp(-1.0);
  EXPECT_NEAR(out.data()[0], 1.0 / den, 1e-6);
  EXPECT_NEAR(out.data()[1], std::exp(-1.0) / den, 1e-6);
}

// Entries resolved through multi-block rows (two blocks of 2 rows, stride 3 floats) and per-query selections
// give the same output as the explicit key lists.
TEST(CpuOps, SparseAttentionResolvesBlocksAndSelections) {
  CpuOps ops(Numerics::exact_f32());
  std::vector<float> b0{1, 0, 9, 0, 1, 9}, b1{1, 1, 9, -1, 2, 9};  // rows e0, e1 | e2, e3 (third float unused)
  float q0[2] = {0.5f, -1}, q1[2] = {2, 1}, w0[2] = {3, 1};
  std::vector<const float*> window{w0};
  std::vector<backend::AttentionQuery> aq{{q0, window, 2}, {q1, window, 1}};
  std::vector<backend::SeqEntries> seqs{{.row_begin = 0, .n_rows = 2, .entries = {{b0.data(), b1.data()}, 2, 3}}};
  IndexTensor sel(Device::Host, 2, 3);
  const int32_t picks[6] = {3, 0, -1, 2, -1, -1};
  std::copy(picks, picks + 6, sel.data());
  std::vector<float> sink{0.5f};
  auto sink_w = f32_weight(sink, {1});
  HostTensor out, ref0, ref1;
  ops.sparse_attention({.queries = aq, .seqs = seqs, .selected = &sel}, 1, 2, sink_w, 0.7f, out);
  std::vector<const float*> l0{w0, b1.data() + 3, b0.data()}, l1{w0, b1.data()};
  std::vector<backend::AttentionQuery> e0{{q0, l0, 0}}, e1{{q1, l1, 0}};
  std::vector<backend::SeqEntries> one{{.row_begin = 0, .n_rows = 1}};
  ops.sparse_attention({.queries = e0, .seqs = one}, 1, 2, sink_w, 0.7f, ref0);
  ops.sparse_attention({.queries = e1, .seqs = one}, 1, 2, sink_w, 0.7f, ref1);
  EXPECT_EQ(out.data()[0], ref0.data()[0]);
  EXPECT_EQ(out.data()[1], ref0.data()[1]);
  EXPECT_EQ(out.data()[2], ref1.data()[0]);
  EXPECT_EQ(out.data()[3], ref1.data()[1]);
}

// Two sequences in one call: keys through row blocks, selections -1 padded past min(top_k, n_keys).
TEST(CpuOps, IndexerTopkOverRowBlocks) {
  CpuOps ops(Numerics::exact_f32());
  // Sequence 0: 5 keys in blocks of 2 (1-d keys, stride 1): scores q·k with q = 1, w = 1 -> relu(k).
  std::vector<float> a{0.5f, 3}, b{-1, 2}, c{3, 0};
  std::vector<float> d{1, 4, 2};  // sequence 1: one block
  HostTensor q({3, 1, 1}, 1.0f), w({3, 1}, 1.0f);
  std::vector<backend::SeqEntries> seqs{
      {.row_begin = 0, .n_rows = 2, .entries = {{a.data(), b.data(), c.data()}, 2, 1}},
      {.row_begin = 2, .n_rows = 1, .entries = {{d.data()}, 3, 1}}};
  std::vector<int64_t> n_keys{5, 2, 3};
  IndexTensor sel;
  ops.indexer_topk(q, w, seqs, n_keys, {.n_heads = 1, .head_dim = 1, .top_k = 3}, sel);
  ASSERT_EQ(sel.rows(), 3);
  ASSERT_EQ(sel.cols(), 3);
  const int32_t want[9] = {1, 4, 3, 1, 0, -1, 1, 2, 0};  // ties (3, 3) to the lower index
  for (int i = 0; i < 9; ++i) EXPECT_EQ(sel.data()[i], want[i]) << i;
}

TEST(CpuOps, SoftmaxPoolPerChannel) {
  CpuOps ops(Numerics::exact_f32());
  float a0[2] = {4, 1}, a1[2] = {8, 3}, g0[2] = {0, 5}, g1[2] = {std::log(3.0f), 5};
  // Entry 0 pools both candidates; entry 1 only the second.
  std::vector<const float*> a{a0, a1, a1}, g{g0, g1, g1};
  std::vector<int64_t> offsets{0, 2, 3};
  HostTensor out;
  ops.softmax_pool(a, g, offsets, 2, out);
  ASSERT_EQ(out.shape(), (Shape{2, 2}));
  EXPECT_NEAR(out.data()[0], 0.25 * 4 + 0.75 * 8, 1e-5);  // weights 1/4, 3/4
  EXPECT_NEAR(out.data()[1], 0.5 * 1 + 0.5 * 3, 1e-5);    // equal gates
  EXPECT_FLOAT_EQ(out.data()[2], 8);
  EXPECT_FLOAT_EQ(out.data()[3], 3);
}

TEST(CpuOps, SmallDataMovementOps) {
  CpuOps ops(Numerics::exact_f32());
  HostTensor h({2, 3});
  for (int i = 0; i < 6; ++i) h.data()[i] = static_cast<float>(i);
  HostTensor X;
  ops.hc_expand(h, 2, X);
  ASSERT_EQ(X.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(X.data()[3], 0.0f);   // stream 1 of row 0 = h[0]
  EXPECT_EQ(X.data()[9], 3.0f);   // stream 1 of row 1 = h[1]
  HostTensor g;
  std::vector<int64_t> rows{1, 1, 0};
  ops.gather_rows(X, rows, g);
  ASSERT_EQ(g.shape(), (Shape{3, 2, 3}));
  EXPECT_EQ(g.data()[0], 3.0f);
  EXPECT_EQ(g.data()[12], 0.0f);
  ops.add(X, h.row(0) == h.data() ? HostTensor({3}, 1.0f) : h);  // broadcast of a [3] tensor
  EXPECT_EQ(X.data()[11], 6.0f);
  ops.scale(X, 2.0f);
  EXPECT_EQ(X.data()[11], 12.0f);
  std::vector<float> ape{10, 20, 30, 40, 50, 60};
  auto ape_w = f32_weight(ape, {2, 3});
  std::vector<int64_t> pos{5, 6};
  ops.add_position_rows(h, ape_w, pos);  // rows 5 % 2 = 1 and 6 % 2 = 0
  EXPECT_EQ(h.data()[0], 40.0f);
  EXPECT_EQ(h.data()[5], 35.0f);
  float s0[2] = {1, 2}, d0[2] = {0, 0}, d1[2] = {0, 0};
  std::vector<const float*> src{s0, s0};
  std::vector<float*> dst{d0, d1};
  ops.copy_rows(src, dst, 2);
  EXPECT_EQ(d1[1], 2.0f);
}

TEST(CpuOps, RouterSqrtSoftplusTopkAndScale) {
  CpuOps ops(Numerics::exact_f32());
  HostTensor logits({1, 4});
  float z[4] = {0, 1, 2, 25};
  std::copy(z, z + 4, logits.data());
  std::vector<float> bias0{0, 0, 0, 0}, bias1{10, 0, 0, 0};
  auto b0 = f32_weight(bias0, {4}), b1 = f32_weight(bias1, {4});
  std::vector<int32_t> tok{0}, sel;
  std::vector<float> w;
  // s = sqrt(softplus(z)) = 0.832555, 1.145977, 1.458399, 5 (softplus(25) = 25 exactly: z > 20).
  ops.route(logits, &b0, nullptr, tok, 2, true, 1.5f, sel, w);
  EXPECT_EQ(sel[0], 3);
  EXPECT_EQ(sel[1], 2);
  EXPECT_NEAR(w[0], 1.5 * 5 / 6.458399, 1e-5);
  EXPECT_NEAR(w[1], 1.5 * 1.458399 / 6.458399, 1e-5);
  // The bias only selects: expert 0 wins selection but its weight uses s without the bias.
  ops.route(logits, &b1, nullptr, tok, 2, true, 1.5f, sel, w);
  EXPECT_EQ(sel[0], 0);
  EXPECT_EQ(sel[1], 3);
  EXPECT_NEAR(w[0], 1.5 * 0.832555 / 5.832555, 1e-5);
  // Hash routing: token 1 -> experts {2, 0}.
  std::vector<int64_t> table{1, 3, 2, 0};
  auto t2e = testlib::i64_weight(table, {2, 2});
  std::vector<int32_t> tok1{1};
  ops.route(logits, nullptr, &t2e, tok1, 2, true, 1.0f, sel, w);
  EXPECT_EQ(sel[0], 2);
  EXPECT_EQ(sel[1], 0);
  EXPECT_NEAR(w[0], 1.458399 / (1.458399 + 0.832555), 1e-5);
}

TEST(CpuOps, ExpertSwigluClampsGateFromAboveAndUpBothSides) {
  CpuOps ops(Numerics::exact_f32());
  std::vector<float> w1{2.0f}, w3{-1.5f}, w2{3.0f};
  weights::ExpertWeights e{f32_weight(w1, {1, 1}), f32_weight(w2, {1, 1}), f32_weight(w3, {1, 1})};
  HostTensor x({1, 1}, 10.0f), y;
  float weight = 0.5f;
  ops.expert_ffn(x, e, &weight, 10.0f, y);
  // gate = 20 -> min(20, 10) = 10, silu(10) = 10/(1+e^-10); up = -15 -> -10; h = 0.5*silu*up; y = 3h.
  double silu10 = 10.0 / (1.0 + std::exp(-10.0));
  EXPECT_NEAR(y.data()[0], 3.0 * 0.5 * silu10 * -10.0, 1e-3);
  // Negative gate is not clamped from below: gate = -40 -> silu(-40) ~ -1.7e-16.
  HostTensor xn({1, 1}, -20.0f);
  ops.expert_ffn(xn, e, nullptr, 10.0f, y);
  EXPECT_NEAR(y.data()[0], 3.0 * (-40.0 / (1.0 + std::exp(40.0))) * 10.0, 1e-12);
  // Without the limit, nothing is clamped.
  ops.expert_ffn(x, e, nullptr, 0.0f, y);
  EXPECT_NEAR(y.data()[0], 3.0 * (20.0 / (1.0 + std::exp(-20.0))) * -15.0, 1e-2);
}

TEST(CpuOps, HcPreSinkhornAndMixing) {
  CpuOps ops(Numerics::exact_f32());
  const int64_t hc = 4, D = 2;
  std::vector<float> fn(static_cast<size_t>(24 * hc * D), 0.0f), base(24, 0.0f), scale{1, 1, 1};
  base[8 + 1] = 2.0f;  // C[0][1] logit
  base[8 + 6] = -1.0f; // C[1][2]
  weights::HcWeights w{f32_weight(fn, {24, hc * D}), f32_weight(base, {24}), f32_weight(scale, {3})};
  HostTensor X({1, hc, D});
  for (int j = 0; j < 4; ++j) {
    X.data()[j * D] = static_cast<float>(j + 1);
    X.data()[j * D + 1] = 1.0f;
  }
  HostTensor x, post, comb;
  backend::HcParams p;
  ops.hc_pre(X, w, p, x, post, comb);
  // fn = 0 -> mu = 0: pre = sigmoid(0) + eps = 0.5 + 1e-6, post = 2*sigmoid(0) = 1.
  EXPECT_NEAR(x.data()[0], (0.5 + 1e-6) * 10.0, 1e-5);
  EXPECT_NEAR(x.data()[1], (0.5 + 1e-6) * 4.0, 1e-5);
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(post.data()[j], 1.0, 1e-6);
  // Sinkhorn ends with a column normalisation: columns sum to 1 (up to eps); rows close to 1.
  for (int k = 0; k < 4; ++k) {
    double cs = 0, rs = 0;
    for (int j = 0; j < 4; ++j) cs += comb.data()[j * 4 + k], rs += comb.data()[k * 4 + j];
    EXPECT_NEAR(cs, 1.0, 1e-5);
    EXPECT_NEAR(rs, 1.0, 1e-3);
  }
  EXPECT_GT(comb.data()[1], comb.data()[0]);  // the larger logit keeps the larger share
  // hc_post: out[k] = post_k * a + sum_j C[j][k] R[j].
  HostTensor a({1, D}, 1.0f), out;
  ops.hc_post(a, X, post, comb, out);
  for (int k = 0; k < 4; ++k) {
    double expect = 1.0;
    for (int j = 0; j < 4; ++j) expect += comb.data()[j * 4 + k] * (j + 1);
    EXPECT_NEAR(out.data()[k * D], expect, 1e-5);
  }
}

TEST(CpuOps, RmsNormWeightedAndUnweighted) {
  CpuOps ops(Numerics::exact_f32());
  HostTensor x({1, 4});
  float v[4] = {1, 2, 3, 4};  // mean square 7.5
  std::copy(v, v + 4, x.data());
  std::vector<float> wv{1, 2, 1, 0.5f};
  auto w = f32_weight(wv, {4});
  ops.rms_norm(x, 4, &w, 0.0f);
  double inv = 1.0 / std::sqrt(7.5);
  EXPECT_NEAR(x.data()[1], 2 * 2 * inv, 1e-6);
  EXPECT_NEAR(x.data()[3], 4 * 0.5 * inv, 1e-6);
  HostTensor y({2, 2});  // two segments of 2, unweighted
  float u[4] = {3, 4, 1, 1};
  std::copy(u, u + 4, y.data());
  ops.rms_norm(y, 2, nullptr, 0.0f);
  EXPECT_NEAR(y.data()[0], 3 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(y.data()[2], 1.0, 1e-6);
}

TEST(CpuOps, Bf16ModeRoundsOutputs) {
  CpuOps ops(Numerics{});
  HostTensor x({1, 2});
  x.data()[0] = 1.0f + 1.0f / 512;  // not representable in bf16 (8 mantissa bits): rounds to 1.0 (tie to even)
  x.data()[1] = 1.0f;
  ops.round_act(x);
  EXPECT_EQ(x.data()[0], 1.0f);
  CpuOps exact(Numerics::exact_f32());
  x.data()[0] = 1.0f + 1.0f / 512;
  exact.round_act(x);
  EXPECT_EQ(x.data()[0], 1.0f + 1.0f / 512);
}

// Bf16 numerics: a Bf16- or F32-kind linear (and grouped_linear) reads bf16(x), as the reference holds those
// activations in bf16 (docs/contracts.md); exact-f32 numerics read x as it is.
TEST(CpuOps, Bf16ModeLinearReadsBf16Inputs) {
  const std::vector<float> wv{1.0f, 1.0f};
  const weights::Weight w = f32_weight(wv, {1, 2});
  HostTensor x({1, 2});
  x.data()[0] = 1.0f + 1.0f / 512;  // bf16(x0) = 1.0
  x.data()[1] = 0.0f;
  for (const auto kind : {backend::LinearKind::F32, backend::LinearKind::Bf16}) {
    HostTensor y;
    CpuOps(Numerics{}).linear(x, w, y, kind);
    EXPECT_EQ(y.data()[0], 1.0f);
    CpuOps(Numerics::exact_f32()).linear(x, w, y, kind);
    EXPECT_EQ(y.data()[0], 1.0f + 1.0f / 512);
  }
  HostTensor yg;
  CpuOps(Numerics{}).grouped_linear(x, w, 1, yg);
  EXPECT_EQ(yg.data()[0], 1.0f);
}

// linear_pair's default is the two linear calls.
TEST(CpuOps, LinearPairIsTwoLinears) {
  const std::vector<float> v1{1, 2, 3, 4, 5, 6}, v2{-1, 0.5f, 2};
  const weights::Weight w1 = f32_weight(v1, {2, 3}, "w1"), w2 = f32_weight(v2, {1, 3}, "w2");
  HostTensor x({2, 3});
  for (int i = 0; i < 6; ++i) x.data()[i] = 0.25f * static_cast<float>(i + 1);
  CpuOps ops(Numerics::exact_f32());
  HostTensor a, b, ra, rb;
  ops.linear_pair(x, w1, w2, a, b, backend::LinearKind::F32);
  ops.linear(x, w1, ra, backend::LinearKind::F32);
  ops.linear(x, w2, rb, backend::LinearKind::F32);
  ASSERT_EQ(a.shape(), ra.shape());
  ASSERT_EQ(b.shape(), rb.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data()[i], ra.data()[i]);
  for (int64_t i = 0; i < b.numel(); ++i) EXPECT_EQ(b.data()[i], rb.data()[i]);
  EXPECT_FLOAT_EQ(b.data()[0], 0.25f * (-1.0f + 0.5f * 2.0f + 2.0f * 3.0f));
}

}  // namespace
}  // namespace dsv4
