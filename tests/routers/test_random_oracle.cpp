// The "random" and "oracle" routers: weights against a hand computation, determinism, and
// their errors.
#include "support/catch.h"

#include <map>
#include <set>

#include "cbtm/router.h"
#include "support/test_support.h"

namespace {

std::unique_ptr<cbtm::Router> make(const std::string& yaml) {
  cbtm::ConfigNode n;
  n.node = YAML::Load(yaml);
  return cbtm::test::plugins().registry().create<cbtm::Router>(n);
}

cbtm::Document doc(const std::string& id, const std::string& domain = "") {
  cbtm::Document d;
  d.id = id;
  d.text = "some text";
  if (!domain.empty()) d.meta["domain"] = domain;
  return d;
}

std::set<int64_t> active(const cbtm::Matrix& w, int64_t row) {
  std::set<int64_t> s;
  for (int64_t j = 0; j < w.cols; ++j)
    if (w.row(row)[j] > 0) s.insert(j);
  return s;
}

}  // namespace

TEST_CASE("random router: top_k distinct experts per document, equal weights, fixed by seed and id") {
  auto r = make("{type: random, top_k: 2, seed: 5}");
  r->bind({nullptr, nullptr, 6});
  const cbtm::Matrix w = r->route(doc("a:1"), {"", "x", "y"});
  REQUIRE(w.rows == 3);
  REQUIRE(w.cols == 6);
  const auto s = active(w, 0);
  CHECK(s.size() == 2);
  for (int64_t row = 0; row < 3; ++row) {
    CHECK(active(w, row) == s);  // constant over the document
    for (int64_t j : s) CHECK(w.row(row)[j] == 0.5f);
  }
  CHECK(r->route(doc("a:1"), {"", "x", "y"}).data == w.data);
  CHECK(active(r->route(doc("a:1"), {""}), 0) == s);  // same id -> same experts
  // over many documents every expert is used about equally often (2 of 6 each time)
  std::map<int64_t, int> uses;
  const int docs = 3000;
  for (int i = 0; i < docs; ++i)
    for (int64_t j : active(r->route(doc("d:" + std::to_string(i)), {""}), 0)) ++uses[j];
  REQUIRE(uses.size() == 6);
  for (const auto& [j, n] : uses) CHECK(std::abs(n - docs * 2 / 6) < 120);  // ~5 sd
  // another seed draws differently
  auto r2 = make("{type: random, top_k: 2, seed: 6}");
  r2->bind({nullptr, nullptr, 6});
  int same = 0;
  for (int i = 0; i < 200; ++i)
    same += active(r2->route(doc("d:" + std::to_string(i)), {""}), 0) ==
            active(r->route(doc("d:" + std::to_string(i)), {""}), 0);
  CHECK(same < 60);  // 1/15 agree by chance
  // top_k above K: every expert
  auto all = make("{type: random, top_k: 9}");
  all->bind({nullptr, nullptr, 3});
  CHECK(active(all->route(doc("z"), {""}), 0).size() == 3);
  CHECK_THROWS(make("{type: random, top_k: 0}"));
}

TEST_CASE("oracle router: P(cluster | domain) of the training data, argmax, top_k, unseen domains") {
  const std::map<std::string, std::vector<int64_t>> counts = {{"wordnet", {10, 30, 0, 60}}, {"gcide", {0, 0, 5, 0}}};
  cbtm::RoutingContext ctx{nullptr, nullptr, 4, &counts, "domain"};
  auto dist = make("{type: oracle}");
  dist->bind(ctx);
  cbtm::Matrix w = dist->route(doc("1", "wordnet"), {"", "a"});
  REQUIRE(w.rows == 2);
  for (int64_t row = 0; row < 2; ++row) {
    CHECK(w.row(row)[0] == Approx(0.1));
    CHECK(w.row(row)[1] == Approx(0.3));
    CHECK(w.row(row)[2] == 0.0f);
    CHECK(w.row(row)[3] == Approx(0.6));
  }
  auto top2 = make("{type: oracle, top_k: 2}");
  top2->bind(ctx);
  w = top2->route(doc("1", "wordnet"), {""});
  CHECK(w.row(0)[0] == 0.0f);
  CHECK(w.row(0)[1] == Approx(0.3 / 0.9));
  CHECK(w.row(0)[3] == Approx(0.6 / 0.9));
  auto arg = make("{type: oracle, mode: argmax}");
  arg->bind(ctx);
  w = arg->route(doc("2", "gcide"), {""});
  CHECK(w.row(0)[2] == 1.0f);
  CHECK(w.row(0)[0] + w.row(0)[1] + w.row(0)[3] == 0.0f);
  // a domain never seen in training, or none at all: equal weights
  for (const auto& d : {doc("3", "foldoc"), doc("4")}) {
    w = dist->route(d, {""});
    for (int64_t j = 0; j < 4; ++j) CHECK(w.row(0)[j] == 0.25f);
  }
  // errors: no metadata table, a table of the wrong width, a bad mode
  auto bare = make("{type: oracle}");
  CHECK_THROWS_WITH(bare->bind({nullptr, nullptr, 4}), ContainsText("domain_field"));
  CHECK_THROWS_WITH(bare->bind({nullptr, nullptr, 3, &counts, "domain"}), ContainsText("4 clusters for 3 experts"));
  CHECK_THROWS(make("{type: oracle, mode: best}"));
}
