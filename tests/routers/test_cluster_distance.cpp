#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cbtm/clusterer.h"
#include "cbtm/embedder.h"
#include "cbtm/ensemble.h"
#include "cbtm/router.h"
#include "support/routing_toys.h"
#include "support/test_support.h"

namespace {

using cbtm::test::FixedCenters;
using cbtm::test::LetterEmbedder;

cbtm::ConfigNode router_yaml(double T, int k) {
  cbtm::ConfigNode n;
  n.node = YAML::Load("{type: cluster_distance, temperature: " + std::to_string(T) + ", top_k: " + std::to_string(k) + "}");
  n.path = "eval.ensembles.x";
  return n;
}

// Direct eq. 3 for one context text.
// Three centres in 3 dimensions, row j = centre j.
cbtm::Matrix centres3(const float (&rows)[3][3]) {
  cbtm::Matrix c(3, 3);
  for (int j = 0; j < 3; ++j)
    for (int i = 0; i < 3; ++i) c.at(j, i) = rows[j][i];
  return c;
}

std::vector<double> expected(const LetterEmbedder& e, const cbtm::Matrix& c, const std::string& text, double T, int k) {
  const cbtm::Matrix h = e.embed({text});
  std::vector<double> w(static_cast<size_t>(c.rows));
  for (int64_t j = 0; j < c.rows; ++j) {
    double d2 = 0;
    for (int64_t i = 0; i < c.cols; ++i) d2 += std::pow(h.at(0, i) - c.at(j, i), 2);
    w[j] = std::exp(-d2 / T);
  }
  if (k > 0 && k < c.rows) {
    std::vector<size_t> idx(w.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return w[a] > w[b]; });
    for (size_t i = static_cast<size_t>(k); i < idx.size(); ++i) w[idx[i]] = 0;
  }
  const double s = std::accumulate(w.begin(), w.end(), 0.0);
  for (auto& x : w) x /= s;
  return w;
}

}  // namespace

TEST_CASE("cluster_distance router: weights equal eq. 3 at every position - as the context grows") {
  LetterEmbedder emb;
  const float centres[3][3] = {{1, 0, 0}, {0, 0.8f, 0.6f}, {0.3f, 0.3f, 0.9f}};
  const cbtm::Matrix c = centres3(centres);
  FixedCenters cl(c);
  const std::vector<std::string> pieces = {"", "xx", "a", "bb", " c", "cc", "ab"};
  for (double T : {0.1, 1.0}) {
    for (int k : {0, 1, 2, 3, 5}) {  // top_k >= K keeps every expert (a k=1 cell of a top-2 suite)
      auto router = cbtm::test::plugins().registry().create<cbtm::Router>(router_yaml(T, k));
      router->bind({&emb, &cl, 3});
      const cbtm::Matrix w = router->route({}, pieces);
      REQUIRE(w.rows == static_cast<int64_t>(pieces.size()));
      REQUIRE(w.cols == 3);
      std::string prefix;
      for (size_t t = 0; t < pieces.size(); ++t) {
        prefix += pieces[t];
        const auto want = expected(emb, c, prefix, T, k);
        int nonzero = 0;
        for (int j = 0; j < 3; ++j) {
          CHECK(w.at(static_cast<int64_t>(t), j) == Approx(want[j]).margin(1e-6));
          nonzero += w.at(static_cast<int64_t>(t), j) > 0;
        }
        if (k > 0) CHECK(nonzero <= k);
      }
    }
  }
}

TEST_CASE("cluster_distance router: the empty context is routed as the zero embedding") {
  LetterEmbedder emb;
  cbtm::Matrix c(2, 3);
  c.at(0, 0) = 0.2f;  // closer to the origin than centre 1
  c.at(1, 1) = 0.9f;
  FixedCenters cl(c);
  auto router = cbtm::test::plugins().registry().create<cbtm::Router>(router_yaml(0.1, 1));
  router->bind({&emb, &cl, 2});
  const cbtm::Matrix w = router->route({}, {"", "zzz", "b"});
  CHECK(w.at(0, 0) == 1.f);  // no letters yet: nearest centre to 0
  CHECK(w.at(1, 0) == 1.f);
  CHECK(w.at(2, 1) == 1.f);  // "b" points at centre 1
}

TEST_CASE("cluster_distance router: freeze_after keeps the weights of the routed fraction for the rest") {
  LetterEmbedder emb;
  const float centres[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  const cbtm::Matrix c = centres3(centres);
  FixedCenters cl(c);
  const std::vector<std::string> pieces = {"", "a", "a", "b", "bb", "c", "cc", "ccc"};  // 8 positions
  cbtm::ConfigNode free_n = router_yaml(0.5, 0), half = router_yaml(0.5, 0);
  half.node["freeze_after"] = 0.5;
  auto all = cbtm::test::plugins().registry().create<cbtm::Router>(free_n);
  auto frozen = cbtm::test::plugins().registry().create<cbtm::Router>(half);
  all->bind({&emb, &cl, 3});
  frozen->bind({&emb, &cl, 3});
  const cbtm::Matrix wa = all->route({}, pieces), wf = frozen->route({}, pieces);
  for (int64_t t = 0; t < 8; ++t)
    for (int64_t j = 0; j < 3; ++j) {
      // positions 0..3 routed as usual; 4..7 keep position 3's weights (context "aab")
      CHECK(wf.at(t, j) == (t < 4 ? wa.at(t, j) : wa.at(3, j)));
    }
  CHECK(wa.at(7, 2) > wa.at(3, 2));  // unfrozen routing moved on to centre 2
  cbtm::ConfigNode tiny = router_yaml(0.5, 0);
  tiny.node["freeze_after"] = 0.01;  // at least the first position is routed
  auto first = cbtm::test::plugins().registry().create<cbtm::Router>(tiny);
  first->bind({&emb, &cl, 3});
  const cbtm::Matrix w1 = first->route({}, pieces);
  for (int64_t t = 0; t < 8; ++t) CHECK(w1.at(t, 0) == wa.at(0, 0));
  cbtm::ConfigNode bad = router_yaml(0.5, 0);
  bad.node["freeze_after"] = 0.0;
  CHECK_THROWS_WITH(cbtm::test::plugins().registry().create<cbtm::Router>(bad), ContainsText("freeze_after"));
}

TEST_CASE("cluster_distance router: fix_experts_after keeps the top-k of position N for the rest, re-weighted by eq. 3 within it") {
  LetterEmbedder emb;
  const float centres[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  const cbtm::Matrix c = centres3(centres);
  FixedCenters cl(c);
  // contexts: "", "a", "aa", "aab" | "aabc", "aabcc", "aabccc", "aabcccc"
  const std::vector<std::string> pieces = {"", "a", "a", "b", "c", "c", "c", "c"};
  const double T = 0.5;
  cbtm::ConfigNode n = router_yaml(T, 2);
  n.node["fix_experts_after"] = 3;  // the set is fixed after 3 context tokens (position 3: "aab"; the bos piece not counted)
  auto router = cbtm::test::plugins().registry().create<cbtm::Router>(n);
  router->bind({&emb, &cl, 3});
  const cbtm::Matrix w = router->route({}, pieces);
  std::string prefix;
  for (size_t t = 0; t < pieces.size(); ++t) {
    prefix += pieces[t];
    if (t < 3) {  // as without the option: the position's own top-2
      const auto want = expected(emb, c, prefix, T, 2);
      for (int j = 0; j < 3; ++j) CHECK(w.at(static_cast<int64_t>(t), j) == Approx(want[j]).margin(1e-6));
    } else {  // the set of "aab" is {0, 1}: eq. 3 over those two only, though centre 2 is nearer now
      const auto all = expected(emb, c, prefix, T, 0);
      CHECK(w.at(static_cast<int64_t>(t), 2) == 0.f);
      CHECK(w.at(static_cast<int64_t>(t), 0) == Approx(all[0] / (all[0] + all[1])).margin(1e-6));
      CHECK(w.at(static_cast<int64_t>(t), 1) == Approx(all[1] / (all[0] + all[1])).margin(1e-6));
      if (t == 3) {  // position 3 is weighted within the set it chose: its own top-2
        const auto own = expected(emb, c, prefix, T, 2);
        for (int j = 0; j < 3; ++j) CHECK(w.at(3, j) == Approx(own[j]).margin(1e-6));
      }
      if (t >= 5) CHECK(all[2] > all[1]);
    }
  }
  // expert 2 is needed only for the prefix where it was in the per-position top-2
  const auto need = cbtm::needed_positions(w);
  CHECK(need[0] == 8);
  CHECK(need[1] == 8);
  CHECK(need[2] <= 3);
  // shorter documents than N behave as without the option
  const cbtm::Matrix short_w = router->route({}, {"", "c", "c"});
  cbtm::ConfigNode plain_n = router_yaml(T, 2);
  auto plain = cbtm::test::plugins().registry().create<cbtm::Router>(plain_n);
  plain->bind({&emb, &cl, 3});
  const cbtm::Matrix short_p = plain->route({}, {"", "c", "c"});
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t j = 0; j < 3; ++j) CHECK(short_w.at(t, j) == short_p.at(t, j));
  cbtm::ConfigNode bad = router_yaml(T, 2);
  bad.node["fix_experts_after"] = -1;
  CHECK_THROWS_WITH(cbtm::test::plugins().registry().create<cbtm::Router>(bad), ContainsText("fix_experts_after"));
}

TEST_CASE("cluster_distance router: bad options and a mismatched expert count fail clearly") {
  auto& reg = cbtm::test::plugins().registry();
  CHECK_THROWS_WITH(reg.create<cbtm::Router>(router_yaml(0.0, 1)), ContainsText("temperature") && ContainsText("must be > 0"));
  CHECK_THROWS_WITH(reg.create<cbtm::Router>(router_yaml(0.1, -1)), ContainsText("top_k"));
  LetterEmbedder emb;
  FixedCenters cl(cbtm::Matrix(2, 3));
  auto router = reg.create<cbtm::Router>(router_yaml(0.1, 1));
  CHECK_THROWS_WITH(router->bind({&emb, &cl, 3}), ContainsText("2 centres for 3 experts"));
}

TEST_CASE("cluster_distance router: a session's push equals route()'s last row for every prefix, whatever the options") {
  LetterEmbedder emb;
  const float centres[3][3] = {{1, 0, 0}, {0, 0.8f, 0.6f}, {0.3f, 0.3f, 0.9f}};
  const cbtm::Matrix c = centres3(centres);
  FixedCenters cl(c);
  const std::vector<std::string> pieces = {"", "x", "a", "bb", " c", "cc", "ab", "b", "c", "a", "cc"};
  struct Case {
    int top_k;
    double freeze_after;
    int fix_after;
  };
  for (const Case& o : {Case{0, 1.0, 0}, Case{1, 1.0, 0}, Case{2, 0.5, 0}, Case{1, 0.3, 0}, Case{1, 1.0, 3},
                        Case{2, 1.0, 4}, Case{1, 0.5, 2}}) {
    cbtm::ConfigNode n = router_yaml(0.5, o.top_k);
    n.node["freeze_after"] = o.freeze_after;
    n.node["fix_experts_after"] = o.fix_after;
    auto router = cbtm::test::plugins().registry().create<cbtm::Router>(n);
    router->bind({&emb, &cl, 3});
    auto session = router->session({});
    std::vector<std::string> so_far;
    for (const auto& p : pieces) {
      so_far.push_back(p);
      const std::vector<float> got = session->push(p);
      const cbtm::Matrix w = router->route({}, so_far);  // the whole text from scratch
      INFO("top_k " << o.top_k << ", freeze_after " << o.freeze_after << ", fix_experts_after " << o.fix_after
                    << ", " << so_far.size() << " pieces");
      REQUIRE(got.size() == 3);
      for (int64_t j = 0; j < 3; ++j) CHECK(got[static_cast<size_t>(j)] == w.at(w.rows - 1, j));
    }
  }
}
