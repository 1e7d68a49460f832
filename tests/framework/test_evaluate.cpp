#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "cbtm/language_model.h"
#include "cbtm/pipeline/evaluate.h"
#include "cbtm/router.h"

namespace {

// A fake expert: log p(token t) = -(1 + (t + salt) % 5) / 4, recognisable per expert.
class FakeLM : public cbtm::LanguageModel {
 public:
  explicit FakeLM(int salt) : salt_(salt) {}
  std::vector<std::vector<float>> score(const std::vector<std::vector<int32_t>>& seqs) override {
    std::vector<std::vector<float>> out;
    for (const auto& s : seqs) {
      std::vector<float> lp;
      for (size_t t = 1; t < s.size(); ++t) lp.push_back(-static_cast<float>(1 + (s[t] + salt_) % 5) / 4.f);
      out.push_back(lp);
    }
    return out;
  }
  int64_t max_length() const override { return 1000; }
  int64_t parameters() const override { return 0; }

 private:
  int salt_;
};

// Weight only on `expert` everywhere (or uniform when expert < 0).
class FixedRouter : public cbtm::Router {
 public:
  FixedRouter(int k, int expert) : k_(k), e_(expert) {}
  void bind(const cbtm::RoutingContext&) override {}
  cbtm::Matrix route(const cbtm::Document&, const std::vector<std::string>& pieces) const override {
    cbtm::Matrix w(static_cast<int64_t>(pieces.size()), k_, e_ < 0 ? 1.f / k_ : 0.f);
    if (e_ >= 0)
      for (int64_t t = 0; t < w.rows; ++t) w.at(t, e_) = 1.f;
    return w;
  }

 private:
  int k_, e_;
};

std::vector<cbtm::EvalDoc> docs() {
  std::vector<cbtm::EvalDoc> d(3);
  const std::vector<std::vector<int32_t>> rows = {{2, 10, 11, 12, 2}, {2, 7, 2}, {2, 20, 21, 22, 23, 24, 2}};
  for (size_t i = 0; i < 3; ++i) {
    d[i].id = "d" + std::to_string(i);
    d[i].domain = i == 1 ? "b" : "a";
    d[i].row = rows[i];
    d[i].pieces.assign(rows[i].size() - 1, "x");
    d[i].bytes = static_cast<int64_t>(rows[i].size());
  }
  return d;
}

}  // namespace

TEST_CASE("evaluate: an ensemble routed to one expert equals that expert, and only it runs") {
  const auto d = docs();
  cbtm::EnsembleEvaluator ev(d, 3);
  FixedRouter only1(3, 1);
  ev.add("only1", only1);
  std::set<int> loaded;
  ev.run([&](int32_t j) {
    loaded.insert(j);
    return std::make_unique<FakeLM>(j);
  });
  CHECK(loaded == std::set<int>{1});  // experts 0 and 2 have zero weight: never loaded
  FakeLM direct(1);
  const cbtm::ModelScore want = cbtm::score_model(direct, d);
  const auto got = ev.result("only1");
  CHECK(got.score.all.nll == Approx(want.all.nll));
  CHECK(got.score.all.tokens == 4 + 2 + 6);
  CHECK(got.score.by_domain.at("b").tokens == 2);
  CHECK(got.mean_active_experts == 1.0);
  CHECK(got.mean_token_experts == 1.0);
  CHECK(got.expert_doc_runs == 3);
  CHECK_FALSE(ev.has_standalone(0));
  CHECK_FALSE(ev.has_oracle());
}

TEST_CASE("evaluate: the uniform mixture and the oracle match direct computations") {
  const auto d = docs();
  cbtm::EnsembleEvaluator ev(d, 2);
  FixedRouter uniform(2, -1);
  ev.add("uniform", uniform);
  ev.run([](int32_t j) { return std::make_unique<FakeLM>(j); });
  double nll = 0, oracle = 0;
  for (const auto& doc : d) {
    double per[2] = {0, 0};
    for (size_t t = 1; t < doc.row.size(); ++t) {
      const double p0 = std::exp(-(1 + (doc.row[t] + 0) % 5) / 4.0), p1 = std::exp(-(1 + (doc.row[t] + 1) % 5) / 4.0);
      nll -= std::log(0.5 * p0 + 0.5 * p1);
      per[0] -= std::log(p0);
      per[1] -= std::log(p1);
    }
    oracle += std::min(per[0], per[1]);
  }
  CHECK(ev.result("uniform").score.all.nll == Approx(nll).epsilon(1e-6));
  CHECK(ev.result("uniform").mean_token_experts == 2.0);
  REQUIRE(ev.has_oracle());
  CHECK(ev.oracle().all.nll == Approx(oracle).epsilon(1e-6));
  CHECK(ev.standalone(0).all.ppl() == Approx(std::exp(ev.standalone(0).all.nll / 12)));
}
