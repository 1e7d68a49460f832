// The mixture-of-experts FFN and sparse upcycling: an upcycled model equals its dense seed;
// routing, capacity drops and the load-balancing loss against per-token hand computations;
// checkpoints round-trip; parameter and FLOP counts.
#include "support/catch.h"

#include <cmath>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "opt/moe_ffn.h"
#include "opt/opt_layers.h"
#include "opt/opt.h"
#include "opt_test_util.h"
#include "support/test_support.h"

using cbtm::models::MoeFfn;
using cbtm::models::OptConfig;
using cbtm::models::OptLM;
using cbtm::test::max_abs_diff;

namespace {

OptConfig moe_config(int64_t experts, int64_t top_k, double capacity) {
  OptConfig c = cbtm::test::tiny_opt_config();
  c.n_layers = 4;
  c.moe_experts = experts;
  c.moe_top_k = top_k;
  c.moe_capacity_factor = capacity;
  return c;
}

/// fc2(relu(fc1 x)) of expert e, for one token (independent of MoeFfn's batched path).
torch::Tensor expert_ffn(const MoeFfn& m, int64_t e, const torch::Tensor& x) {
  return torch::matmul(m->fc2_weight[e], torch::relu(torch::matmul(m->fc1_weight[e], x) + m->fc1_bias[e])) +
         m->fc2_bias[e];
}

// Random expert weights and a zero router (each test then sets the gate rows it needs).
void random_experts_zero_gate(MoeFfn& m) {
  m->fc1_weight.normal_();
  m->fc1_bias.normal_();
  m->fc2_weight.normal_();
  m->fc2_bias.normal_();
  m->gate.zero_();
}

}  // namespace

TEST_CASE("moe: an upcycled model computes exactly what its dense seed computes while no token is dropped") {
  OptConfig dc = cbtm::test::tiny_opt_config();
  dc.n_layers = 4;
  OptLM dense(dc);
  dense->init_weights(3);
  dense->eval();
  // capacity factor E / top_k: every expert can take every token, nothing is dropped
  OptLM moe(moe_config(4, 2, 2.0));
  moe->init_weights(11);
  cbtm::models::upcycle(moe, dense);
  moe->eval();
  REQUIRE(moe->layers()[1]->moe);
  REQUIRE_FALSE(moe->layers()[0]->moe);
  REQUIRE(moe->layers()[3]->moe);
  const std::vector<int64_t> row = {1, 5, 7, 9, 3, 3, 2, 8, 30, 12};
  CHECK(max_abs_diff(cbtm::test::logits_of(moe, row), cbtm::test::logits_of(dense, row)) < 1e-5);
  CHECK(moe->dropped_fraction() == 0.0);
  // The routers are new: training them changes the mixture, not the copies.
  CHECK(moe->layers()[1]->moe->gate.abs().sum().item<double>() > 0);
  // Dimensions must match.
  OptConfig other = moe_config(4, 2, 2.0);
  other.d_ff = 32;
  OptLM wrong(other);
  CHECK_THROWS_AS(cbtm::models::upcycle(wrong, dense), cbtm::Error);
}

TEST_CASE("moe: top-2 routing, first choices first, assignments past the capacity dropped") {
  torch::manual_seed(0);
  const int64_t D = 4, F = 6, E = 4, K = 2, N = 8;
  MoeFfn m(D, F, E, K, /*capacity_factor=*/1.0);  // C = ceil(1 x 8 x 2 / 4) = 4
  {
    torch::NoGradGuard g;
    random_experts_zero_gate(m);
    m->gate[0].fill_(2.0);  // positive inputs: expert 0 first, expert 1 second for every token
    m->gate[1].fill_(1.0);
  }
  const torch::Tensor x = torch::rand({1, N, D}) + 0.5;
  torch::Tensor y;
  {
    torch::NoGradGuard g;
    y = m->forward(x).squeeze(0);
  }
  CHECK(m->last_capacity == 4);
  CHECK(m->last_dropped == Approx(0.5));  // tokens 4..7 lose both assignments
  const torch::Tensor probs = torch::softmax(torch::matmul(x.squeeze(0), m->gate.t()), -1);
  for (int64_t t = 0; t < N; ++t) {
    INFO("token " << t);
    const double p0 = probs[t][0].item<double>(), p1 = probs[t][1].item<double>();
    torch::Tensor want = torch::zeros({D});
    if (t < 4) want = (p0 * expert_ffn(m, 0, x[0][t]) + p1 * expert_ffn(m, 1, x[0][t])) / (p0 + p1);
    CHECK(max_abs_diff(y[t], want.detach()) < 1e-5);
  }
}

TEST_CASE("moe: a token that loses one assignment is renormalised over the other - nothing is dropped at evaluation") {
  torch::manual_seed(2);
  const int64_t D = 4, F = 6, E = 4, K = 2, N = 8;
  MoeFfn m(D, F, E, K, /*capacity_factor=*/1.0);  // C = 4
  {
    torch::NoGradGuard g;
    random_experts_zero_gate(m);
    m->gate[0][0] = 2.0;  // tokens 0..3 (feature 0): expert 0 first, expert 1 second
    m->gate[2][1] = 2.0;  // tokens 4..7 (feature 1): expert 2 first, expert 1 second
    m->gate[1][0] = 1.0;
    m->gate[1][1] = 1.0;
  }
  torch::Tensor x = torch::zeros({1, N, D});
  for (int64_t t = 0; t < N; ++t) x[0][t][t < 4 ? 0 : 1] = 1.0 + 0.1 * static_cast<double>(t);
  const torch::Tensor probs = torch::softmax(torch::matmul(x.squeeze(0), m->gate.t()), -1).detach();
  auto mix = [&](int64_t t, int64_t a, int64_t b) {
    const double pa = probs[t][a].item<double>(), pb = probs[t][b].item<double>();
    return ((pa * expert_ffn(m, a, x[0][t]) + pb * expert_ffn(m, b, x[0][t])) / (pa + pb)).detach();
  };
  torch::NoGradGuard g;
  // training: expert 1 serves the second choices of tokens 0..3 only; tokens 4..7 keep expert 2
  // alone, at weight 1 (not p2 / (p1 + p2))
  torch::Tensor y = m->forward(x).squeeze(0);
  CHECK(m->last_dropped == Approx(0.25));
  for (int64_t t = 0; t < N; ++t) {
    INFO("training, token " << t);
    const torch::Tensor want = t < 4 ? mix(t, 0, 1) : expert_ffn(m, 2, x[0][t]).detach();
    CHECK(max_abs_diff(y[t], want) < 1e-5);
  }
  // evaluation: every assignment served, whatever else is in the batch
  m->eval();
  y = m->forward(x).squeeze(0);
  CHECK(m->last_dropped == 0.0);
  for (int64_t t = 0; t < N; ++t) {
    INFO("eval, token " << t);
    CHECK(max_abs_diff(y[t], t < 4 ? mix(t, 0, 1) : mix(t, 2, 1)) < 1e-5);
  }
}

TEST_CASE("moe: the load-balancing loss is E sum f_e P_e, 1 for uniform routing, and trains the router") {
  torch::manual_seed(1);
  const int64_t D = 8, E = 4, N = 64;
  MoeFfn m(D, 12, E, 2, 2.0);
  {
    torch::NoGradGuard g;
    m->gate.zero_();
  }
  const torch::Tensor x = torch::randn({2, N / 2, D});
  m->forward(x);
  // uniform probabilities: f sums to 1, P_e = 1/E
  CHECK(m->last_aux_loss.item<double>() == Approx(1.0).epsilon(1e-6));
  {
    torch::NoGradGuard g;
    m->gate.normal_(0, 1.0);
  }
  m->forward(x);
  const torch::Tensor probs = torch::softmax(torch::matmul(x.reshape({N, D}), m->gate.t()), -1).detach();
  std::vector<double> f(E, 0.0), P(E, 0.0);
  for (int64_t t = 0; t < N; ++t) {
    f[static_cast<size_t>(probs[t].argmax().item<int64_t>())] += 1.0 / N;
    for (int64_t e = 0; e < E; ++e) P[static_cast<size_t>(e)] += probs[t][e].item<double>() / N;
  }
  double want = 0;
  for (int64_t e = 0; e < E; ++e) want += E * f[static_cast<size_t>(e)] * P[static_cast<size_t>(e)];
  CHECK(m->last_aux_loss.item<double>() == Approx(want).epsilon(1e-5));
  CHECK(want > 1.0);  // unbalanced routing costs more than uniform
  m->last_aux_loss.backward();
  CHECK(m->gate.grad().abs().sum().item<double>() > 0);
}

TEST_CASE("moe: checkpoints round-trip, and counts include every expert") {
  cbtm::test::TempDir t("moe-ckpt");
  OptConfig c = moe_config(3, 1, 1.5);
  c.moe_every = 1;
  OptLM m(c);
  m->init_weights(5);
  m->eval();
  cbtm::models::save_checkpoint(m, t / "ckpt");
  const OptConfig back = cbtm::models::read_config(t / "ckpt");
  CHECK(back.moe_experts == 3);
  CHECK(back.moe_top_k == 1);
  CHECK(back.moe_every == 1);
  CHECK(back.moe_capacity_factor == 1.5);
  OptLM loaded = cbtm::models::load_checkpoint(t / "ckpt");
  const std::vector<int64_t> row = {4, 2, 9, 11, 1};
  CHECK(max_abs_diff(cbtm::test::logits_of(loaded, row), cbtm::test::logits_of(m, row)) == 0.0);
  // the model's load-balancing loss is the mean over its mixture blocks
  double sum = 0;
  int blocks = 0;
  for (const auto& layer : m->layers())
    if (layer->moe) {
      sum += layer->moe->last_aux_loss.item<double>();
      ++blocks;
    }
  REQUIRE(blocks == c.n_layers);
  CHECK(m->aux_loss().item<double>() == Approx(sum / blocks).epsilon(1e-6));
  int64_t numel = 0;
  for (const auto& p : m->parameters()) numel += p.numel();
  CHECK(cbtm::models::count_parameters(c) == numel);
  // FLOPs: a top-k token runs k FFNs in each mixture block (+ the router)
  OptConfig top2 = c;
  top2.moe_top_k = 2;
  OptConfig dense = cbtm::test::tiny_opt_config();
  dense.n_layers = 4;
  const double extra = 4 * (1 * 2.0 * dense.d_model * dense.d_ff + 3.0 * dense.d_model);
  CHECK(cbtm::models::model_flops_per_token(top2, 16) - cbtm::models::model_flops_per_token(dense, 16) ==
        Approx(6.0 * extra));
  OptConfig bad = c;
  bad.moe_top_k = 4;
  CHECK_THROWS_AS(bad.validate(), cbtm::OptionError);
}

TEST_CASE("moe: top-1 scales each token's expert output by its gate probability - so the output trains the router") {
  torch::manual_seed(3);
  const int64_t D = 6, F = 10, E = 3, N = 8;
  MoeFfn m(D, F, E, 1, 4.0);  // capacity E / top_k or more: nothing dropped
  {
    torch::NoGradGuard g;
    m->gate.normal_(0, 1.0);
    m->fc1_weight.normal_(0, 0.5);
    m->fc2_weight.normal_(0, 0.5);
    m->fc1_bias.normal_(0, 0.1);
    m->fc2_bias.normal_(0, 0.1);
  }
  const torch::Tensor x = torch::randn({1, N, D});
  const torch::Tensor y = m->forward(x);
  REQUIRE(m->last_dropped == 0.0);
  // by hand: p = softmax(gate x), e = argmax p, y = p_e * FFN_e(x)
  const torch::Tensor xf = x.reshape({N, D});
  const torch::Tensor p = torch::softmax(torch::matmul(xf, m->gate.t()), -1);
  for (int64_t t = 0; t < N; ++t) {
    const int64_t e = p[t].argmax().item<int64_t>();
    const torch::Tensor h = torch::relu(torch::matmul(m->fc1_weight[e], xf[t]) + m->fc1_bias[e]);
    const torch::Tensor want = p[t][e] * (torch::matmul(m->fc2_weight[e], h) + m->fc2_bias[e]);
    CHECK(torch::allclose(y[0][t], want, 1e-4, 1e-5));
  }
  // the output alone (no balancing loss) reaches the router
  y.sum().backward();
  CHECK(m->gate.grad().abs().sum().item<double>() > 0);
}
