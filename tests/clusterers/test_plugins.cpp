// The clusterer plugins through the registry (as the pipeline creates them), and the
// random clusterer's contract.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/catch.h"

#include "blobs.h"
#include "cbtm/clusterer.h"
#include "cbtm/config_node.h"
#include "cbtm/error.h"
#include "cbtm/tensor_file.h"
#include "kmeans_core/lloyd_clusterer.h"
#include "kmeans_core/random_clusterer.h"
#include "support/test_support.h"

using cbtm::Clusterer;
using cbtm::Matrix;

namespace {
cbtm::ConfigNode node(const std::string& yaml) {
  return cbtm::ConfigNode{YAML::Load(yaml), "clusterer", "test.yaml"};
}
std::unique_ptr<Clusterer> make(const std::string& yaml) {
  return cbtm::test::plugins().registry().create<Clusterer>(node(yaml));
}
Matrix random_rows(int64_t n, int64_t dim, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g(0.f, 3.f);
  Matrix m(n, dim);
  for (auto& v : m.data) v = g(gen);
  return m;
}
// Brute-force nearest centre in double precision.
void check_greedy(const Clusterer& cl, const Matrix& y) {
  const cbtm::Assignment a = cl.assign(y);
  const Matrix& c = cl.centers();
  REQUIRE(a.cluster.size() == size_t(y.rows));
  for (int64_t i = 0; i < y.rows; ++i) {
    double best = 1e300;
    int arg = -1;
    for (int64_t j = 0; j < c.rows; ++j) {
      double s = 0;
      for (int64_t d = 0; d < y.cols; ++d) s += (double(y.at(i, d)) - c.at(j, d)) * (double(y.at(i, d)) - c.at(j, d));
      if (s < best) {
        best = s;
        arg = int(j);
      }
    }
    CHECK(a.cluster[i] == arg);
    CHECK(a.sqdist[i] == Approx(best).epsilon(1e-5));
  }
}
}  // namespace

TEST_CASE("clusterer plugins: the clusterers are registered with documented options",
          "[plugins]") {
  const auto names = cbtm::test::plugins().registry().names("clusterer");
  for (const char* n : {"balanced_kmeans", "kmeans", "random", "metadata"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  const auto& spec = cbtm::test::plugins().registry().get("clusterer", "balanced_kmeans");
  std::vector<std::string> keys;
  for (const auto& o : spec.options()) keys.push_back(o.name);
  CHECK(keys == std::vector<std::string>{"k", "init", "max_iters", "tol", "seed", "batch_size",
                                               "n_init"});
  for (const auto& o : spec.options()) CHECK(!o.doc.empty());
  const YAML::Node resolved =
      cbtm::test::plugins().registry().resolve("clusterer", node("{type: kmeans, k: 3}"));
  CHECK(resolved["k"].as<int>() == 3);
  CHECK(resolved["init"].as<std::string>() == "random");
  CHECK(resolved["max_iters"].as<int>() == 20);
  CHECK(resolved["tol"].as<double>() == 0.001);
  CHECK(resolved["seed"].as<uint64_t>() == 0);
  CHECK(resolved["batch_size"].as<int64_t>() == 0);
  CHECK(resolved["n_init"].as<int>() == 1);
}

TEST_CASE("clusterer plugins: fit - greedy assign - save and load", "[plugins]") {
  const auto b = cbtm::test::make_blobs({60, 60, 60, 60}, 5, 6.f, 1.f, 21);
  const Matrix y = random_rows(200, 5, 22);
  for (const std::string type : {"balanced_kmeans", "kmeans", "random"}) {
    INFO(type);
    auto cl = make("{type: " + type + ", k: 4, seed: 5}");
    CHECK(cl->k() == 4);
    CHECK(cl->centers().empty());
    CHECK_THROWS_WITH(cl->assign(y), ContainsText("before fit"));
    cl->fit(b.x);
    REQUIRE(cl->centers().rows == 4);
    REQUIRE(cl->centers().cols == 5);
    if (type != "random") check_greedy(*cl, y);

    cbtm::test::TempDir dir("clusterer");
    cbtm::TensorFileWriter w;
    cl->save(w, "clusterer");
    w.write(dir / "c.safetensors");
    const cbtm::TensorFile f = cbtm::TensorFile::read(dir / "c.safetensors");
    auto back = make("{type: " + type + ", k: 4, seed: 5}");
    back->load(f, "clusterer");
    CHECK(back->centers().data == cl->centers().data);
    const cbtm::Assignment a1 = cl->assign(y), a2 = back->assign(y);
    CHECK(a1.cluster == a2.cluster);
    CHECK(a1.sqdist == a2.sqdist);

    // Loading into the wrong plugin or with another k names the problem.
    const std::string other = type == "kmeans" ? "balanced_kmeans" : "kmeans";
    auto wrong = make("{type: " + other + ", k: 4}");
    CHECK_THROWS_WITH(wrong->load(f, "clusterer"), ContainsText("fitted by '" + type + "'"));
    auto wrong_k = make("{type: " + type + ", k: 5, seed: 5}");
    CHECK_THROWS_WITH(wrong_k->load(f, "clusterer"), ContainsText("k=4"));
    CHECK_THROWS_WITH(back->load(f, "nothing"), ContainsText("nothing.centers"));
  }
}

TEST_CASE("clusterer plugins: input and option errors name the problem", "[plugins]") {
  const Matrix x = random_rows(5, 3, 1);
  for (const std::string type : {"balanced_kmeans", "kmeans", "random"}) {
    INFO(type);
    auto cl = make("{type: " + type + ", k: 8}");
    CHECK_THROWS_AS(cl->fit(x), cbtm::Error);
    CHECK_THROWS_WITH(cl->fit(x), ContainsText("k=8 is larger than the number of points (5)"));
    Matrix bad = random_rows(20, 3, 2);
    bad.at(13, 2) = std::nanf("");
    CHECK_THROWS_WITH(cl->fit(bad), ContainsText("row 13"));
    CHECK_THROWS_WITH(make("{type: " + type + ", k: 2, kk: 3}"), ContainsText("kk"));
    CHECK_THROWS_WITH(make("{type: " + type + ", k: 0}"), ContainsText("clusterer.k"));
    auto ok = make("{type: " + type + ", k: 2}");
    ok->fit(random_rows(20, 3, 3));
    CHECK_THROWS_WITH(ok->assign(random_rows(4, 2, 4)), ContainsText("2 columns"));
  }
  CHECK_THROWS_WITH(make("{type: balanced_kmeans, init: farthest}"), ContainsText("init"));
  CHECK_THROWS_WITH(make("{type: kmeans, max_iters: 0}"), ContainsText("max_iters"));
  CHECK_THROWS_WITH(make("{type: balanced_kmeans, k: 8, batch_size: 7}"),
                    ContainsText("batch_size") && ContainsText(">= k=8, got 7"));
  // The mini-batch path checks its input the same way.
  for (const std::string type : {"balanced_kmeans", "kmeans"}) {
    INFO(type);
    auto mb = make("{type: " + type + ", k: 8, batch_size: 16}");
    CHECK_THROWS_WITH(mb->fit(x), ContainsText("k=8 is larger than the number of points (5)"));
    Matrix bad = random_rows(40, 3, 2);
    bad.at(31, 0) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(mb->fit(bad), ContainsText("row 31, column 0 is inf"));
  }
}

TEST_CASE("clusterer plugins: balanced fits give floor/ceil sizes - n=100 k=7 and n=96 k=8",
          "[plugins]") {
  // The fit's own assignment is balanced (full batch and mini-batch); assign() is the
  // greedy nearest centre and is not (see lloyd_clusterer.h).
  for (auto [n, k] : std::vector<std::pair<int, int>>{{100, 7}, {96, 8}}) {
    const Matrix x = random_rows(n, 3, 30 + n);
    for (const std::string batch : {"0", "20", "50"}) {
      INFO("n=" << n << " k=" << k << " batch_size " << batch);
      auto cl = make("{type: balanced_kmeans, k: " + std::to_string(k) +
                     ", batch_size: " + batch + "}");
      cl->fit(x);
      const auto& fit = dynamic_cast<const cbtm::kmeans::LloydClusterer&>(*cl).fit_assignment();
      REQUIRE(fit.size() == size_t(n));
      std::vector<int64_t> size(k, 0);
      for (int32_t j : fit) ++size[j];
      std::sort(size.begin(), size.end());
      std::vector<int64_t> want(k, n / k);
      for (int j = k - n % k; j < k; ++j) ++want[j];
      CHECK(size == want);  // 100/7: five of 14 and two of 15; 96/8: all 12
    }
  }
}

TEST_CASE("clusterer plugins: balanced_kmeans is deterministic per seed", "[plugins]") {
  const auto b = cbtm::test::make_blobs({90, 70, 50}, 4, 2.f, 1.f, 23);
  auto a = make("{type: balanced_kmeans, k: 5, seed: 1}");
  auto c = make("{type: balanced_kmeans, k: 5, seed: 1}");
  a->fit(b.x);
  c->fit(b.x);
  CHECK(a->centers().data == c->centers().data);
}

TEST_CASE("random clusterer: balanced partition at fit - centres are its means", "[random]") {
  cbtm::kmeans::RandomClusterer::Options o;
  o.k = 7;
  o.seed = 3;
  cbtm::kmeans::RandomClusterer cl(o);
  const Matrix x = random_rows(1003, 4, 5);
  cl.fit(x);
  const auto& a = cl.fit_assignment();
  std::vector<int64_t> size(7, 0);
  std::vector<std::vector<double>> sum(7, std::vector<double>(4, 0));
  for (int64_t i = 0; i < x.rows; ++i) {
    ++size[a[i]];
    for (int d = 0; d < 4; ++d) sum[a[i]][d] += x.at(i, d);
  }
  for (int j = 0; j < 7; ++j) {
    CHECK((size[j] == 143 || size[j] == 144));  // 1003 = 7 * 143 + 2
    for (int d = 0; d < 4; ++d) CHECK(cl.centers().at(j, d) == Approx(sum[j][d] / size[j]).epsilon(1e-5));
  }
  // Seeded: same seed, same partition; another seed, another one.
  cbtm::kmeans::RandomClusterer same(o);
  same.fit(x);
  CHECK(same.fit_assignment() == a);
  o.seed = 4;
  cbtm::kmeans::RandomClusterer other(o);
  other.fit(x);
  CHECK(other.fit_assignment() != a);
}

TEST_CASE("random clusterer: assign is per row - independent of the batch", "[random]") {
  auto cl = make("{type: random, k: 8, seed: 11}");
  cl->fit(random_rows(100, 6, 7));
  const Matrix y = random_rows(4000, 6, 8);
  const cbtm::Assignment all = cl->assign(y);
  // The same rows in another order and in small batches land in the same clusters.
  std::vector<int64_t> order(y.rows);
  for (int64_t i = 0; i < y.rows; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(9));
  for (int64_t start = 0; start < 400; start += 37) {
    Matrix batch(std::min<int64_t>(37, 400 - start), 6);
    for (int64_t r = 0; r < batch.rows; ++r)
      std::copy(y.row(order[start + r]), y.row(order[start + r]) + 6, batch.row(r));
    const cbtm::Assignment part = cl->assign(batch);
    for (int64_t r = 0; r < batch.rows; ++r) {
      CHECK(part.cluster[r] == all.cluster[order[start + r]]);
      CHECK(part.sqdist[r] == all.sqdist[order[start + r]]);
    }
  }
  // sqdist is the distance to the chosen (not the nearest) centre; clusters are ~uniform.
  std::vector<int64_t> count(8, 0);
  for (int64_t i = 0; i < y.rows; ++i) {
    ++count[all.cluster[i]];
    double s = 0;
    for (int d = 0; d < 6; ++d) {
      const double t = double(y.at(i, d)) - cl->centers().at(all.cluster[i], d);
      s += t * t;
    }
    CHECK(all.sqdist[i] == Approx(s).epsilon(1e-5));
  }
  for (int64_t c : count) CHECK(std::abs(c - 500) < 100);  // 4000 / 8, ~4.5 sigma
  // Another seed hashes differently.
  auto other = make("{type: random, k: 8, seed: 12}");
  other->fit(random_rows(100, 6, 7));
  CHECK(other->assign(y).cluster != all.cluster);
  // The saved seed must match the configured one.
  cbtm::test::TempDir dir("random");
  cbtm::TensorFileWriter w;
  cl->save(w, "c");
  w.write(dir / "r.safetensors");
  CHECK_THROWS_WITH(other->load(cbtm::TensorFile::read(dir / "r.safetensors"), "c"),
                    ContainsText("seed 11"));
}
