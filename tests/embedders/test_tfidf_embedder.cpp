// The tfidf embedder: embed() against an independent computation, the incremental
// context against embed(prefix), save/load, the plugin and its errors.
#include "support/catch.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cbtm/config_node.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/tensor_file.h"
#include "devpile_slices.h"
#include "support/test_support.h"
#include "tfidf_embedder.h"

using namespace cbtm::tfidf;
using cbtm::Matrix;

namespace {

/// Deterministic documents over a small vocabulary, with stop words, numbers, Unicode
/// words (including final sigma and U+0130) and punctuation.
std::vector<std::string> synthetic_corpus(int n, uint32_t seed) {
  static const std::vector<std::string> words = {
      "kernel",    "Kernel",  "memory", "pages",      "python", "garbage", "collector",
      "scheduler", "tasks",   "café",   "straße",     "ΟΔΟΣ",   "λόγος",   "İstanbul",
      "naïve",     "données", "日本語", "snake_case", "the",    "and",     "of",
      "42",        "2nd",     "x86",    "don't",      "e-mail", "module",  "boot",
      "network",   "packet",  "router", "dictionary", "entry",  "noun",    "verb",
      "spam",      "offer",   "money",  "fortune",    "cookie", "wisdom"};
  static const std::vector<std::string> seps = {" ", " ", " ", ", ", ". ", "\n", "; ", " -- "};
  std::mt19937 rng(seed);
  std::vector<std::string> docs;
  for (int d = 0; d < n; ++d) {
    // Each document leans on a topic block of the vocabulary, so the SVD has structure.
    const size_t topic = static_cast<size_t>(d % 5) * 8;
    const int len = std::uniform_int_distribution<int>(3, 40)(rng);
    std::string doc;
    for (int i = 0; i < len; ++i) {
      const bool on_topic = std::uniform_real_distribution<double>(0, 1)(rng) < 0.7;
      const size_t w = on_topic ? topic + std::uniform_int_distribution<size_t>(0, 7)(rng)
                                : std::uniform_int_distribution<size_t>(0, words.size() - 1)(rng);
      doc += words[w % words.size()] +
             seps[std::uniform_int_distribution<size_t>(0, seps.size() - 1)(rng)];
    }
    docs.push_back(doc);
  }
  return docs;
}

TfidfOptions small_options(const std::string& normalize, int dims = 16) {
  TfidfOptions o;
  o.dims = dims;
  o.normalize = normalize;
  o.seed = 5;
  return o;
}

/// embed() recomputed from the (scikit-learn-checked) tf-idf matrix and the components.
Matrix independent_embedding(const TfidfEmbedder& e, const std::vector<std::string>& texts) {
  const CsrMatrix x = e.vectorizer().transform(texts, 1);
  const int64_t dims = e.dim();
  Matrix out(x.rows, dims);
  for (int64_t r = 0; r < x.rows; ++r) {
    std::vector<double> y(static_cast<size_t>(dims), 0.0);
    for (int64_t p = x.indptr[r]; p < x.indptr[r + 1]; ++p)
      for (int64_t k = 0; k < dims; ++k)
        y[k] += double(x.values[p]) * e.projection()[x.indices[p] * dims + k];
    const std::string& mode = e.options().normalize;
    if (mode == "l2") {
      double n = 0;
      for (double v : y) n += v * v;
      for (auto& v : y) v = n > 0 ? v / std::sqrt(n) : 0;
    } else if (mode == "standardize") {
      for (int64_t k = 0; k < dims; ++k) y[k] = (y[k] - e.mean()[k]) / e.scale()[k];
    }
    for (int64_t k = 0; k < dims; ++k) out.at(r, k) = static_cast<float>(y[k]);
  }
  return out;
}

void check_close(const float* a, const float* b, int64_t n, double tol) {
  double worst = 0;
  int64_t at = 0;
  for (int64_t k = 0; k < n; ++k)
    if (std::abs(a[k] - b[k]) > worst) {
      worst = std::abs(a[k] - b[k]);
      at = k;
    }
  INFO("largest difference at index " << at << ": " << a[at] << " vs " << b[at]);
  REQUIRE(worst <= tol);
}

/// Splits `text` into random byte pieces (1..max_piece bytes, so pieces end inside words
/// and inside multi-byte characters) and checks current() against embed(prefix) after
/// every piece.
void check_context(const TfidfEmbedder& e, const std::string& text, std::mt19937& rng,
                   int max_piece) {
  auto ctx = e.context();
  std::vector<float> cur(static_cast<size_t>(e.dim()));
  ctx->current(cur.data());
  check_close(cur.data(), e.embed({""}).row(0), e.dim(), 1e-5);
  size_t at = 0;
  while (at < text.size()) {
    const size_t len =
        std::uniform_int_distribution<size_t>(1, static_cast<size_t>(max_piece))(rng);
    ctx->append(std::string_view(text).substr(at, len));
    at = std::min(text.size(), at + len);
    ctx->current(cur.data());
    const Matrix ref = e.embed({text.substr(0, at)});
    INFO("prefix of " << at << " bytes");
    check_close(cur.data(), ref.row(0), e.dim(), 2e-5);
  }
}

cbtm::ConfigNode node(const std::string& yaml) {
  return cbtm::ConfigNode{YAML::Load(yaml), "embedder", "test.yaml"};
}

}  // namespace

TEST_CASE("tfidf: embed() equals the tf-idf rows projected and normalised", "[tfidf][embedder]") {
  const auto train = synthetic_corpus(300, 1);
  const auto test = synthetic_corpus(50, 2);
  for (const std::string mode : {"l2", "standardize", "none"}) {
    INFO("normalize=" << mode);
    TfidfEmbedder e(small_options(mode));
    e.fit(train);
    const Matrix got = e.embed(test);
    REQUIRE(got.rows == 50);
    REQUIRE(got.cols == 16);
    const Matrix want = independent_embedding(e, test);
    check_close(got.data.data(), want.data.data(), static_cast<int64_t>(got.data.size()), 1e-5);
    if (mode == "l2") {
      for (int64_t r = 0; r < got.rows; ++r) {
        double n = 0;
        for (int64_t k = 0; k < got.cols; ++k) n += got.at(r, k) * got.at(r, k);
        CHECK(std::sqrt(n) == Approx(1.0).epsilon(1e-5));
      }
    }
    if (mode == "standardize") {
      // The training embeddings of documents with a term have mean 0 and variance 1; the
      // others are zero.
      const Matrix y = e.embed(train);
      const CsrMatrix x = e.vectorizer().transform(train, 1);
      std::vector<int64_t> with_terms;
      for (int64_t r = 0; r < x.rows; ++r) {
        if (x.indptr[r + 1] > x.indptr[r]) {
          with_terms.push_back(r);
        } else {
          for (int64_t k = 0; k < y.cols; ++k) CHECK(y.at(r, k) == 0.f);
        }
      }
      REQUIRE(with_terms.size() > 250);
      const double rows = static_cast<double>(with_terms.size());
      for (int64_t k = 0; k < y.cols; ++k) {
        double m = 0, v = 0;
        for (int64_t r : with_terms) m += y.at(r, k);
        m /= rows;
        for (int64_t r : with_terms) v += (y.at(r, k) - m) * (y.at(r, k) - m);
        CHECK(std::abs(m) < 1e-4);
        CHECK(std::sqrt(v / rows) == Approx(1.0).epsilon(1e-4));
      }
    }
  }
}

TEST_CASE("tfidf: texts without known terms embed to the zero vector for every normaliser",
          "[tfidf][embedder]") {
  const auto train = synthetic_corpus(200, 3);
  const std::vector<std::string> empty = {"", "the of and 42", "zzzz unknown-words", " \n\xff "};
  for (const std::string mode : {"l2", "standardize", "none"}) {
    INFO("normalize=" << mode);
    TfidfEmbedder e(small_options(mode));
    e.fit(train);
    if (mode == "standardize") {  // the zero vector is not -mean/std here
      double norm = 0;
      for (int64_t k = 0; k < e.dim(); ++k) norm += std::abs(e.mean()[k]);
      REQUIRE(norm > 1e-3);
    }
    const Matrix y = e.embed(empty);
    for (int64_t r = 0; r < y.rows; ++r)
      for (int64_t k = 0; k < y.cols; ++k) CHECK(y.at(r, k) == 0.f);
    // The incremental context agrees, and a text with a known term is not zero.
    auto ctx = e.context();
    std::vector<float> cur(static_cast<size_t>(e.dim()), 1.f);
    ctx->append("the of and 42 zzzz");
    ctx->current(cur.data());
    for (float v : cur) CHECK(v == 0.f);
    const Matrix known = e.embed({"kernel"});
    double n = 0;
    for (int64_t k = 0; k < known.cols; ++k) n += std::abs(known.at(0, k));
    CHECK(n > 1e-3);
  }
}

TEST_CASE("tfidf: the same seed gives the same embedder", "[tfidf][embedder]") {
  const auto train = synthetic_corpus(300, 4);
  TfidfEmbedder a(small_options("l2")), b(small_options("l2"));
  a.fit(train);
  b.fit(train);
  CHECK(a.projection() == b.projection());
  CHECK(a.embed(train).data == b.embed(train).data);
}

TEST_CASE("tfidf: context() equals embed(prefix) on generated texts",
          "[tfidf][embedder][context]") {
  const auto train = synthetic_corpus(300, 5);
  const auto texts = synthetic_corpus(6, 6);
  std::mt19937 rng(11);
  for (const std::string mode : {"l2", "standardize", "none"}) {
    for (bool sublinear : {false, true}) {
      INFO("normalize=" << mode << " sublinear_tf=" << sublinear);
      TfidfOptions o = small_options(mode);
      o.sublinear_tf = sublinear;
      TfidfEmbedder e(o);
      e.fit(train);
      for (const auto& t : texts) check_context(e, t + " ΑΣ'Α ΑΣ' x\xff\xe2\x82", rng, 5);
    }
  }
}

TEST_CASE("tfidf: context() equals embed(prefix) on devpile documents",
          "[tfidf][embedder][context][devpile]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  const std::vector<std::string> train = cbtm::test::devpile_slices(
      {{0, 400}, {34115, 400}, {43422, 400}, {169688, 400}, {299366, 400}});
  // Held-out documents (cut to 3000 bytes, possibly inside a character): Debian
  // descriptions, Python docs with non-ASCII names, dictionary entries, e-mails with
  // non-ASCII text, fortunes.
  std::vector<std::string> docs =
      cbtm::test::devpile_slices({{1000, 3}, {42700, 3}, {50000, 2}, {302100, 4}, {310000, 2}});
  for (auto& d : docs) d = d.substr(0, 3000);
  std::mt19937 rng(12);
  for (const std::string mode : {"l2", "standardize", "none"}) {
    INFO("normalize=" << mode);
    TfidfOptions o;
    o.normalize = mode;
    TfidfEmbedder e(o);
    e.fit(train);
    for (const auto& d : docs) check_context(e, d, rng, 12);
  }
}

TEST_CASE("tfidf: save/load round trip is exact", "[tfidf][embedder]") {
  const auto train = synthetic_corpus(300, 7);
  TfidfEmbedder e(small_options("standardize", 12));
  e.fit(train);
  cbtm::test::TempDir dir("tfidf");
  cbtm::TensorFileWriter w;
  e.save(w, "embedder");
  w.write(dir / "emb.safetensors");
  const cbtm::TensorFile f = cbtm::TensorFile::read(dir / "emb.safetensors");
  const int64_t terms = static_cast<int64_t>(e.vectorizer().vocabulary().size());
  CHECK(f.info("embedder.components").shape == std::vector<int64_t>{12, terms});
  CHECK(f.info("embedder.idf").dtype == cbtm::DType::F64);
  CHECK(f.strings("embedder.vocab") == e.vectorizer().vocabulary());

  TfidfEmbedder back(small_options("standardize", 12));
  back.load(f, "embedder");
  CHECK(back.vectorizer().vocabulary() == e.vectorizer().vocabulary());
  CHECK(back.vectorizer().idf() == e.vectorizer().idf());
  CHECK(back.projection() == e.projection());
  CHECK(back.singular_values() == e.singular_values());
  CHECK(back.mean() == e.mean());
  CHECK(back.scale() == e.scale());
  CHECK(back.embed(train).data == e.embed(train).data);

  TfidfEmbedder other_norm(small_options("l2", 12));
  CHECK_THROWS_WITH(other_norm.load(f, "embedder"),
                    ContainsText("normalize=standardize") && ContainsText("emb.safetensors"));
  TfidfEmbedder other_dims(small_options("standardize", 10));
  CHECK_THROWS_WITH(other_dims.load(f, "embedder"), ContainsText("embedder.components"));
}

TEST_CASE("tfidf: embedder errors", "[tfidf][embedder]") {
  TfidfEmbedder e(small_options("l2"));
  CHECK_THROWS_WITH(e.embed({"text"}), ContainsText("embed() called before fit() or load()"));
  CHECK_THROWS_WITH(e.context(), ContainsText("before fit()"));
  cbtm::TensorFileWriter w;
  CHECK_THROWS_WITH(e.save(w, "x"), ContainsText("before fit()"));
  CHECK_THROWS_WITH(e.fit({"the of and", "a 1 2 3", "I am"}),
                    ContainsText("vocabulary") && ContainsText("empty"));
  CHECK_THROWS_WITH(e.fit({"alpha beta gamma", "delta epsilon"}), ContainsText("dims=16"));
  TfidfOptions bad;
  bad.normalize = "cosine";
  CHECK_THROWS_WITH(TfidfEmbedder(bad), ContainsText("normalize"));
}

TEST_CASE("tfidf: the plugin is created from YAML through the registry",
          "[tfidf][embedder][plugin]") {
  const cbtm::Registry& reg = cbtm::test::plugins().registry();
  REQUIRE(reg.has("embedder", "tfidf"));
  auto e =
      reg.create<cbtm::Embedder>(node("{type: tfidf, dims: 8, normalize: standardize, seed: 3}"));
  REQUIRE(e);
  CHECK(e->dim() == 8);
  const auto train = synthetic_corpus(200, 8);
  e->fit(train);
  // The plugin computes what the core library computes with the same options.
  TfidfOptions o;
  o.dims = 8;
  o.normalize = "standardize";
  o.seed = 3;
  TfidfEmbedder direct(o);
  direct.fit(train);
  CHECK(e->embed(train).data == direct.embed(train).data);

  const YAML::Node resolved = reg.resolve("embedder", node("{type: tfidf, dims: 8}"));
  CHECK(resolved["dims"].as<int>() == 8);
  CHECK(resolved["normalize"].as<std::string>() == "l2");
  CHECK(resolved["svd_power_iters"].as<int>() == 5);
  CHECK(resolved["stop_words"].as<std::string>() == "english");

  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: tfidf, dimz: 8}")), ContainsText("dimz"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: tfidf, normalize: cosine}")),
                    ContainsText("normalize"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: tfidf, max_df: 1.5}")),
                    ContainsText("max_df"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: tfidf, stop_words: french}")),
                    ContainsText("stop_words"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: tfidf, dims: 0}")), ContainsText("dims"));
}

TEST_CASE("tfidf: top_terms maps a point back to its terms", "[tfidf][embedder][top_terms]") {
  const auto train = synthetic_corpus(300, 9);
  for (const std::string mode : {"l2", "standardize", "none"}) {
    INFO("normalize=" << mode);
    TfidfEmbedder e(small_options(mode));
    e.fit(train);
    // A document of a few repeated words of one topic block: its embedding's top terms
    // contain them.
    const Matrix y = e.embed({"garbage collector garbage collector garbage scheduler"});
    const std::vector<cbtm::TermWeight> top = e.top_terms(y.row(0), 5);
    REQUIRE(top.size() == 5);
    std::vector<std::string> names;
    for (const auto& t : top) names.push_back(t.term);
    INFO("top terms: " << Catch::Detail::stringify(names));
    CHECK(std::find(names.begin(), names.end(), "garbage") != names.end());
    CHECK(std::find(names.begin(), names.end(), "collector") != names.end());
    for (size_t i = 0; i < top.size(); ++i) {
      CHECK(top[i].weight > 0);
      if (i > 0) CHECK(top[i - 1].weight >= top[i].weight);
    }
    // The weights are the point (its standardize scaling undone) times the components.
    const int64_t id = e.vectorizer().lookup(top[0].term);
    REQUIRE(id >= 0);
    double w = 0;
    for (int64_t k = 0; k < e.dim(); ++k) {
      const double p = mode == "standardize" ? y.at(0, k) * e.scale()[k] + e.mean()[k] : y.at(0, k);
      w += p * e.projection()[id * e.dim() + k];
    }
    CHECK(top[0].weight == Approx(w).epsilon(1e-6));
    CHECK(e.top_terms(y.row(0), 0).empty());
    // Through the Embedder interface too.
    const cbtm::Embedder& base = e;
    CHECK(base.top_terms(y.row(0), 5).front().term == top[0].term);
  }
  TfidfEmbedder unfitted(small_options("l2"));
  std::vector<float> p(16, 0.f);
  CHECK_THROWS_WITH(unfitted.top_terms(p.data(), 3), ContainsText("before fit()"));
}

TEST_CASE("tfidf: fit_embed() equals fit() then embed() on the same texts", "[tfidf][embedder]") {
  auto train = synthetic_corpus(300, 3);
  train.push_back("");                  // no term at all
  train.push_back("the and of 1234");   // only stop words and a number
  for (const std::string mode : {"l2", "standardize", "none"}) {
    INFO("normalize=" << mode);
    TfidfEmbedder a(small_options(mode)), b(small_options(mode));
    const Matrix got = a.fit_embed(train);
    b.fit(train);
    const Matrix want = b.embed(train);
    REQUIRE(got.rows == want.rows);
    REQUIRE(got.cols == want.cols);
    check_close(got.data.data(), want.data.data(), static_cast<int64_t>(got.data.size()), 1e-5);
    CHECK(a.projection() == b.projection());  // the same fitted state
    for (int64_t k = 0; k < got.cols; ++k) CHECK(got.at(got.rows - 1, k) == 0.f);
  }
}
