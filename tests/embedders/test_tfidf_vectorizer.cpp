// tf-idf matrix and vocabulary of the tfidf embedder against scikit-learn 1.2.1.
// Golden numbers: tests/embedders/golden/tfidf_toy.py and tfidf_devpile_vocab.py.
#include "support/catch.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <zstd.h>

#include "cbtm/error.h"
#include "devpile_slices.h"
#include "support/test_support.h"
#include "tfidf_vectorizer.h"

using namespace cbtm::tfidf;

namespace {

const std::vector<std::string> kToyDocs = {
    "The kernel schedules tasks; the kernel preempts tasks.",
    "Python's garbage collector frees memory in 2 generations.",
    "Memory pages: the kernel maps pages, Python maps objects.",
    "Café au lait, CAFÉ noir, straße 42 and ΟΔΟΣ.",
    "the of and 1999 a",
    "Kernel modules load at boot; modules unload later.",
    "snake_case names and __init__ methods in Python classes"};

struct Golden {
  std::vector<std::string> vocab;
  std::vector<double> idf;
  std::vector<std::tuple<int, int, double>> nonzeros;  // (row, term, value)
};

void check_against(const TfidfVectorizer& v, const CsrMatrix& x, const Golden& g) {
  REQUIRE(v.vocabulary() == g.vocab);
  REQUIRE(v.idf().size() == g.idf.size());
  for (size_t i = 0; i < g.idf.size(); ++i) CHECK(v.idf()[i] == Approx(g.idf[i]).margin(1e-8));
  REQUIRE(x.rows == static_cast<int64_t>(kToyDocs.size()));
  REQUIRE(x.cols == static_cast<int64_t>(g.vocab.size()));
  std::vector<std::vector<double>> dense(kToyDocs.size(), std::vector<double>(g.vocab.size(), 0.0));
  for (const auto& [r, c, val] : g.nonzeros) dense[r][c] = val;
  for (int64_t r = 0; r < x.rows; ++r) {
    const std::vector<float> row = x.dense_row(r);
    for (int64_t c = 0; c < x.cols; ++c) {
      INFO("row " << r << " term " << g.vocab[c]);
      CHECK(std::abs(row[c] - dense[r][c]) < 1e-5);
    }
  }
  CHECK(x.nnz() == static_cast<int64_t>(g.nonzeros.size()));
}

/// Decompresses a whole .zst file (streaming: the frame need not record its size).

}  // namespace

TEST_CASE("tfidf: tf-idf of a toy corpus equals scikit-learn's (defaults)", "[tfidf][vectorizer]") {
  const Golden g{
      {"__init__",    "au",     "boot",  "café",    "classes", "collector", "frees",  "garbage",
       "generations", "kernel", "lait",  "later",   "load",    "maps",      "memory", "methods",
       "modules",     "names",  "noir",  "objects", "pages",   "preempts",  "python", "schedules",
       "snake_case",  "straße", "tasks", "unload",  "οδος"},
      {2.386294361, 2.386294361, 2.386294361, 2.386294361, 2.386294361, 2.386294361,
       2.386294361, 2.386294361, 2.386294361, 1.693147181, 2.386294361, 2.386294361,
       2.386294361, 2.386294361, 1.980829253, 2.386294361, 2.386294361, 2.386294361,
       2.386294361, 2.386294361, 2.386294361, 2.386294361, 1.693147181, 2.386294361,
       2.386294361, 2.386294361, 2.386294361, 2.386294361, 2.386294361},
      {{0, 9, 0.501283398},  {0, 21, 0.353250373}, {0, 23, 0.353250373}, {0, 26, 0.706500746},
       {1, 5, 0.438846646},  {1, 6, 0.438846646},  {1, 7, 0.438846646},  {1, 8, 0.438846646},
       {1, 14, 0.364280404}, {1, 22, 0.311374813}, {2, 9, 0.216951106},  {2, 13, 0.611534789},
       {2, 14, 0.253813197}, {2, 19, 0.305767395}, {2, 20, 0.611534789}, {2, 22, 0.216951106},
       {3, 1, 0.333333333},  {3, 3, 0.666666667},  {3, 10, 0.333333333}, {3, 18, 0.333333333},
       {3, 25, 0.333333333}, {3, 28, 0.333333333}, {5, 2, 0.342927933},  {5, 9, 0.243317619},
       {5, 11, 0.342927933}, {5, 12, 0.342927933}, {5, 16, 0.685855865}, {5, 27, 0.342927933},
       {6, 0, 0.426268432},  {6, 4, 0.426268432},  {6, 15, 0.426268432}, {6, 17, 0.426268432},
       {6, 22, 0.302450194}, {6, 24, 0.426268432}}};
  TfidfVectorizer v;
  const CsrMatrix x = v.fit_transform(kToyDocs, 2);
  check_against(v, x, g);
  // transform() of the training texts gives the same rows.
  const CsrMatrix y = v.transform(kToyDocs, 2);
  CHECK(y.indptr == x.indptr);
  CHECK(y.indices == x.indices);
  CHECK(y.values == x.values);
}

TEST_CASE("tfidf: tf-idf with min_df - max_df and sublinear tf equals scikit-learn's",
          "[tfidf][vectorizer]") {
  const Golden g{{"kernel", "memory", "python"},
                 {1.693147181, 1.980829253, 1.693147181},
                 {{0, 0, 1.000000000},
                  {1, 1, 0.760148323},
                  {1, 2, 0.649749588},
                  {2, 0, 0.544840728},
                  {2, 1, 0.637414435},
                  {2, 2, 0.544840728},
                  {5, 0, 1.000000000},
                  {6, 2, 1.000000000}}};
  VectorizerOptions o;
  o.min_df = 2;
  o.max_df = 0.5;
  o.sublinear_tf = true;
  TfidfVectorizer v(o);
  check_against(v, v.fit_transform(kToyDocs, 1), g);
}

TEST_CASE("tfidf: tf-idf with max_features equals scikit-learn's", "[tfidf][vectorizer]") {
  const Golden g{{"kernel", "python"},
                 {1.693147181, 1.693147181},
                 {{0, 0, 1.0},
                  {1, 1, 1.0},
                  {2, 0, 0.707106781},
                  {2, 1, 0.707106781},
                  {5, 0, 1.0},
                  {6, 1, 1.0}}};
  VectorizerOptions o;
  o.max_features = 2;
  TfidfVectorizer v(o);
  check_against(v, v.fit_transform(kToyDocs, 2), g);
}

TEST_CASE("tfidf: max_features breaks count ties alphabetically", "[tfidf][vectorizer]") {
  // Total counts: zeta 3, beta 2, delta 2, alpha 2, gamma 1.
  VectorizerOptions o;
  o.max_features = 3;
  TfidfVectorizer v(o);
  v.fit_transform({"zeta zeta zeta beta delta", "alpha beta delta alpha gamma"}, 1);
  CHECK(v.vocabulary() == std::vector<std::string>{"alpha", "beta", "zeta"});
}

TEST_CASE("tfidf: fit is independent of the thread count", "[tfidf][vectorizer]") {
  std::vector<std::string> texts;
  for (int rep = 0; rep < 40; ++rep)
    for (const auto& d : kToyDocs) texts.push_back(d + " extra" + std::string(rep % 7, 'x'));
  TfidfVectorizer a, b;
  const CsrMatrix xa = a.fit_transform(texts, 1);
  const CsrMatrix xb = b.fit_transform(texts, 2);
  CHECK(a.vocabulary() == b.vocabulary());
  CHECK(a.idf() == b.idf());
  CHECK(xa.indptr == xb.indptr);
  CHECK(xa.indices == xb.indices);
  CHECK(xa.values == xb.values);
}

TEST_CASE("tfidf: vectorizer errors name the problem", "[tfidf][vectorizer]") {
  TfidfVectorizer v;
  CHECK_THROWS_WITH(v.transform({"x"}, 1), ContainsText("before fit()"));
  CHECK_THROWS_WITH(v.fit_transform({}, 1), ContainsText("at least one training text"));
  CHECK_THROWS_WITH(v.fit_transform({"the of and", "a 42 b", ""}, 1),
                    ContainsText("vocabulary") && ContainsText("empty"));
  VectorizerOptions o;
  o.min_df = 3;
  TfidfVectorizer pruned(o);
  CHECK_THROWS_WITH(pruned.fit_transform({"alpha beta", "beta gamma", "gamma delta"}, 1),
                    ContainsText("no term") && ContainsText("min_df=3"));
  o.min_df = 2;
  o.max_df = 0.4;
  TfidfVectorizer inverted(o);
  CHECK_THROWS_WITH(inverted.fit_transform({"alpha", "beta", "gamma"}, 1),
                    ContainsText("fewer than min_df=2"));
  CHECK_THROWS_WITH(v.set_state({"b", "a"}, {1.0, 1.0}), ContainsText("not sorted"));
  CHECK_THROWS_WITH(v.set_state({"a"}, {1.0, 1.0}), ContainsText("idf has 2"));
}

TEST_CASE("tfidf: vocabulary and idf agree with scikit-learn on devpile",
          "[tfidf][vectorizer][devpile]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  // The slices of tests/embedders/golden/tfidf_devpile_vocab.py.
  const std::vector<std::pair<int64_t, int64_t>> slices = {
      {0, 450}, {34115, 150}, {42500, 700}, {169688, 200}, {302000, 500}};
  const std::vector<std::string> texts = cbtm::test::devpile_slices(slices);

  std::istringstream golden(
      cbtm::test::read_zst(cbtm::test::source_path("tests/data/tfidf_devpile_vocab.tsv.zst")));
  std::string line;
  std::getline(golden, line);
  REQUIRE(line == "#docs\t" + std::to_string(texts.size()));
  std::vector<std::string> terms;
  std::vector<double> idf;
  while (std::getline(golden, line)) {
    const size_t tab = line.rfind('\t');
    terms.push_back(line.substr(0, tab));
    idf.push_back(std::stod(line.substr(tab + 1)));
  }

  TfidfVectorizer v;
  v.fit_transform(texts, 2);
  // Report the first differences before failing on the whole list.
  std::vector<std::string> only_here, only_sklearn;
  std::set_difference(v.vocabulary().begin(), v.vocabulary().end(), terms.begin(), terms.end(),
                      std::back_inserter(only_here));
  std::set_difference(terms.begin(), terms.end(), v.vocabulary().begin(), v.vocabulary().end(),
                      std::back_inserter(only_sklearn));
  INFO("terms only here: " << only_here.size()
                           << (only_here.empty() ? "" : " e.g. " + only_here[0]));
  INFO("terms only in scikit-learn: " << only_sklearn.size()
                                      << (only_sklearn.empty() ? "" : " e.g. " + only_sklearn[0]));
  REQUIRE(v.vocabulary() == terms);
  for (size_t i = 0; i < idf.size(); ++i) {
    INFO(terms[i]);
    REQUIRE(v.idf()[i] == Approx(idf[i]).epsilon(1e-10));
  }
}
