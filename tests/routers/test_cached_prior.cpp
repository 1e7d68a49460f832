// The "cached_prior" router (BTM): prior from an EMA of calibration posteriors, times each
// expert's likelihood of the document so far -- against a hand computation.
#include "support/catch.h"

#include <cmath>

#include "cbtm/ensemble.h"
#include "cbtm/router.h"
#include "support/test_support.h"

namespace {

std::unique_ptr<cbtm::Router> make(const std::string& yaml) {
  cbtm::ConfigNode n;
  n.node = YAML::Load(yaml);
  n.path = "eval.ensembles.btm";
  return cbtm::test::plugins().registry().create<cbtm::Router>(n);
}

}  // namespace

TEST_CASE("cached_prior router: prior from calibration, then prior x likelihood so far, by hand") {
  auto r = make("{type: cached_prior, calibration_docs: 2, ema: 0.5, ema_batch: 1}");
  cbtm::RoutingContext ctx;
  ctx.experts = 2;
  r->bind(ctx);
  CHECK(r->needs_expert_scores());
  CHECK(r->calibration_docs() == 2);
  // Calibration document 1: expert 0 assigns total log-likelihood -1, expert 1 -1 - ln 3, so
  // the posterior under the uniform prior is (3/4, 1/4); the prior becomes
  // 0.5 (1/2, 1/2) + 0.5 (3/4, 1/4) = (5/8, 3/8). Document 2: equal likelihoods, posterior =
  // prior, which stays (5/8, 3/8).
  const float l3 = static_cast<float>(std::log(3.0));
  r->calibrate({{{-0.5f, -0.5f}, {-0.5f, -0.5f - l3}}, {{-2.f}, {-2.f}}});
  // A document with 3 positions: row 0 = prior, row 1 x p(token 1), row 2 x p(tokens 1, 2).
  const std::vector<std::vector<float>> lp = {{std::log(0.5f), std::log(0.1f), -9.f}, {std::log(0.25f), std::log(0.4f), -1.f}};
  const cbtm::Matrix w = r->route_scored({}, {"", "a", "b"}, lp);
  REQUIRE(w.rows == 3);
  const double p0 = 5.0 / 8, p1 = 3.0 / 8;
  CHECK(w.at(0, 0) == Approx(p0).epsilon(1e-6));
  const double a1 = p0 * 0.5, b1 = p1 * 0.25;
  CHECK(w.at(1, 0) == Approx(a1 / (a1 + b1)).epsilon(1e-6));
  const double a2 = p0 * 0.5 * 0.1, b2 = p1 * 0.25 * 0.4;
  CHECK(w.at(2, 0) == Approx(a2 / (a2 + b2)).epsilon(1e-6));
  CHECK(w.at(2, 1) == Approx(b2 / (a2 + b2)).epsilon(1e-6));

  // ema_batch 2 (the default, 16, takes both too): both posteriors under the uniform prior,
  // (3/4, 1/4) and (1/2, 1/2), averaged to (5/8, 3/8), then one step:
  // 0.5 (1/2, 1/2) + 0.5 (5/8, 3/8) = (9/16, 7/16) -- whatever the documents' order
  for (const char* opts : {"{type: cached_prior, calibration_docs: 2, ema: 0.5, ema_batch: 2}",
                           "{type: cached_prior, calibration_docs: 2, ema: 0.5}"}) {
    auto batched = make(opts);
    batched->bind(ctx);
    batched->calibrate({{{-2.f}, {-2.f}}, {{-0.5f, -0.5f}, {-0.5f, -0.5f - l3}}});
    const cbtm::Matrix b = batched->route_scored({}, {"", "a", "b"}, lp);
    CHECK(b.at(0, 0) == Approx(9.0 / 16).epsilon(1e-6));
    CHECK(b.at(0, 1) == Approx(7.0 / 16).epsilon(1e-6));
  }

  // update: false keeps the prior; top_k 1 keeps the most likely expert
  auto frozen = make("{type: cached_prior, calibration_docs: 0, update: false}");
  frozen->bind(ctx);
  const cbtm::Matrix f = frozen->route_scored({}, {"", "a", "b"}, lp);
  for (int64_t t = 0; t < 3; ++t) CHECK(f.at(t, 0) == Approx(0.5));
  auto top1 = make("{type: cached_prior, calibration_docs: 0, top_k: 1}");
  top1->bind(ctx);
  const cbtm::Matrix t1 = top1->route_scored({}, {"", "a", "b"}, lp);
  CHECK(t1.at(1, 0) == 1.f);  // 0.5 x 0.5 > 0.5 x 0.25
  CHECK(t1.at(2, 1) == 1.f);  // 0.05 < 0.1
}

TEST_CASE("cached_prior router: a short last calibration batch joins the one before and the prior is floored") {
  cbtm::RoutingContext ctx;
  ctx.experts = 2;
  const float l3 = static_cast<float>(std::log(3.0));
  const std::vector<std::vector<float>> skewed = {{-0.5f, -0.5f}, {-0.5f, -0.5f - l3}};  // posterior (3/4, 1/4)
  const std::vector<std::vector<float>> even = {{-2.f}, {-2.f}};                          // posterior = prior
  // ema_batch 2 over 3 documents: one batch of 3 (not 2 + 1), all under the uniform prior:
  // mean of (3/4, 1/4), (1/2, 1/2), (3/4, 1/4) = (2/3, 1/3); prior = 0.5 uniform + 0.5 that = (7/12, 5/12).
  auto r = make("{type: cached_prior, calibration_docs: 3, ema: 0.5, ema_batch: 2}");
  r->bind(ctx);
  r->calibrate({skewed, even, skewed});
  const cbtm::Matrix w = r->route_scored({}, {""}, {{0.f}, {0.f}});
  CHECK(w.at(0, 0) == Approx(7.0 / 12).epsilon(1e-6));
  CHECK(w.at(0, 1) == Approx(5.0 / 12).epsilon(1e-6));

  // ema 1 on one document 1000 nats apart: the prior would be (1, 0) and expert 1 could never
  // win; floored at 1e-9 it wins once its likelihood is ahead by more than ln 1e9 = 20.7 nats.
  auto one = make("{type: cached_prior, calibration_docs: 1, ema: 1, ema_batch: 1}");
  one->bind(ctx);
  one->calibrate({{{-1.f}, {-1001.f}}});
  const cbtm::Matrix f = one->route_scored({}, {"", "a", "b"}, {{-1.f, -30.f, 0.f}, {-1.f, -1.f, 0.f}});
  CHECK(f.at(0, 1) > 0.f);
  CHECK(f.at(0, 1) == Approx(1e-9).epsilon(1e-3));
  CHECK(f.at(1, 1) < 0.01f);  // level after one token
  CHECK(f.at(2, 1) > 0.99f);  // 29 nats ahead after two
}

TEST_CASE("cached_prior router: text-only routing, wrong score shapes and bad options fail clearly") {
  auto r = make("{type: cached_prior}");
  cbtm::RoutingContext ctx;
  ctx.experts = 2;
  r->bind(ctx);
  CHECK_THROWS_WITH(r->route({}, {"", "a"}), ContainsText("expert's scores"));
  CHECK_THROWS_WITH(r->route_scored({}, {"", "a"}, {{-1.f, -1.f}}), ContainsText("1 experts, not 2"));
  CHECK_THROWS_WITH(r->route_scored({}, {"", "a"}, {{-1.f}, {-1.f}}), ContainsText("expert 0 scored 1 tokens"));
  CHECK_THROWS_WITH(make("{type: cached_prior, ema: 0}"), ContainsText("ema"));
  CHECK_THROWS_WITH(make("{type: cached_prior, calibration_docs: -1}"), ContainsText("calibration_docs"));
}

TEST_CASE("cached_prior router: fix_experts_after keeps the posterior's top-k set after N tokens, by hand") {
  cbtm::RoutingContext ctx;
  ctx.experts = 3;
  // Per-token probabilities of three experts on a 5-position document (4 scored tokens used).
  const std::vector<std::vector<double>> p = {{0.5, 0.1, 0.1, 0.1, 0.1}, {0.2, 0.4, 0.4, 0.4, 0.4}, {0.3, 0.2, 0.9, 0.05, 0.3}};
  std::vector<std::vector<float>> lp(3);
  for (int j = 0; j < 3; ++j)
    for (double v : p[j]) lp[j].push_back(static_cast<float>(std::log(v)));
  const std::vector<std::string> pieces = {"", "a", "b", "c", "d"};
  // Uniform prior: the posterior at row r is proportional to the product of p_j over tokens < r.
  auto post = [&](int64_t r, const std::vector<int>& set) {
    std::vector<double> u(3, 0.0);
    double s = 0;
    for (int j : set) {
      u[j] = 1;
      for (int64_t t = 0; t < r; ++t) u[j] *= p[j][t];
      s += u[j];
    }
    for (auto& v : u) v /= s;
    return u;
  };

  auto r = make("{type: cached_prior, calibration_docs: 0, top_k: 1, fix_experts_after: 2}");
  r->bind(ctx);
  const cbtm::Matrix w = r->route_scored({}, pieces, lp);
  REQUIRE(w.rows == 5);
  // Rows 0, 1: every expert runs, the full posterior.
  for (int64_t row = 0; row < 2; ++row)
    for (int j = 0; j < 3; ++j) CHECK(w.at(row, j) == Approx(post(row, {0, 1, 2})[j]).margin(1e-6));
  // After 2 tokens: 0.5*0.1 = 0.05, 0.2*0.4 = 0.08, 0.3*0.2 = 0.06 -> expert 1 alone, for the rest
  // of the document, even though expert 2 leads after token 3 (0.054 vs 0.032).
  for (int64_t row = 2; row < 5; ++row) {
    CHECK(w.at(row, 1) == 1.f);
    CHECK(w.at(row, 0) == 0.f);
    CHECK(w.at(row, 2) == 0.f);
  }
  // Compute: experts 0 and 2 are needed on 2 scored tokens, expert 1 on all 5.
  const auto need = cbtm::needed_positions(w);
  CHECK(need == std::vector<int64_t>{2, 5, 2});

  // top_k 2: the set {1, 2} keeps updating its own posterior.
  auto r2 = make("{type: cached_prior, calibration_docs: 0, top_k: 2, fix_experts_after: 2}");
  r2->bind(ctx);
  const cbtm::Matrix w2 = r2->route_scored({}, pieces, lp);
  for (int64_t row = 2; row < 5; ++row)
    for (int j = 0; j < 3; ++j) CHECK(w2.at(row, j) == Approx(post(row, {1, 2})[j]).margin(1e-6));
  // Per-position top-1 (no fixing) would switch to expert 2 at row 3.
  auto pp = make("{type: cached_prior, calibration_docs: 0, top_k: 1}");
  pp->bind(ctx);
  CHECK(pp->route_scored({}, pieces, lp).at(3, 2) == 1.f);
  // A document no longer than N: every expert, the full posterior throughout.
  const cbtm::Matrix s = r->route_scored({}, {"", "a"}, {{lp[0][0], lp[0][1]}, {lp[1][0], lp[1][1]}, {lp[2][0], lp[2][1]}});
  for (int j = 0; j < 3; ++j) CHECK(s.at(1, j) == Approx(post(1, {0, 1, 2})[j]).margin(1e-6));
  CHECK_THROWS_WITH(make("{type: cached_prior, fix_experts_after: 4}"), ContainsText("top_k"));
  CHECK_THROWS_WITH(make("{type: cached_prior, top_k: 1, fix_experts_after: -1}"), ContainsText("fix_experts_after"));
}
