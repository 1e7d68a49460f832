// The "hashing" embedder: embed() against an independent computation from the
// (scikit-learn-checked) hashed tf-idf rows, determinism, the incremental context against
// embed(prefix), top_terms, save/load and its errors, the plugin.
#include <algorithm>
#include "support/catch.h"
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cbtm/config_node.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/tensor_file.h"
#include "devpile_slices.h"
#include "hashing_embedder.h"
#include "murmurhash3.h"
#include "support/test_support.h"

using namespace cbtm::hashing;
using cbtm::Matrix;

namespace {

/// Deterministic documents over a small vocabulary in topic blocks, with stop words,
/// numbers, Unicode words (final sigma, U+0130) and punctuation.
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

/// 256 buckets: the ~35 terms collide now and then, signs cancel now and then.
HashingOptions small_options(const std::string& normalize, int dims = 12) {
  HashingOptions o;
  o.dims = dims;
  o.n_features = 256;
  o.normalize = normalize;
  o.seed = 5;
  return o;
}

/// embed() recomputed from transform() (the tf-idf rows) and the components.
Matrix independent_embedding(const HashingEmbedder& e, const std::vector<std::string>& texts) {
  const auto x = e.vectorizer().transform(texts, 1);
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

/// Feeds `text` in random byte pieces (ending inside words and multi-byte characters) and
/// checks current() against embed(prefix) after every piece.
void check_context(const HashingEmbedder& e, const std::string& text, std::mt19937& rng,
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
    INFO("prefix of " << at << " bytes: " << text.substr(0, at));
    check_close(cur.data(), ref.row(0), e.dim(), 2e-5);
  }
}

cbtm::ConfigNode node(const std::string& yaml) {
  return cbtm::ConfigNode{YAML::Load(yaml), "embedder", "test.yaml"};
}

}  // namespace

TEST_CASE("hashing: embed() equals the hashed tf-idf rows projected and normalised",
          "[hashing][embedder]") {
  const auto train = synthetic_corpus(300, 1);
  const auto test = synthetic_corpus(50, 2);
  for (const std::string mode : {"l2", "standardize", "none"}) {
    for (bool sign : {true, false}) {
      INFO("normalize=" << mode << " alternate_sign=" << sign);
      HashingOptions o = small_options(mode);
      o.alternate_sign = sign;
      HashingEmbedder e(o);
      e.fit(train);
      const Matrix got = e.embed(test);
      REQUIRE(got.rows == 50);
      REQUIRE(got.cols == 12);
      const Matrix want = independent_embedding(e, test);
      check_close(got.data.data(), want.data.data(), static_cast<int64_t>(got.data.size()), 1e-5);
      if (mode == "l2")
        for (int64_t r = 0; r < got.rows; ++r) {
          double n = 0;
          for (int64_t k = 0; k < got.cols; ++k) n += got.at(r, k) * got.at(r, k);
          CHECK(std::sqrt(n) == Approx(1.0).epsilon(1e-5));
        }
      if (mode == "standardize") {  // the training embeddings have mean 0 and variance 1
        const Matrix y = e.embed(train);
        for (int64_t k = 0; k < y.cols; ++k) {
          double m = 0, v = 0;
          for (int64_t r = 0; r < y.rows; ++r) m += y.at(r, k);
          m /= static_cast<double>(y.rows);
          for (int64_t r = 0; r < y.rows; ++r) v += (y.at(r, k) - m) * (y.at(r, k) - m);
          CHECK(std::abs(m) < 1e-4);
          CHECK(std::sqrt(v / static_cast<double>(y.rows)) == Approx(1.0).epsilon(1e-4));
        }
      }
    }
  }
}

TEST_CASE("hashing: texts without terms embed to the normalised zero vector",
          "[hashing][embedder]") {
  const auto train = synthetic_corpus(200, 3);
  // Buckets of 64 where terms of opposite sign meet: network (+) / packet (-) in 4,
  // memory (-) / maps (+) in 33. A text holding one of each has terms but no weight.
  for (const std::string mode : {"l2", "standardize", "none"}) {
    HashingOptions o = small_options(mode, 8);
    o.n_features = 64;
    HashingEmbedder e(o);
    e.fit(train);
    const Matrix y = e.embed({"", "the of and 42 1999 a", "network packet memory maps"});
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t k = 0; k < y.cols; ++k) {
        INFO("normalize=" << mode << " text " << r);
        const double want = mode == "standardize" ? -e.mean()[k] / e.scale()[k] : 0.0;
        CHECK(y.at(r, k) == Approx(want).margin(1e-6));
      }
    // A text whose terms all fall in buckets unseen in fit: weight but no projection.
    HashingOptions big = small_options(mode, 8);
    big.n_features = 1 << 20;
    HashingEmbedder b(big);
    b.fit(train);
    REQUIRE(b.vectorizer().column(hash_term("zyzzyva", 1 << 20, true).bucket) < 0);
    const Matrix z = b.embed({"zyzzyva"});
    for (int64_t k = 0; k < z.cols; ++k)
      CHECK(z.at(0, k) ==
            Approx(mode == "standardize" ? -b.mean()[k] / b.scale()[k] : 0.0).margin(1e-6));
  }
}

TEST_CASE("hashing: the same seed gives the same embedder", "[hashing][embedder]") {
  const auto train = synthetic_corpus(300, 4);
  HashingEmbedder a(small_options("l2", 10)), b(small_options("l2", 10));
  a.fit(train);
  b.fit(train);
  CHECK(a.projection() == b.projection());
  CHECK(a.vectorizer().terms() == b.vectorizer().terms());
  CHECK(a.embed(train).data == b.embed(train).data);
  CHECK(a.dim() == 10);
  CHECK(a.embed(train).cols == 10);
  HashingOptions other = small_options("l2", 10);
  other.seed = 6;
  HashingEmbedder c(other);
  c.fit(train);
  CHECK(c.projection() != a.projection());  // a different test matrix: different rounding
}

TEST_CASE("hashing: context() equals embed(prefix) on generated texts",
          "[hashing][embedder][context]") {
  const auto train = synthetic_corpus(300, 5);
  const auto texts = synthetic_corpus(5, 6);
  std::mt19937 rng(11);
  for (const std::string mode : {"l2", "standardize", "none"}) {
    for (bool sublinear : {false, true}) {
      INFO("normalize=" << mode << " sublinear_tf=" << sublinear);
      HashingOptions o = small_options(mode);
      o.n_features = 64;  // many collisions and cancellations
      o.sublinear_tf = sublinear;
      HashingEmbedder e(o);
      e.fit(train);
      for (const auto& t : texts)
        check_context(e, t + " network packet ΑΣ'Α ΑΣ' memory maps x\xff\xe2\x82", rng, 5);
    }
  }
}

TEST_CASE("hashing: context() equals embed(prefix) on devpile documents",
          "[hashing][embedder][context][devpile]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  // One pass over the file: 5 x 300 training documents, then 10 held-out ones (cut to 2000
  // bytes, possibly inside a character): Debian descriptions, Python docs, dictionary
  // entries, e-mails with non-ASCII text, fortunes.
  std::vector<std::string> train = cbtm::test::devpile_slices({{0, 300},
                                                               {34115, 300},
                                                               {43422, 300},
                                                               {169688, 300},
                                                               {299366, 300},
                                                               {1000, 2},
                                                               {42700, 2},
                                                               {50000, 2},
                                                               {302100, 2},
                                                               {310000, 2}});
  REQUIRE(train.size() == 1510);
  std::vector<std::string> docs(train.begin() + 1500, train.end());
  train.resize(1500);
  for (auto& d : docs) d = d.substr(0, 2000);
  std::mt19937 rng(12);
  for (const std::string mode : {"l2", "standardize"}) {
    INFO("normalize=" << mode);
    HashingOptions o;
    o.dims = 32;
    o.normalize = mode;
    HashingEmbedder e(o);
    e.fit(train);
    for (const auto& d : docs) check_context(e, d, rng, 12);
  }
}

TEST_CASE("hashing: top_terms maps a point back to its buckets' terms", "[hashing][embedder]") {
  const auto train = synthetic_corpus(300, 13);
  HashingOptions o = small_options("none", 16);
  o.n_features = 1 << 16;  // no collision among the ~35 terms
  HashingEmbedder none(o);
  none.fit(train);
  // A document of one topic: its heaviest terms come from that topic's block.
  const Matrix y = none.embed({"kernel memory pages kernel python"});
  const auto top = none.top_terms(y.row(0), 3);
  REQUIRE(top.size() == 3);
  CHECK(top[0].term == "kernel");
  CHECK(top[0].weight >= top[1].weight);
  CHECK(top[1].weight >= top[2].weight);
  // The weight is the point mapped through the components, with the term's sign.
  const int32_t col = none.vectorizer().column(hash_term("kernel", 1 << 16, true).bucket);
  double w = 0;
  for (int64_t k = 0; k < 16; ++k) w += double(y.at(0, k)) * none.projection()[col * 16 + k];
  CHECK(top[0].weight == Approx(w * hash_term("kernel", 1 << 16, true).sign).margin(1e-9));
  CHECK(none.top_terms(y.row(0), 1000).size() == none.vectorizer().buckets().size());

  // standardize is undone first: the same fit gives the same terms and weights.
  o.normalize = "standardize";
  HashingEmbedder st(o);
  st.fit(train);
  const auto top_st = st.top_terms(st.embed({"kernel memory pages kernel python"}).row(0), 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(top_st[i].term == top[i].term);
    CHECK(top_st[i].weight == Approx(top[i].weight).margin(1e-5));
  }

  // Without kept terms, buckets are named #<bucket> and weigh with the sign of the hashed
  // space (so use unsigned hashing to find kernel on top).
  o.normalize = "none";
  o.keep_terms = false;
  o.alternate_sign = false;
  HashingEmbedder anon(o);
  anon.fit(train);
  const auto top_anon = anon.top_terms(anon.embed({"kernel memory pages kernel python"}).row(0), 3);
  CHECK(top_anon[0].term == "#" + std::to_string(hash_term("kernel", 1 << 16, false).bucket));
}

TEST_CASE("hashing: save/load round trip is exact", "[hashing][embedder]") {
  const auto train = synthetic_corpus(300, 7);
  HashingEmbedder e(small_options("standardize", 12));
  e.fit(train);
  cbtm::test::TempDir dir("hashing");
  cbtm::TensorFileWriter w;
  e.save(w, "embedder");
  w.write(dir / "emb.safetensors");
  const cbtm::TensorFile f = cbtm::TensorFile::read(dir / "emb.safetensors");
  const int64_t used = static_cast<int64_t>(e.vectorizer().buckets().size());
  CHECK(f.info("embedder.components").shape == std::vector<int64_t>{12, used});
  CHECK(f.info("embedder.buckets").dtype == cbtm::DType::I32);
  CHECK(f.strings("embedder.terms") == e.vectorizer().terms());

  HashingEmbedder back(small_options("standardize", 12));
  back.load(f, "embedder");
  CHECK(back.vectorizer().buckets() == e.vectorizer().buckets());
  CHECK(back.vectorizer().idf() == e.vectorizer().idf());
  CHECK(back.vectorizer().terms() == e.vectorizer().terms());
  CHECK(back.vectorizer().documents() == 300);
  CHECK(back.projection() == e.projection());
  CHECK(back.singular_values() == e.singular_values());
  CHECK(back.mean() == e.mean());
  CHECK(back.scale() == e.scale());
  const auto probe = synthetic_corpus(40, 70);
  CHECK(back.embed(probe).data == e.embed(probe).data);
  CHECK(back.embed({"zzz unseen words"}).data == e.embed({"zzz unseen words"}).data);
  const Matrix c = e.embed({"kernel pages"});
  CHECK(back.top_terms(c.row(0), 5)[0].term == e.top_terms(c.row(0), 5)[0].term);

  // Settings that change embed() must agree with the options.
  HashingOptions o = small_options("standardize", 12);
  o.n_features = 512;
  CHECK_THROWS_WITH(HashingEmbedder(o).load(f, "embedder"), ContainsText("n_features=256") &&
                                                                ContainsText("n_features=512") &&
                                                                ContainsText("emb.safetensors"));
  o = small_options("l2", 12);
  CHECK_THROWS_WITH(HashingEmbedder(o).load(f, "embedder"), ContainsText("normalize=standardize"));
  o = small_options("standardize", 12);
  o.alternate_sign = false;
  CHECK_THROWS_WITH(HashingEmbedder(o).load(f, "embedder"), ContainsText("alternate_sign=true"));
  CHECK_THROWS_WITH(HashingEmbedder(small_options("standardize", 10)).load(f, "embedder"),
                    ContainsText("embedder.components") && ContainsText("[10, "));
  CHECK_THROWS_WITH(back.load(f, "other"), ContainsText("other.settings"));
}

TEST_CASE("hashing: corrupted artifacts fail clearly", "[hashing][embedder]") {
  const auto train = synthetic_corpus(200, 8);
  HashingEmbedder e(small_options("l2", 8));
  e.fit(train);
  cbtm::TensorFileWriter w;
  e.save(w, "emb");
  cbtm::test::TempDir dir("hashing_bad");
  w.write(dir / "good.safetensors");
  const cbtm::TensorFile good = cbtm::TensorFile::read(dir / "good.safetensors");

  // Copies `good` without the tensors in `drop`, then lets `add` write replacements.
  auto rewrite = [&](const std::string& tag, const std::vector<std::string>& drop,
                     const std::function<void(cbtm::TensorFileWriter&)>& add) {
    cbtm::TensorFileWriter t;
    for (const auto& n : good.names()) {
      if (std::find(drop.begin(), drop.end(), n) != drop.end()) continue;
      const auto& i = good.info(n);
      t.add(n, i.dtype, i.shape, good.data(n), i.end - i.begin);
    }
    add(t);
    const std::string path = dir / (tag + ".safetensors");
    t.write(path);
    return cbtm::TensorFile::read(path);
  };
  // Copies `good` with tensor `name` replaced (or dropped when `bytes` is empty).
  auto tampered = [&](const std::string& name, cbtm::DType dtype, std::vector<int64_t> shape,
                      const std::string& bytes) {
    return rewrite(name, {name}, [&](cbtm::TensorFileWriter& t) {
      if (!bytes.empty()) t.add(name, dtype, shape, bytes.data(), bytes.size());
    });
  };
  auto as_bytes = [](const auto& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(v[0]));
  };
  std::vector<int32_t> buckets = e.vectorizer().buckets();
  const int64_t used = static_cast<int64_t>(buckets.size());
  std::swap(buckets[0], buckets[1]);
  HashingEmbedder x(small_options("l2", 8));
  CHECK_THROWS_WITH(
      x.load(tampered("emb.buckets", cbtm::DType::I32, {used}, as_bytes(buckets)), "emb"),
      ContainsText("emb.buckets") && ContainsText("ascending"));
  buckets = e.vectorizer().buckets();
  buckets.back() = 300;  // n_features = 256
  CHECK_THROWS_WITH(
      x.load(tampered("emb.buckets", cbtm::DType::I32, {used}, as_bytes(buckets)), "emb"),
      ContainsText("bucket 300"));
  const std::vector<double> idf(static_cast<size_t>(used - 1), 1.0);
  CHECK_THROWS_WITH(
      x.load(tampered("emb.idf", cbtm::DType::F64, {used - 1}, as_bytes(idf)), "emb"),
      ContainsText("emb.idf") && ContainsText("found F64 [" + std::to_string(used - 1) + "]"));
  const std::vector<float> idf32(static_cast<size_t>(used), 1.f);
  CHECK_THROWS_WITH(x.load(tampered("emb.idf", cbtm::DType::F32, {used}, as_bytes(idf32)), "emb"),
                    ContainsText("should be F64"));
  CHECK_THROWS_WITH(x.load(tampered("emb.components", cbtm::DType::F32, {}, ""), "emb"),
                    ContainsText("emb.components"));
  std::vector<std::string> terms = e.vectorizer().terms();
  std::swap(terms[0], terms[1]);
  CHECK_THROWS_WITH(
      x.load(rewrite("terms", {"emb.terms.bytes", "emb.terms.offsets"},
                     [&](cbtm::TensorFileWriter& t) { t.add_strings("emb.terms", terms); }),
             "emb"),
      ContainsText("term '" + terms[0] + "' is kept for bucket"));
  const std::vector<int64_t> zero_docs{0};
  CHECK_THROWS_WITH(
      x.load(tampered("emb.documents", cbtm::DType::I64, {1}, as_bytes(zero_docs)), "emb"),
      ContainsText("fit documents"));
  CHECK_FALSE(x.fitted());  // nothing was half-loaded
}

TEST_CASE("hashing: embedder errors", "[hashing][embedder]") {
  HashingEmbedder e(small_options("l2"));
  CHECK_THROWS_WITH(e.embed({"text"}), ContainsText("embed() called before fit() or load()"));
  CHECK_THROWS_WITH(e.context(), ContainsText("before fit()"));
  float p[12] = {};
  CHECK_THROWS_WITH(e.top_terms(p, 3), ContainsText("before fit()"));
  cbtm::TensorFileWriter w;
  CHECK_THROWS_WITH(e.save(w, "x"), ContainsText("before fit()"));
  CHECK_THROWS_WITH(e.fit({"the of and", "a 1 2 3", "I am"}), ContainsText("no term"));
  CHECK_THROWS_WITH(e.fit({"alpha beta gamma", "delta epsilon"}), ContainsText("dims=12"));
  HashingOptions bad;
  bad.n_features = 0;
  CHECK_THROWS_WITH(HashingEmbedder(bad), ContainsText("n_features"));
}

TEST_CASE("hashing: the plugin is created from YAML through the registry",
          "[hashing][embedder][plugin]") {
  const cbtm::Registry& reg = cbtm::test::plugins().registry();
  REQUIRE(reg.has("embedder", "hashing"));
  auto e = reg.create<cbtm::Embedder>(
      node("{type: hashing, dims: 8, n_features: 256, normalize: standardize, seed: 3}"));
  REQUIRE(e);
  CHECK(e->dim() == 8);
  const auto train = synthetic_corpus(200, 9);
  e->fit(train);
  HashingOptions o;
  o.dims = 8;
  o.n_features = 256;
  o.normalize = "standardize";
  o.seed = 3;
  HashingEmbedder direct(o);
  direct.fit(train);
  CHECK(e->embed(train).data == direct.embed(train).data);
  const Matrix y = direct.embed({"kernel"});
  CHECK(e->top_terms(y.row(0), 2)[0].term == direct.top_terms(y.row(0), 2)[0].term);

  const YAML::Node resolved = reg.resolve("embedder", node("{type: hashing, dims: 8}"));
  CHECK(resolved["n_features"].as<int64_t>() == 1048576);
  CHECK(resolved["alternate_sign"].as<bool>() == true);
  CHECK(resolved["normalize"].as<std::string>() == "l2");
  CHECK(resolved["keep_terms"].as<bool>() == true);
  CHECK(resolved["svd_power_iters"].as<int>() == 5);

  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: hashing, n_feature: 8}")),
                    ContainsText("n_feature"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: hashing, n_features: 0}")),
                    ContainsText("n_features"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: hashing, normalize: cosine}")),
                    ContainsText("normalize"));
  CHECK_THROWS_WITH(reg.create<cbtm::Embedder>(node("{type: hashing, stop_words: french}")),
                    ContainsText("stop_words"));
}

TEST_CASE("hashing: fit_embed() equals fit() then embed() on the same texts",
          "[hashing][embedder]") {
  auto train = synthetic_corpus(300, 4);
  train.push_back("");
  for (const std::string mode : {"l2", "standardize", "none"}) {
    for (bool sign : {true, false}) {
      INFO("normalize=" << mode << " alternate_sign=" << sign);
      HashingOptions o = small_options(mode);
      o.alternate_sign = sign;
      HashingEmbedder a(o), b(o);
      const Matrix got = a.fit_embed(train);
      b.fit(train);
      const Matrix want = b.embed(train);
      REQUIRE(got.rows == want.rows);
      for (size_t i = 0; i < got.data.size(); ++i) CHECK(got.data[i] == Approx(want.data[i]).margin(1e-5));
    }
  }
}
