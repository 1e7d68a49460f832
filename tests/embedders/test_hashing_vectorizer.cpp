// The "hashing" embedder's feature hashing and tf-idf against scikit-learn 1.2.1.
// Golden numbers: tests/embedders/golden/hashing_toy.py.
#include "support/catch.h"
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "cbtm/error.h"
#include "hashing_embedder.h"
#include "hashing_vectorizer.h"
#include "murmurhash3.h"

using namespace cbtm::hashing;

namespace {

const std::vector<std::string> kToyDocs = {
    "The kernel schedules tasks; the kernel preempts tasks.",
    "Network packet router: the packet router drops a packet.",
    "Memory maps: Linux maps memory pages, Python maps objects.",
    "Café au lait, CAFÉ noir, straße 42 and ΟΔΟΣ λόγος.",
    "the of and 1999 a",
    "network packet memory maps",
    "Snake_case methods in Python classes; unload modules at boot.",
    "Spam money fortune cookie: naïve collector of money."};

struct Golden {
  std::vector<int> df;  // 64 buckets
  std::vector<double> idf;
  std::vector<std::tuple<int, int, double>> nonzeros;  // (row, bucket, value)
  std::vector<double> singular_values;                 // numpy, exact
};

// hashing_toy.py, "signed": alternate_sign=True, sublinear_tf=False.
const Golden kSigned = {
    {0, 1, 0, 0, 2, 3, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1,
     2, 0, 1, 0, 0, 2, 1, 0, 0, 0, 0, 2, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0,
     0, 2, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 3, 1, 1, 0, 0, 0},
    {3.197224577, 2.504077397, 3.197224577, 3.197224577, 2.098612289, 1.810930216, 3.197224577,
     3.197224577, 2.504077397, 3.197224577, 3.197224577, 3.197224577, 3.197224577, 2.504077397,
     3.197224577, 3.197224577, 3.197224577, 3.197224577, 2.504077397, 3.197224577, 3.197224577,
     2.504077397, 2.098612289, 3.197224577, 2.504077397, 3.197224577, 3.197224577, 2.098612289,
     2.504077397, 3.197224577, 3.197224577, 3.197224577, 3.197224577, 2.098612289, 2.504077397,
     3.197224577, 3.197224577, 2.504077397, 3.197224577, 2.504077397, 2.504077397, 3.197224577,
     3.197224577, 3.197224577, 3.197224577, 2.098612289, 3.197224577, 3.197224577, 3.197224577,
     3.197224577, 2.504077397, 3.197224577, 2.504077397, 3.197224577, 3.197224577, 3.197224577,
     3.197224577, 3.197224577, 1.810930216, 2.504077397, 2.504077397, 3.197224577, 3.197224577,
     3.197224577},
    {{0, 27, 0.275925779},  {0, 37, -0.658472753}, {0, 58, 0.238101307},  {0, 59, 0.658472753},
     {1, 4, -0.676331074},  {1, 5, -0.291809112},  {1, 22, 0.676331074},  {2, 22, 0.413538105},
     {2, 33, 0.413538105},  {2, 45, 0.413538105},  {2, 52, -0.493436271}, {2, 60, -0.493436271},
     {3, 5, 0.240450295},   {3, 8, 0.664968913},   {3, 13, 0.332484457},  {3, 24, 0.332484457},
     {3, 39, -0.332484457}, {3, 50, 0.332484457},  {3, 58, -0.240450295}, {6, 1, 0.608313155},
     {6, 34, -0.608313155}, {6, 45, 0.509813899},  {7, 5, -0.246391305},  {7, 21, 0.681398867},
     {7, 28, -0.340699433}, {7, 40, -0.340699433}, {7, 58, -0.492782611}},
    {1.165489854, 1.077042467, 1.018636393, 0.964523935}};

// hashing_toy.py, "unsigned_sublinear": alternate_sign=False, sublinear_tf=True (same df/idf).
const Golden kUnsignedSublinear = {
    kSigned.df,
    kSigned.idf,
    {{0, 27, 0.317698293}, {0, 37, 0.641837561}, {0, 58, 0.274147560}, {0, 59, 0.641837561},
     {1, 4, 0.782253885},  {1, 5, 0.282874121},  {1, 22, 0.555032514}, {2, 22, 0.292895801},
     {2, 33, 0.764293406}, {2, 45, 0.292895801}, {2, 52, 0.349485113}, {2, 60, 0.349485113},
     {3, 5, 0.257092794},  {3, 8, 0.601908739},  {3, 13, 0.355496997}, {3, 24, 0.355496997},
     {3, 39, 0.355496997}, {3, 50, 0.355496997}, {3, 58, 0.257092794}, {5, 4, 0.707106781},
     {5, 33, 0.707106781}, {6, 1, 0.363152802},  {6, 18, 0.614871143}, {6, 27, 0.515310005},
     {6, 34, 0.363152802}, {6, 45, 0.304350390}, {7, 5, 0.275532723},  {7, 21, 0.645080523},
     {7, 28, 0.380994949}, {7, 40, 0.380994949}, {7, 58, 0.466517454}},
    {1.366244406, 1.136474402, 1.058172670, 0.920061298}};

HashingVectorizerOptions toy_options(bool alternate_sign, bool sublinear_tf) {
  HashingVectorizerOptions o;
  o.n_features = 64;
  o.alternate_sign = alternate_sign;
  o.sublinear_tf = sublinear_tf;
  return o;
}

/// The matrix (used-bucket columns) as a dense docs x 64 matrix over all buckets.
std::vector<std::vector<double>> by_bucket(const HashingVectorizer& v,
                                           const cbtm::tfidf::CsrMatrix& x) {
  std::vector<std::vector<double>> out(static_cast<size_t>(x.rows), std::vector<double>(64, 0.0));
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t p = x.indptr[r]; p < x.indptr[r + 1]; ++p)
      out[r][v.buckets()[x.indices[p]]] = x.values[p];
  return out;
}

void check_against(const HashingVectorizer& v, const cbtm::tfidf::CsrMatrix& x, const Golden& g) {
  // Used buckets are those of non-zero df (counting documents where the sum cancelled).
  std::vector<int32_t> used;
  for (int b = 0; b < 64; ++b)
    if (g.df[b] > 0) used.push_back(b);
  REQUIRE(v.buckets() == used);
  REQUIRE(x.cols == static_cast<int64_t>(used.size()));
  REQUIRE(x.rows == static_cast<int64_t>(kToyDocs.size()));
  for (int b = 0; b < 64; ++b) {
    INFO("bucket " << b);
    CHECK(v.idf_of_bucket(b) == Approx(g.idf[b]).margin(1e-8));
  }
  std::vector<std::vector<double>> want(kToyDocs.size(), std::vector<double>(64, 0.0));
  for (const auto& [r, b, val] : g.nonzeros) want[r][b] = val;
  const auto got = by_bucket(v, x);
  for (size_t r = 0; r < want.size(); ++r)
    for (int b = 0; b < 64; ++b) {
      INFO("row " << r << " bucket " << b);
      CHECK(std::abs(got[r][b] - want[r][b]) < 1e-6);
    }
  CHECK(x.nnz() == static_cast<int64_t>(g.nonzeros.size()));  // cancelled counts not stored
}

}  // namespace

TEST_CASE("hashing: murmurhash3_32 equals scikit-learn's", "[hashing][murmurhash]") {
  // {string, murmurhash3_32(s, seed=0), murmurhash3_32(s, seed=42)}: every tail length,
  // multi-byte UTF-8.
  const std::vector<std::tuple<std::string, int32_t, int32_t>> cases = {
      {"", 0, 142593372},
      {"a", 1009084850, -1293573533},
      {"ab", -1681926305, -684913081},
      {"abc", -1277324294, 1313807976},
      {"abcd", 1139631978, -396302900},
      {"abcde", -392455434, -1361433616},
      {"abcdef", 1635893381, -1845688821},
      {"abcdefg", -2009294074, 1781200409},
      {"abcdefgh", 1239272644, -804741815},
      {"abcdefghi", 1108608752, 1076080772},
      {"kernel", -1856922853, 287902818},
      {"café", 605818632, 1312538061},
      {"straße", 2095602437, -523196152},
      {"日本語", -1515949417, -976822600},
      {"λόγος", -214956135, -1237124127},
      {"snake_case", 152045330, -393963719}};
  for (const auto& [s, h0, h42] : cases) {
    INFO(s);
    CHECK(murmurhash3_32(s) == h0);
    CHECK(murmurhash3_32(s, 42) == h42);
  }
}

TEST_CASE("hashing: buckets and signs follow scikit-learn", "[hashing][murmurhash]") {
  // abs(h) % n; kernel: h = -1856922853 -> bucket 1856922853 % 64 = 37, sign -1.
  const HashedTerm k = hash_term("kernel", 64, true);
  CHECK(k.bucket == 37);
  CHECK(k.sign == -1);
  CHECK(hash_term("kernel", 64, false).sign == 1);
  CHECK(hash_term("café", 1000, true).bucket == 605818632 % 1000);
  CHECK(hash_term("café", 1000, true).sign == 1);
  // scikit-learn special-cases h = -2^31: (2147483647 - (n_features - 1)) % n_features.
  for (int64_t n : {1, 3, 64, 1000, 1 << 20, 2147483647})
    CHECK(bucket_of_hash(INT32_MIN, n) == (int64_t{2147483647} - (n - 1)) % n);
  CHECK(bucket_of_hash(-5, 3) == 2);
  CHECK(bucket_of_hash(INT32_MAX, int64_t{2147483647}) == 0);
}

TEST_CASE("hashing: HashingVectorizer + TfidfTransformer rows equal scikit-learn's",
          "[hashing][vectorizer]") {
  SECTION("alternate_sign") {
    HashingVectorizer v(toy_options(true, false));
    const auto x = v.fit_transform(kToyDocs, 2);
    check_against(v, x, kSigned);
    CHECK(v.documents() == 8);
    // transform() of the fit texts is the same matrix.
    const auto y = v.transform(kToyDocs, 1);
    CHECK(y.indptr == x.indptr);
    CHECK(y.indices == x.indices);
    CHECK(y.values == x.values);
  }
  SECTION("unsigned, sublinear_tf") {
    HashingVectorizer v(toy_options(false, true));
    check_against(v, v.fit_transform(kToyDocs, 1), kUnsignedSublinear);
  }
  SECTION("signed counts of a text, cancellation kept as a zero count") {
    HashingVectorizer v(toy_options(true, false));
    CountScratch s;
    BucketCounts c;
    // network (+1) and packet (-1) share bucket 4; kernel is bucket 37 with sign -1.
    v.count_buckets("Network packet packet, the KERNEL kernel 42", s, c);
    CHECK(c == BucketCounts{{4, -1}, {37, -2}});
    v.count_buckets("network packet", s, c);
    CHECK(c == BucketCounts{{4, 0}});
    v.count_buckets("", s, c);
    CHECK(c.empty());
  }
}

TEST_CASE("hashing: unused buckets weigh in the row norm", "[hashing][vectorizer]") {
  HashingVectorizer v(toy_options(true, false));
  v.fit_transform(kToyDocs, 1);
  // "kernel" (bucket 37, used) twice plus "zebra", in a bucket no fit text used.
  const HashedTerm z = hash_term("zebra", 64, true);
  REQUIRE(v.column(z.bucket) < 0);
  const auto x = v.transform({"kernel kernel zebra", "zebra"}, 1);
  const double wk = 2 * v.idf_of_bucket(37), wz = v.unseen_idf();
  CHECK(v.unseen_idf() == Approx(std::log(9.0) + 1).margin(1e-12));
  REQUIRE(x.indptr == std::vector<int64_t>{0, 1, 1});
  CHECK(x.values[0] == Approx(-wk / std::sqrt(wk * wk + wz * wz)).margin(1e-6));
}

TEST_CASE("hashing: the kept term of a bucket is its majority term", "[hashing][vectorizer]") {
  // network (+1), packet (-1) and generations (+1) share bucket 4 of 64. Over 100 texts
  // (two threads), packet occurs 60 times, network 40: packet wins in any order.
  std::vector<std::string> texts;
  for (int i = 0; i < 100; ++i)
    texts.push_back(i % 5 < 3 ? "packet kernel" : "network memory router");
  texts[7] = "generations";
  HashingVectorizer v(toy_options(true, false));
  v.fit_transform(texts, 2);
  REQUIRE(v.terms().size() == v.buckets().size());
  CHECK(v.terms()[v.column(4)] == "packet");
  CHECK(v.terms()[v.column(37)] == "kernel");
  for (size_t j = 0; j < v.buckets().size(); ++j)  // every kept term lies in its bucket
    CHECK(hash_term(v.terms()[j], 64, true).bucket == v.buckets()[j]);

  HashingVectorizerOptions o = toy_options(true, false);
  o.keep_terms = false;
  HashingVectorizer nv(o);
  nv.fit_transform(texts, 2);
  CHECK(nv.terms().empty());
  CHECK(nv.buckets() == v.buckets());
}

TEST_CASE("hashing: SVD of the hashed tf-idf matches numpy's singular values",
          "[hashing][embedder]") {
  for (const Golden* g : {&kSigned, &kUnsignedSublinear}) {
    HashingOptions o;
    o.dims = 4;
    o.n_features = 64;
    o.alternate_sign = g == &kSigned;
    o.sublinear_tf = g == &kUnsignedSublinear;
    HashingEmbedder e(o);
    e.fit(kToyDocs);
    REQUIRE(e.singular_values().size() == 4);
    for (size_t k = 0; k < 4; ++k)
      CHECK(e.singular_values()[k] == Approx(g->singular_values[k]).margin(1e-4));
  }
}

TEST_CASE("hashing: vectorizer errors", "[hashing][vectorizer]") {
  HashingVectorizer v(toy_options(true, false));
  CHECK_THROWS_WITH(v.fit_transform({}, 1), ContainsText("at least one"));
  CHECK_THROWS_WITH(v.fit_transform({"the of and", "1 2 3 a"}, 1), ContainsText("no term"));
  CHECK_THROWS_WITH(v.transform({"x"}, 1), ContainsText("before fit()"));
  CHECK_THROWS_WITH(v.set_state({3, 2}, {1, 1}, 5, {}), ContainsText("ascending"));
  CHECK_THROWS_WITH(v.set_state({3, 64}, {1, 1}, 5, {}),
                    ContainsText("bucket 64") && ContainsText("n_features=64"));
  CHECK_THROWS_WITH(v.set_state({1, 2}, {1}, 5, {}), ContainsText("2 buckets but 1 idf"));
  CHECK_THROWS_WITH(v.set_state({1, 2}, {1, 1}, 0, {}), ContainsText("fit documents"));
  HashingVectorizerOptions bad;
  bad.n_features = 0;
  CHECK_THROWS_WITH(HashingVectorizer(bad), ContainsText("n_features=0"));
}
