#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "cbtm/error.h"
#include "cbtm/language_model.h"
#include "cbtm/pipeline/evaluate.h"
#include "cbtm/router.h"

namespace {

// A fake expert: log p(token t) = -(1 + (t + salt) % 5) / 4, recognisable per expert.
class FakeLM : public cbtm::LanguageModel {
 public:
  explicit FakeLM(int salt, std::vector<size_t>* lengths = nullptr) : salt_(salt), lengths_(lengths) {}
  std::vector<std::vector<float>> score(const std::vector<std::vector<int32_t>>& seqs) override {
    std::vector<std::vector<float>> out;
    for (const auto& s : seqs) {
      if (lengths_) lengths_->push_back(s.size());
      std::vector<float> lp;
      for (size_t t = 1; t < s.size(); ++t) lp.push_back(-static_cast<float>(1 + (s[t] + salt_) % 5) / 4.f);
      out.push_back(lp);
    }
    return out;
  }
  // The default score_positions (NaN where not wanted), recording what was asked.
  std::vector<std::vector<float>> score_positions(const std::vector<std::vector<int32_t>>& seqs,
                                                  const std::vector<std::vector<uint8_t>>& wanted) override {
    asked.insert(asked.end(), wanted.begin(), wanted.end());
    return LanguageModel::score_positions(seqs, wanted);
  }
  int64_t max_length() const override { return 1000; }
  int64_t parameters() const override { return 0; }
  std::vector<std::vector<uint8_t>> asked;

 private:
  int salt_;
  std::vector<size_t>* lengths_;
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

// Weights that do not sum to 1 at one position of one document (a buggy plugin).
class LeakyRouter : public cbtm::Router {
 public:
  void bind(const cbtm::RoutingContext&) override {}
  cbtm::Matrix route(const cbtm::Document& d, const std::vector<std::string>& pieces) const override {
    cbtm::Matrix w(static_cast<int64_t>(pieces.size()), 2, 0.5f);
    if (d.id == "d2") w.at(3, 0) = 0.f;  // sums to 0.5
    return w;
  }
};

TEST_CASE("evaluate: router weights that are not weights are an Error naming the ensemble - document and position") {
  auto d = docs();
  for (auto& x : d) x.doc.id = x.id;
  cbtm::EnsembleEvaluator ev(d, 2);
  LeakyRouter leaky;
  CHECK_THROWS_WITH(ev.add("leaky", leaky), ContainsText("ensemble 'leaky'") && ContainsText("document 2 (d2)") &&
                                                ContainsText("position 3") && ContainsText("sum to 0.5"));
}

// Expert 0 for the first `head` positions, expert 1 afterwards.
class HeadRouter : public cbtm::Router {
 public:
  explicit HeadRouter(int64_t head) : head_(head) {}
  void bind(const cbtm::RoutingContext&) override {}
  cbtm::Matrix route(const cbtm::Document&, const std::vector<std::string>& pieces) const override {
    cbtm::Matrix w(static_cast<int64_t>(pieces.size()), 2);
    for (int64_t t = 0; t < w.rows; ++t) w.at(t, t < head_ ? 0 : 1) = 1.f;
    return w;
  }

 private:
  int64_t head_;
};

TEST_CASE("evaluate: an expert needed for a prefix runs on that prefix only, and the mixture is unchanged") {
  const auto d = docs();  // rows of 5, 3 and 7 tokens: 4, 2 and 6 scored
  cbtm::EnsembleEvaluator ev(d, 2);
  HeadRouter head(2);
  ev.add("head", head);
  std::vector<std::vector<size_t>> lengths(2);
  ev.run([&](int32_t j) { return std::make_unique<FakeLM>(j, &lengths[j]); });
  std::sort(lengths[0].begin(), lengths[0].end());
  std::sort(lengths[1].begin(), lengths[1].end());
  CHECK(lengths[0] == std::vector<size_t>{3, 3, 3});  // 2 scored positions + the first token
  CHECK(lengths[1] == std::vector<size_t>{5, 7});      // the 3-token row never needs expert 1
  double nll = 0;
  for (const auto& doc : d)
    for (size_t t = 1; t < doc.row.size(); ++t) nll += (1 + (doc.row[t] + (t <= 2 ? 0 : 1)) % 5) / 4.0;
  const auto r = ev.result("head");
  CHECK(r.score.all.nll == Approx(nll).epsilon(1e-6));
  CHECK(r.expert_tokens == (2 + 2 + 2) + (4 + 0 + 6));  // expert 0: 2 per doc; expert 1 runs the whole row where it is needed
  CHECK(r.expert_token_fraction == Approx(double(r.expert_tokens) / (2.0 * 12)));
  CHECK_FALSE(ev.has_standalone(0));
  CHECK_FALSE(ev.has_oracle());
}

TEST_CASE("evaluate: result over one document equals evaluating that document alone") {
  const auto d = docs();
  cbtm::EnsembleEvaluator ev(d, 2);
  HeadRouter head(2);
  ev.add("head", head);
  ev.run([&](int32_t j) { return std::make_unique<FakeLM>(j); });
  double nll = 0;
  int64_t tokens = 0, expert_tokens = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    const std::vector<cbtm::EvalDoc> one = {d[i]};
    cbtm::EnsembleEvaluator alone(one, 2);
    alone.add("head", head);
    alone.run([&](int32_t j) { return std::make_unique<FakeLM>(j); });
    const auto want = alone.result("head");
    const auto got = ev.result("head", i);
    CHECK(got.score.all.nll == Approx(want.score.all.nll).epsilon(1e-9));
    CHECK(got.score.all.tokens == want.score.all.tokens);
    CHECK(got.score.all.bytes == want.score.all.bytes);
    CHECK(got.score.all.docs == 1);
    CHECK(got.mean_active_experts == want.mean_active_experts);  // 1 for the 3-token row, else 2
    CHECK(got.expert_tokens == want.expert_tokens);
    CHECK(got.expert_token_fraction == Approx(want.expert_token_fraction));
    CHECK(ev.mixed("head", i) == alone.mixed("head", 0));
    nll += got.score.all.nll;
    tokens += got.score.all.tokens;
    expert_tokens += got.expert_tokens;
  }
  CHECK(ev.result("head", 1).mean_active_experts == 1.0);
  CHECK(nll == Approx(ev.result("head").score.all.nll).epsilon(1e-9));
  CHECK(tokens == ev.result("head").score.all.tokens);
  CHECK(expert_tokens == ev.result("head").expert_tokens);
  CHECK_THROWS_AS(ev.result("head", 3), std::out_of_range);
}

// Routes from the experts' scores: all weight on the expert that predicted the previous token best.
class LastBestRouter : public cbtm::Router {
 public:
  void bind(const cbtm::RoutingContext&) override {}
  bool needs_expert_scores() const override { return true; }
  cbtm::Matrix route(const cbtm::Document&, const std::vector<std::string>&) const override { throw cbtm::Error("no"); }
  cbtm::Matrix route_scored(const cbtm::Document&, const std::vector<std::string>& pieces,
                            const std::vector<std::vector<float>>& lp) const override {
    cbtm::Matrix w(static_cast<int64_t>(pieces.size()), 2);
    for (int64_t t = 0; t < w.rows; ++t) w.at(t, t == 0 || lp[0][t - 1] >= lp[1][t - 1] ? 0 : 1) = 1.f;
    return w;
  }
};

TEST_CASE("evaluate: a router that needs expert scores gets every expert's full scores, then mixes as routed") {
  const auto d = docs();
  cbtm::EnsembleEvaluator ev(d, 2);
  LastBestRouter r;
  ev.add("btm", r);
  CHECK_THROWS(ev.result("btm"));  // not routed before run()
  ev.run([](int32_t j) { return std::make_unique<FakeLM>(j); });
  REQUIRE(ev.has_oracle());  // every expert ran on every whole document
  double nll = 0;
  auto lp = [](int32_t tok, int j) { return -(1 + (tok + j) % 5) / 4.0; };
  for (const auto& doc : d)
    for (size_t t = 1; t < doc.row.size(); ++t) {
      const int j = t == 1 || lp(doc.row[t - 1], 0) >= lp(doc.row[t - 1], 1) ? 0 : 1;
      nll -= lp(doc.row[t], j);
    }
  CHECK(ev.result("btm").score.all.nll == Approx(nll).epsilon(1e-6));
  CHECK(ev.result("btm").mean_token_experts == 1.0);
  // Compute: the router read both experts' scores (the default scores_read: every position),
  // so both count on every document although each position weights one.
  CHECK(ev.result("btm").expert_tokens == 2 * 12);
  CHECK(ev.result("btm").mean_active_experts == 2.0);
}

// LastBestRouter that declares it read only the first `read` scored tokens of each expert.
class ReadsPrefixRouter : public LastBestRouter {
 public:
  explicit ReadsPrefixRouter(int64_t read) : read_(read) {}
  std::vector<int64_t> scores_read(const cbtm::Matrix& w) const override {
    return std::vector<int64_t>(static_cast<size_t>(w.cols), read_);
  }

 private:
  int64_t read_;
};

TEST_CASE("evaluate: a scored router's compute is where it weights an expert or read its scores") {
  const auto d = docs();  // 4, 2 and 6 scored positions
  cbtm::EnsembleEvaluator ev(d, 2);
  ReadsPrefixRouter none(0), two(2);
  ev.add("none", none);
  ev.add("two", two);
  ev.run([](int32_t j) { return std::make_unique<FakeLM>(j); });
  // Independently: expert j is needed up to 1 + its last weighted position (by the same rule).
  auto lp = [](int32_t tok, int j) { return -(1 + (tok + j) % 5) / 4.0; };
  int64_t weighted = 0, with_two = 0;
  for (const auto& doc : d) {
    int64_t last[2] = {0, 0};
    for (size_t t = 1; t < doc.row.size(); ++t) {
      const int j = t == 1 || lp(doc.row[t - 1], 0) >= lp(doc.row[t - 1], 1) ? 0 : 1;
      last[j] = static_cast<int64_t>(t);
    }
    weighted += last[0] + last[1];
    with_two += std::max<int64_t>(last[0], std::min<int64_t>(2, doc.row.size() - 1)) +
                std::max<int64_t>(last[1], std::min<int64_t>(2, doc.row.size() - 1));
  }
  CHECK(ev.result("none").expert_tokens == weighted);
  CHECK(ev.result("two").expert_tokens == with_two);
  CHECK(with_two > weighted);
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

TEST_CASE("evaluate: the specialisation matrix is each expert's perplexity per cluster over its own expert's") {
  const auto d = docs();
  cbtm::EnsembleEvaluator ev(d, 2);
  FixedRouter uniform(2, -1);
  ev.add("uniform", uniform);
  ev.run([](int32_t j) { return std::make_unique<FakeLM>(j); });
  const std::vector<int32_t> cluster = {1, 1, 0};  // documents 0 and 1 in cluster 1, document 2 in cluster 0
  const auto s = cbtm::specialisation(ev, d, cluster, 2);
  // by hand: log p_j(t) = -(1 + (t + j) % 5) / 4
  auto nll = [&](size_t i, int j) {
    double v = 0;
    for (size_t t = 1; t < d[i].row.size(); ++t) v += (1 + (d[i].row[t] + j) % 5) / 4.0;
    return v;
  };
  const double tok1 = 4 + 2, tok0 = 6;
  const double p1[2] = {std::exp((nll(0, 0) + nll(1, 0)) / tok1), std::exp((nll(0, 1) + nll(1, 1)) / tok1)};
  const double p0[2] = {std::exp(nll(2, 0) / tok0), std::exp(nll(2, 1) / tok0)};
  CHECK(s.docs == std::vector<int64_t>{1, 2});
  CHECK(s.ppl[1][0] == Approx(p1[0]).epsilon(1e-6));
  CHECK(s.ppl[1][1] == Approx(p1[1]).epsilon(1e-6));
  CHECK(s.ppl[0][1] == Approx(p0[1]).epsilon(1e-6));
  CHECK(s.ratio[1][1] == Approx(1.0));
  CHECK(s.ratio[0][0] == Approx(1.0));
  CHECK(s.ratio[1][0] == Approx(p1[0] / p1[1]).epsilon(1e-6));
  CHECK(s.ratio[0][1] == Approx(p0[1] / p0[0]).epsilon(1e-6));
  const auto j = s.to_json();
  CHECK(j["ratio"][0][1].get<double>() == Approx(p0[1] / p0[0]).epsilon(1e-6));
  // an empty cluster has no row; wrong inputs fail clearly
  const auto e = cbtm::specialisation(ev, d, {1, 1, 1}, 2);
  CHECK(std::isnan(e.ppl[0][0]));
  CHECK(e.to_json()["ratio"][0][0].is_null());
  CHECK_THROWS_WITH(cbtm::specialisation(ev, d, {0, 1}, 2), ContainsText("2 cluster ids for 3 documents"));
  CHECK_THROWS_WITH(cbtm::specialisation(ev, d, {0, 1, 5}, 2), ContainsText("out of range"));
  cbtm::EnsembleEvaluator top1(d, 2);
  FixedRouter only0(2, 0);
  top1.add("only0", only0);
  top1.run([](int32_t j) { return std::make_unique<FakeLM>(j); });
  CHECK_THROWS_WITH(cbtm::specialisation(top1, d, cluster, 2), ContainsText("every expert"));
}

// All weight on expert 1 at odd positions, on expert 0 at even ones.
class AlternatingRouter : public cbtm::Router {
 public:
  void bind(const cbtm::RoutingContext&) override {}
  cbtm::Matrix route(const cbtm::Document&, const std::vector<std::string>& pieces) const override {
    cbtm::Matrix w(static_cast<int64_t>(pieces.size()), 2);
    for (int64_t t = 0; t < w.rows; ++t) w.at(t, t % 2) = 1.f;
    return w;
  }
};

TEST_CASE("evaluate: experts are asked for the positions where they are weighted only, and the mixture is exact") {
  const auto d = docs();  // 4, 2 and 6 scored positions
  cbtm::EnsembleEvaluator ev(d, 2);
  AlternatingRouter alt;
  ev.add("alt", alt);
  std::vector<std::vector<std::vector<uint8_t>>> asked(2);
  ev.run([&](int32_t j) {
    struct Recorder : FakeLM {
      std::vector<std::vector<uint8_t>>& out;
      Recorder(int j, std::vector<std::vector<uint8_t>>& o) : FakeLM(j), out(o) {}
      ~Recorder() override { out = asked; }
    };
    return std::make_unique<Recorder>(j, asked[j]);
  });
  // expert 0: even positions up to its last one; expert 1: odd positions
  std::sort(asked[0].begin(), asked[0].end());
  std::sort(asked[1].begin(), asked[1].end());
  CHECK(asked[0] == std::vector<std::vector<uint8_t>>{{1}, {1, 0, 1}, {1, 0, 1, 0, 1}});
  CHECK(asked[1] == std::vector<std::vector<uint8_t>>{{0, 1}, {0, 1, 0, 1}, {0, 1, 0, 1, 0, 1}});
  double nll = 0;
  for (const auto& doc : d)
    for (size_t t = 1; t < doc.row.size(); ++t) nll += (1 + (doc.row[t] + static_cast<int>((t - 1) % 2)) % 5) / 4.0;
  const auto r = ev.result("alt");
  CHECK(std::isfinite(r.score.all.nll));
  CHECK(r.score.all.nll == Approx(nll).epsilon(1e-6));
  CHECK_FALSE(ev.has_standalone(0));  // NaN where unweighted: no standalone score, no oracle
  CHECK_FALSE(ev.has_standalone(1));

  SECTION("a later ensemble that needs every position rescores, keeping what was there") {
    FixedRouter uniform(2, -1);
    ev.add("uniform", uniform);
    ev.run([&](int32_t j) { return std::make_unique<FakeLM>(j); });
    CHECK(ev.has_oracle());
    CHECK(ev.result("alt").score.all.nll == Approx(nll).epsilon(1e-6));
    for (size_t i = 0; i < d.size(); ++i)
      for (float v : ev.expert_log_probs(0, i)) CHECK(std::isfinite(v));
  }
}

TEST_CASE("LanguageModel::score_positions: NaN where not wanted - a mask of the wrong length is an Error") {
  FakeLM lm(0);
  const auto out = lm.score_positions({{2, 10, 11, 12}, {2, 7}}, {{0, 1, 0}, {1}});
  REQUIRE(out.size() == 2);
  CHECK(std::isnan(out[0][0]));
  CHECK(out[0][1] == -static_cast<float>(1 + 11 % 5) / 4.f);
  CHECK(std::isnan(out[0][2]));
  CHECK(out[1][0] == -static_cast<float>(1 + 7 % 5) / 4.f);
  CHECK_THROWS_WITH(lm.score_positions({{2, 10, 11}}, {{1}}), ContainsText("sequence 0") && ContainsText("2 scored tokens"));
  CHECK_THROWS_WITH(lm.score_positions({{2, 10}}, {}), ContainsText("0 position masks for 1 sequences"));
}

// next_token_log_probs only: log p(v | row) = -(v + row.size() + row.back()) / 100.
class NextOnlyLM : public cbtm::LanguageModel {
 public:
  std::vector<std::vector<float>> score(const std::vector<std::vector<int32_t>>&) override { throw cbtm::Error("no"); }
  std::vector<std::vector<float>> next_token_log_probs(const std::vector<std::vector<int32_t>>& rows) override {
    std::vector<std::vector<float>> out;
    for (const auto& r : rows) {
      std::vector<float> lp;
      for (int v = 0; v < 4; ++v) lp.push_back(-static_cast<float>(v + r.size() + r.back()) / 100.f);
      out.push_back(lp);
    }
    return out;
  }
  int64_t max_length() const override { return 6; }
  int64_t parameters() const override { return 0; }
};

TEST_CASE("LanguageModel::continuation (default): extend appends and recomputes the whole sequence") {
  NextOnlyLM lm;
  auto c = lm.continuation();
  CHECK(c->extend({2, 5}) == std::vector<float>{-0.07f, -0.08f, -0.09f, -0.10f});  // row {2, 5}: 2 + 5
  CHECK(c->extend({1}) == std::vector<float>{-0.04f, -0.05f, -0.06f, -0.07f});     // row {2, 5, 1}: 3 + 1
  CHECK_THROWS_WITH(c->extend({}), ContainsText("no tokens"));
  CHECK_THROWS_WITH(c->extend({1, 1, 1, 1}), ContainsText("more than the model's 6"));
}
