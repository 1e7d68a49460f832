// The "metadata" clusterer (cluster = a document field): value order, top-k selection,
// unknown values both ways, centres against independently computed means, save/load.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "support/catch.h"

#include "cbtm/clusterer.h"
#include "cbtm/config_node.h"
#include "cbtm/error.h"
#include "cbtm/tensor_file.h"
#include "metadata/metadata_clusterer.h"
#include "support/test_support.h"

using cbtm::Clusterer;
using cbtm::Matrix;
using Strings = std::vector<std::string>;

namespace {
std::unique_ptr<Clusterer> make(const std::string& yaml) {
  return cbtm::test::plugins().registry().create<Clusterer>(
      cbtm::ConfigNode{YAML::Load(yaml), "clusterer", "test.yaml"});
}
Matrix random_rows(int64_t n, int64_t dim, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g(0.f, 2.f);
  Matrix m(n, dim);
  for (auto& v : m.data) v = g(gen);
  return m;
}
double sqdist(const Matrix& x, int64_t i, const Matrix& c, int64_t j) {
  double s = 0;
  for (int64_t d = 0; d < x.cols; ++d) {
    const double t = double(x.at(i, d)) - c.at(j, d);
    s += t * t;
  }
  return s;
}
int64_t nearest(const Matrix& x, int64_t i, const Matrix& c) {
  int64_t arg = 0;
  for (int64_t j = 1; j < c.rows; ++j)
    if (sqdist(x, i, c, j) < sqdist(x, i, c, arg)) arg = j;
  return arg;
}
// Mean of the rows of x whose metadata is `value` (double).
std::vector<double> mean_of(const Matrix& x, const Strings& meta, const std::string& value) {
  std::vector<double> m(x.cols, 0);
  int n = 0;
  for (int64_t i = 0; i < x.rows; ++i)
    if (meta[i] == value) {
      ++n;
      for (int64_t d = 0; d < x.cols; ++d) m[d] += x.at(i, d);
    }
  for (auto& v : m) v /= n;
  return m;
}
// Metadata with counts a:5, b:7, c:7, d:2, missing:9 (shuffled).
Strings skewed_metadata(uint32_t seed) {
  Strings m;
  const std::vector<std::pair<std::string, int>> counts = {
      {"a", 5}, {"b", 7}, {"c", 7}, {"d", 2}, {"", 9}};
  for (const auto& [v, n] : counts) m.insert(m.end(), n, v);
  std::shuffle(m.begin(), m.end(), std::mt19937(seed));
  return m;
}
}  // namespace

TEST_CASE("metadata clusterer: registered - reads its field - needs the metadata", "[metadata]") {
  auto cl = make("{type: metadata, field: source, k: 2}");
  CHECK(cl->metadata_field() == "source");
  CHECK(make("{type: kmeans, k: 2}")->metadata_field().empty());
  CHECK_THROWS_WITH(cl->fit(random_rows(10, 3, 1)), ContainsText("fit_with_metadata"));
  CHECK_THROWS_WITH(cl->assign(random_rows(3, 3, 1)), ContainsText("before fit"));
  const YAML::Node resolved = cbtm::test::plugins().registry().resolve(
      "clusterer", {YAML::Load("{type: metadata, k: 3}"), "clusterer", "t.yaml"});
  CHECK(resolved["field"].as<std::string>() == "domain");
  CHECK(resolved["unknown"].as<std::string>() == "nearest");
}

TEST_CASE("metadata clusterer: configured values give the cluster order - centres are means",
          "[metadata]") {
  const Matrix x = random_rows(30, 4, 2);
  const Strings meta = skewed_metadata(3);
  auto cl = make("{type: metadata, k: 3, values: [c, a, d]}");
  cl->fit_with_metadata(x, meta);
  auto& mc = dynamic_cast<cbtm::metadata::MetadataClusterer&>(*cl);
  CHECK(mc.values() == Strings{"c", "a", "d"});
  const Matrix& c = cl->centers();
  REQUIRE(c.rows == 3);
  REQUIRE(c.cols == 4);
  for (int j = 0; j < 3; ++j) {
    const auto m = mean_of(x, meta, mc.values()[j]);
    for (int d = 0; d < 4; ++d) CHECK(c.at(j, d) == Approx(m[d]).epsilon(1e-6));
  }
  // Known values go to their cluster, whatever the distance; sqdist to that centre.
  const cbtm::Assignment a = cl->assign_with_metadata(x, meta);
  for (int64_t i = 0; i < x.rows; ++i) {
    INFO("document " << i << " value '" << meta[i] << "'");
    const auto it = std::find(mc.values().begin(), mc.values().end(), meta[i]);
    const int64_t want = it != mc.values().end() ? it - mc.values().begin() : nearest(x, i, c);
    CHECK(a.cluster[i] == want);
    CHECK(a.sqdist[i] == Approx(sqdist(x, i, c, want)).epsilon(1e-5));
  }
  // Without metadata: the nearest centre.
  const cbtm::Assignment g = cl->assign(x);
  for (int64_t i = 0; i < x.rows; ++i) CHECK(g.cluster[i] == nearest(x, i, c));
}

TEST_CASE("metadata clusterer: empty values take the k most frequent - ties by name",
          "[metadata]") {
  const Matrix x = random_rows(30, 3, 4);
  const Strings meta = skewed_metadata(5);
  auto cl = make("{type: metadata, k: 3}");
  cl->fit_with_metadata(x, meta);
  auto& mc = dynamic_cast<cbtm::metadata::MetadataClusterer&>(*cl);
  // b and c (7 each; the 9 missing values do not count) before a (5); d (2) is left out.
  CHECK(mc.values() == Strings{"b", "c", "a"});
  for (int j = 0; j < 3; ++j) {
    const auto m = mean_of(x, meta, mc.values()[j]);
    for (int d = 0; d < 3; ++d) CHECK(cl->centers().at(j, d) == Approx(m[d]).epsilon(1e-6));
  }
  // Too few distinct values names the field and the count.
  auto big = make("{type: metadata, k: 5}");
  CHECK_THROWS_AS(big->fit_with_metadata(x, meta), cbtm::Error);
  CHECK_THROWS_WITH(big->fit_with_metadata(x, meta),
                    ContainsText("field 'domain' has 4 distinct values") &&
                        ContainsText("fewer than k=5"));
}

TEST_CASE("metadata clusterer: unknown values - nearest or error", "[metadata]") {
  const Matrix x = random_rows(30, 3, 6);
  const Strings meta = skewed_metadata(7);
  const Matrix y = random_rows(6, 3, 8);
  const Strings ymeta = {"b", "zzz", "", "a", "d", "c"};

  auto near = make("{type: metadata, k: 3, unknown: nearest}");
  near->fit_with_metadata(x, meta);  // values b, c, a; d and missing documents are left out
  const cbtm::Assignment a = near->assign_with_metadata(y, ymeta);
  const Matrix& c = near->centers();
  CHECK(a.cluster[0] == 0);
  CHECK(a.cluster[3] == 2);
  CHECK(a.cluster[5] == 1);
  for (int64_t i : {1, 2, 4}) {
    CHECK(a.cluster[i] == nearest(y, i, c));
    CHECK(a.sqdist[i] == Approx(sqdist(y, i, c, nearest(y, i, c))).epsilon(1e-5));
  }

  auto strict = make("{type: metadata, k: 3, unknown: error}");
  // The fit documents themselves include d and missing values.
  CHECK_THROWS_WITH(strict->fit_with_metadata(x, meta), ContainsText("not one of the k=3"));
  Strings clean = meta;
  for (auto& v : clean)
    if (v == "d" || v.empty()) v = "a";
  strict->fit_with_metadata(x, clean);
  CHECK_THROWS_WITH(strict->assign_with_metadata(y, ymeta),
                    ContainsText("document 1 has domain 'zzz'") &&
                        ContainsText("unknown: nearest"));
  CHECK_THROWS_WITH(strict->assign_with_metadata(y, {"b", "a", "", "a", "a", "a"}),
                    ContainsText("document 2 has no 'domain' field"));
  CHECK_THROWS_WITH(strict->assign_with_metadata(y, {"b"}),
                    ContainsText("1 values of field 'domain' for 6 embeddings"));
}

TEST_CASE("metadata clusterer: save and load round trip - mismatches named", "[metadata]") {
  const Matrix x = random_rows(30, 5, 9);
  const Strings meta = skewed_metadata(10);
  auto cl = make("{type: metadata, k: 3}");
  cl->fit_with_metadata(x, meta);
  cbtm::test::TempDir dir("metadata");
  cbtm::TensorFileWriter w;
  cl->save(w, "clusterer");
  w.write(dir / "m.safetensors");
  const cbtm::TensorFile f = cbtm::TensorFile::read(dir / "m.safetensors");

  auto back = make("{type: metadata, k: 3}");
  back->load(f, "clusterer");
  CHECK(back->centers().data == cl->centers().data);
  CHECK(dynamic_cast<cbtm::metadata::MetadataClusterer&>(*back).values() == Strings{"b", "c", "a"});
  const Matrix y = random_rows(20, 5, 11);
  Strings ymeta(20);
  for (int i = 0; i < 20; ++i) ymeta[i] = Strings{"a", "b", "c", "d", ""}[i % 5];
  const cbtm::Assignment a1 = cl->assign_with_metadata(y, ymeta);
  const cbtm::Assignment a2 = back->assign_with_metadata(y, ymeta);
  CHECK(a1.cluster == a2.cluster);
  CHECK(a1.sqdist == a2.sqdist);
  // Loading with the same values configured works; other values, field or k do not.
  make("{type: metadata, k: 3, values: [b, c, a]}")->load(f, "clusterer");
  CHECK_THROWS_WITH(make("{type: metadata, k: 3, values: [a, b, c]}")->load(f, "clusterer"),
                    ContainsText("differ from the configured `values`"));
  CHECK_THROWS_WITH(make("{type: metadata, field: source, k: 3}")->load(f, "clusterer"),
                    ContainsText("clusters by field 'domain'"));
  CHECK_THROWS_WITH(make("{type: metadata, k: 4}")->load(f, "clusterer"), ContainsText("k=3"));
  CHECK_THROWS_WITH(make("{type: kmeans, k: 3}")->load(f, "clusterer"),
                    ContainsText("fitted by 'metadata'"));
}

TEST_CASE("metadata clusterer: option and input errors", "[metadata]") {
  CHECK_THROWS_WITH(make("{type: metadata}"), ContainsText("clusterer.k"));
  CHECK_THROWS_WITH(make("{type: metadata, k: 2, values: [a]}"),
                    ContainsText("lists 1 values but k is 2"));
  CHECK_THROWS_WITH(make("{type: metadata, k: 2, values: [a, a]}"),
                    ContainsText("'a' is listed twice"));
  CHECK_THROWS_WITH(make("{type: metadata, k: 2, unknown: drop}"), ContainsText("unknown"));
  CHECK_THROWS_WITH(make("{type: metadata, k: 2, field: ''}"), ContainsText("field"));
  const Matrix x = random_rows(30, 3, 12);
  const Strings meta = skewed_metadata(13);
  CHECK_THROWS_WITH(make("{type: metadata, k: 2, values: [a, q]}")->fit_with_metadata(x, meta),
                    ContainsText("value 'q'"));
  CHECK_THROWS_WITH(make("{type: metadata, k: 2}")->fit_with_metadata(x, Strings(29, "a")),
                    ContainsText("29 values of field 'domain' for 30 embeddings"));
  Matrix bad = x;
  bad.at(4, 1) = std::nanf("");
  CHECK_THROWS_WITH(make("{type: metadata, k: 2}")->fit_with_metadata(bad, meta),
                    ContainsText("row 4"));
  auto cl = make("{type: metadata, k: 2}");
  cl->fit_with_metadata(x, meta);
  CHECK_THROWS_WITH(cl->assign_with_metadata(random_rows(2, 4, 1), {"a", "b"}),
                    ContainsText("4 columns"));
  // A failed fit leaves the clusterer unchanged.
  auto strict = make("{type: metadata, k: 2, unknown: error, values: [a, b]}");
  Strings ab = meta;
  for (auto& v : ab) v = (v == "a" || v == "c") ? "a" : "b";
  strict->fit_with_metadata(x, ab);
  const std::vector<float> before = strict->centers().data;
  CHECK_THROWS(strict->fit_with_metadata(x, meta));
  CHECK(strict->centers().data == before);
  CHECK(dynamic_cast<cbtm::metadata::MetadataClusterer&>(*strict).values() == Strings{"a", "b"});
}
