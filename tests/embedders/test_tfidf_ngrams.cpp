// Word n-grams of the tfidf embedder (ngram_range) against scikit-learn 1.2.1, and the
// incremental context with n-grams. Golden numbers: tests/embedders/golden/tfidf_ngrams.py.
#include "support/catch.h"

#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cbtm/config_node.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/tensor_file.h"
#include "support/test_support.h"
#include "tfidf_embedder.h"
#include "tfidf_vectorizer.h"

using namespace cbtm::tfidf;

namespace {

const std::vector<std::string> kDocs = {
    "The Linux kernel schedules tasks; the kernel preempts tasks.",
    "Linux kernel modules load at boot, and kernel modules unload.",
    "Python's garbage collector frees memory in 2 generations of objects.",
    "Caf\u00e9 au lait, caf\u00e9 noir: \u039f\u0394\u039f\u03a3 caf\u00e9 au lait",
    "kernel",
    "the of and 1999 a"};

struct Golden {
  std::vector<std::string> vocab;
  std::vector<double> idf;
  std::vector<std::tuple<int, int, double>> nonzeros;  // (row, term, value)
};

void check_against(int min_n, int max_n, const Golden& g) {
  VectorizerOptions o;
  o.ngram_min = min_n;
  o.ngram_max = max_n;
  TfidfVectorizer v(o);
  const CsrMatrix x = v.fit_transform(kDocs, 2);
  REQUIRE(v.vocabulary() == g.vocab);
  for (size_t i = 0; i < g.idf.size(); ++i) CHECK(v.idf()[i] == Approx(g.idf[i]).margin(1e-8));
  REQUIRE(x.nnz() == static_cast<int64_t>(g.nonzeros.size()));
  std::vector<std::vector<double>> dense(kDocs.size(), std::vector<double>(g.vocab.size(), 0.0));
  for (const auto& [r, c, val] : g.nonzeros) dense[r][c] = val;
  for (int64_t r = 0; r < x.rows; ++r) {
    const std::vector<float> row = x.dense_row(r);
    for (int64_t c = 0; c < x.cols; ++c) {
      INFO("row " << r << " term '" << g.vocab[c] << "'");
      CHECK(std::abs(row[c] - dense[r][c]) < 1e-6);
    }
  }
  // transform() of the training texts gives the same rows.
  const CsrMatrix y = v.transform(kDocs, 1);
  CHECK(y.indices == x.indices);
  CHECK(y.values == x.values);
}

cbtm::ConfigNode node(const std::string& yaml) {
  return cbtm::ConfigNode{YAML::Load(yaml), "embedder", "test.yaml"};
}

}  // namespace

TEST_CASE("tfidf: ngram_range [1, 2] equals scikit-learn's", "[tfidf][ngrams]") {
  check_against(1, 2, Golden{{"au", "au lait", "boot", "boot kernel", "café", "café au", "café noir", "collector", "collector frees", "frees", "frees memory", "garbage", "garbage collector", "generations", "generations objects", "kernel", "kernel modules", "kernel preempts", "kernel schedules", "lait", "lait café", "linux", "linux kernel", "load", "load boot", "memory", "memory generations", "modules", "modules load", "modules unload", "noir", "noir οδος", "objects", "preempts", "preempts tasks", "python", "python garbage", "schedules", "schedules tasks", "tasks", "tasks kernel", "unload", "οδος", "οδος café"}, {2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 1.559615788, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 1.847297860, 1.847297860, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968}, {{0, 15, 0.366641316}, {0, 17, 0.264794697}, {0, 18, 0.264794697}, {0, 21, 0.217135439}, {0, 22, 0.217135439}, {0, 33, 0.264794697}, {0, 34, 0.264794697}, {0, 37, 0.264794697}, {0, 38, 0.264794697}, {0, 39, 0.529589394}, {0, 40, 0.264794697}, {1, 2, 0.234005163}, {1, 3, 0.234005163}, {1, 15, 0.324009363}, {1, 16, 0.468010326}, {1, 21, 0.191887581}, {1, 22, 0.191887581}, {1, 23, 0.234005163}, {1, 24, 0.234005163}, {1, 27, 0.468010326}, {1, 28, 0.234005163}, {1, 29, 0.234005163}, {1, 41, 0.234005163}, {2, 7, 0.277350098}, {2, 8, 0.277350098}, {2, 9, 0.277350098}, {2, 10, 0.277350098}, {2, 11, 0.277350098}, {2, 12, 0.277350098}, {2, 13, 0.277350098}, {2, 14, 0.277350098}, {2, 25, 0.277350098}, {2, 26, 0.277350098}, {2, 32, 0.277350098}, {2, 35, 0.277350098}, {2, 36, 0.277350098}, {3, 0, 0.359210604}, {3, 1, 0.359210604}, {3, 4, 0.538815906}, {3, 5, 0.359210604}, {3, 6, 0.179605302}, {3, 19, 0.359210604}, {3, 20, 0.179605302}, {3, 30, 0.179605302}, {3, 31, 0.179605302}, {3, 42, 0.179605302}, {3, 43, 0.179605302}, {4, 15, 1.000000000}}});
}

TEST_CASE("tfidf: ngram_range [2, 3] equals scikit-learn's", "[tfidf][ngrams]") {
  check_against(2, 3, Golden{{"au lait", "au lait café", "boot kernel", "boot kernel modules", "café au", "café au lait", "café noir", "café noir οδος", "collector frees", "collector frees memory", "frees memory", "frees memory generations", "garbage collector", "garbage collector frees", "generations objects", "kernel modules", "kernel modules load", "kernel modules unload", "kernel preempts", "kernel preempts tasks", "kernel schedules", "kernel schedules tasks", "lait café", "lait café noir", "linux kernel", "linux kernel modules", "linux kernel schedules", "load boot", "load boot kernel", "memory generations", "memory generations objects", "modules load", "modules load boot", "modules unload", "noir οδος", "noir οδος café", "preempts tasks", "python garbage", "python garbage collector", "schedules tasks", "schedules tasks kernel", "tasks kernel", "tasks kernel preempts", "οδος café", "οδος café au"}, {2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 1.847297860, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968, 2.252762968}, {{0, 18, 0.306103627}, {0, 19, 0.306103627}, {0, 20, 0.306103627}, {0, 21, 0.306103627}, {0, 24, 0.251009353}, {0, 26, 0.306103627}, {0, 36, 0.306103627}, {0, 39, 0.306103627}, {0, 40, 0.306103627}, {0, 41, 0.306103627}, {0, 42, 0.306103627}, {1, 2, 0.261065254}, {1, 3, 0.261065254}, {1, 15, 0.522130508}, {1, 16, 0.261065254}, {1, 17, 0.261065254}, {1, 24, 0.214077243}, {1, 25, 0.261065254}, {1, 27, 0.261065254}, {1, 28, 0.261065254}, {1, 31, 0.261065254}, {1, 32, 0.261065254}, {1, 33, 0.261065254}, {2, 8, 0.301511345}, {2, 9, 0.301511345}, {2, 10, 0.301511345}, {2, 11, 0.301511345}, {2, 12, 0.301511345}, {2, 13, 0.301511345}, {2, 14, 0.301511345}, {2, 29, 0.301511345}, {2, 30, 0.301511345}, {2, 37, 0.301511345}, {2, 38, 0.301511345}, {3, 0, 0.436435780}, {3, 1, 0.218217890}, {3, 4, 0.436435780}, {3, 5, 0.436435780}, {3, 6, 0.218217890}, {3, 7, 0.218217890}, {3, 22, 0.218217890}, {3, 23, 0.218217890}, {3, 34, 0.218217890}, {3, 35, 0.218217890}, {3, 43, 0.218217890}, {3, 44, 0.218217890}}});
}

TEST_CASE("tfidf: context() equals embed(prefix) with word n-grams", "[tfidf][ngrams][context]") {
  std::vector<std::string> train;
  std::mt19937 rng(3);
  const std::vector<std::string> words = {"kernel", "Linux", "the", "modules", "42", "boot",
                                          "caf\u00e9", "\u039f\u0394\u039f\u03a3", "memory", "of",
                                          "pages", "tasks", "x"};
  for (int d = 0; d < 120; ++d) {
    std::string doc;
    const int len = std::uniform_int_distribution<int>(2, 30)(rng);
    for (int i = 0; i < len; ++i)
      doc += words[std::uniform_int_distribution<size_t>(0, words.size() - 1)(rng)] +
             (i % 4 == 3 ? ". " : " ");
    train.push_back(doc);
  }
  for (const std::string mode : {"l2", "standardize"}) {
    TfidfOptions o;
    o.dims = 8;
    o.normalize = mode;
    o.ngram_range = {1, 3};
    TfidfEmbedder e(o);
    e.fit(train);
    // Trigrams are in the vocabulary.
    CHECK(e.vectorizer().lookup("linux kernel modules") >= 0);
    CHECK(e.vectorizer().lookup("kernel the") < 0);  // stop words never join an n-gram
    for (int t = 0; t < 4; ++t) {
      const std::string& text = train[static_cast<size_t>(t * 7)];
      auto ctx = e.context();
      std::vector<float> cur(8);
      size_t at = 0;
      while (at < text.size()) {
        const size_t len = std::uniform_int_distribution<size_t>(1, 6)(rng);
        ctx->append(std::string_view(text).substr(at, len));
        at = std::min(text.size(), at + len);
        ctx->current(cur.data());
        const cbtm::Matrix ref = e.embed({text.substr(0, at)});
        INFO(mode << ": prefix of " << at << " bytes of '" << text << "'");
        for (int k = 0; k < 8; ++k) CHECK(cur[k] == Approx(ref.at(0, k)).margin(2e-5));
      }
    }
  }
}

TEST_CASE("tfidf: ngram_range in YAML, its errors, and save/load", "[tfidf][ngrams][plugin]") {
  const cbtm::Registry& reg = cbtm::test::plugins().registry();
  auto e = reg.create<cbtm::Embedder>(node("{type: tfidf, dims: 4, ngram_range: [1, 2]}"));
  e->fit(kDocs);
  TfidfOptions o;
  o.dims = 4;
  o.ngram_range = {1, 2};
  TfidfEmbedder direct(o);
  direct.fit(kDocs);
  CHECK(e->embed(kDocs).data == direct.embed(kDocs).data);
  CHECK(direct.vectorizer().vocabulary().size() == 44);  // as scikit-learn's [1, 2] above
  const YAML::Node resolved = reg.resolve("embedder", node("{type: tfidf}"));
  CHECK(resolved["ngram_range"].as<std::vector<int>>() == std::vector<int>{1, 1});
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: tfidf, ngram_range: [2, 1]}")),
                    ContainsText("ngram_range") && ContainsText("min_n <= max_n"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: tfidf, ngram_range: [0, 1]}")),
                    ContainsText("ngram_range"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: tfidf, ngram_range: [1, 2, 3]}")),
                    ContainsText("ngram_range") && ContainsText("two integers"));

  cbtm::test::TempDir dir("tfidf_ngrams");
  cbtm::TensorFileWriter w;
  direct.save(w, "embedder");
  w.write(dir / "emb.safetensors");
  const cbtm::TensorFile f = cbtm::TensorFile::read(dir / "emb.safetensors");
  TfidfEmbedder back(o);
  back.load(f, "embedder");
  CHECK(back.embed(kDocs).data == direct.embed(kDocs).data);
  TfidfOptions unigrams;
  unigrams.dims = 4;
  TfidfEmbedder other(unigrams);
  CHECK_THROWS_WITH(other.load(f, "embedder"),
                    ContainsText("ngram_range=1,2") && ContainsText("ngram_range=1,1"));
}
