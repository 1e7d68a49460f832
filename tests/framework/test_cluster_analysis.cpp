// cluster_analysis.h against scikit-learn 1.2.1 / numpy 1.24 (values computed at authoring
// time): normalized_mutual_info_score, purity by hand, np.percentile quartiles.
#include "support/catch.h"

#include <cmath>

#include "cbtm/cluster_analysis.h"
#include "cbtm/error.h"

TEST_CASE("cluster analysis: contingency - NMI - purity against scikit-learn") {
  const std::vector<std::string> labels = {"a", "a", "a", "b", "b", "c", "c", "c", "c", ""};
  const std::vector<int32_t> cluster = {0, 0, 1, 1, 1, 2, 2, 0, 2, 1};
  const cbtm::Contingency t = cbtm::contingency(labels, cluster, 3);
  REQUIRE(t.labels == std::vector<std::string>{"a", "b", "c"});  // the unlabelled point is left out
  CHECK(t.total() == 9);
  CHECK(t.at(0, 0) == 2);
  CHECK(t.at(0, 1) == 1);
  CHECK(t.at(2, 2) == 3);
  CHECK(t.cluster_totals() == std::vector<int64_t>{3, 3, 3});
  CHECK(t.label_totals() == std::vector<int64_t>{3, 2, 4});
  // sklearn.metrics.normalized_mutual_info_score(L, C) on the 9 labelled points
  CHECK(cbtm::nmi(t) == Approx(0.5895098274473048).epsilon(1e-12));
  // sklearn.metrics.mutual_info_score(L, C)
  CHECK(cbtm::mutual_information(t) == Approx(0.636514168294813).epsilon(1e-12));
  // cluster 0: a a c -> 2; cluster 1: a b b -> 2; cluster 2: c c c -> 3
  CHECK(cbtm::purity(t) == Approx(7.0 / 9));

  // Trivial partitions: sklearn gives 1.0 when both are a single class, 0.0 when one is.
  CHECK(cbtm::nmi(cbtm::contingency({"x", "x", "x", "x"}, {0, 0, 0, 0}, 1)) == 1.0);
  CHECK(cbtm::nmi(cbtm::contingency({"x", "x", "y", "y"}, {0, 0, 0, 0}, 1)) == 0.0);
  // Identical partitions up to renaming: 1.
  CHECK(cbtm::nmi(cbtm::contingency({"p", "p", "q", "q", "r"}, {2, 2, 0, 0, 1}, 3)) == Approx(1.0));

  CHECK_THROWS_WITH(cbtm::contingency({"a"}, {3}, 3), ContainsText("out of range"));
  CHECK_THROWS_WITH(cbtm::contingency({"a", "b"}, {0}, 3), ContainsText("2 labels for 1"));
}

TEST_CASE("cluster analysis: size summary quartiles match numpy.percentile") {
  const cbtm::SizeSummary s = cbtm::size_summary({5, 1, 9, 3, 7, 2});
  CHECK(s.total == 27);
  CHECK(s.min == 1);
  CHECK(s.max == 9);
  CHECK(s.q1 == Approx(2.25));  // np.percentile([5,1,9,3,7,2], [25, 50, 75])
  CHECK(s.median == Approx(4.0));
  CHECK(s.q3 == Approx(6.5));
  CHECK(s.mean == Approx(4.5));
  CHECK(s.max_over_min == Approx(9.0));
  const cbtm::SizeSummary e = cbtm::size_summary({4, 0, 4});
  CHECK(e.empty == 1);
  CHECK(std::isinf(e.max_over_min));
  const cbtm::SizeSummary b = cbtm::size_summary({10, 10, 10});
  CHECK(b.cv == 0.0);
}
