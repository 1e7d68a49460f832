// The blocked distance kernel, the arg-min and the initialisations against naive loops.
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "support/catch.h"

#include "cbtm/clusterer.h"
#include "kmeans_core/distances.h"
#include "kmeans_core/init.h"
#include "kmeans_core/lloyd.h"

using cbtm::Matrix;

namespace {
Matrix random_matrix(int64_t rows, int64_t cols, uint32_t seed, float scale = 1.f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g(0.f, scale);
  Matrix m(rows, cols);
  for (auto& v : m.data) v = g(gen);
  return m;
}
double naive_sqdist(const Matrix& a, int64_t i, const Matrix& b, int64_t j) {
  double s = 0;
  for (int64_t d = 0; d < a.cols; ++d) {
    const double t = double(a.at(i, d)) - b.at(j, d);
    s += t * t;
  }
  return s;
}
}  // namespace

TEST_CASE("distances: blocked kernel equals the naive double loop", "[distances]") {
  // Odd sizes exercise the partial row block and the padded centre tile.
  for (auto [n, k, dim] : std::vector<std::tuple<int, int, int>>{
           {37, 13, 19}, {4, 8, 1}, {1, 1, 3}, {101, 128, 100}, {9, 3, 64}}) {
    const Matrix x = random_matrix(n, dim, 1 + n);
    const Matrix c = random_matrix(k, dim, 2 + k);
    for (int threads : {1, 2}) {
      std::vector<float> d(n * k, -1.f);
      cbtm::kmeans::squared_distances(x, c, d.data(), threads);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < k; ++j) {
          const double want = naive_sqdist(x, i, c, j);
          INFO("n=" << n << " k=" << k << " dim=" << dim << " i=" << i << " j=" << j);
          REQUIRE(d[i * k + j] == Approx(want).epsilon(1e-4).margin(1e-4 * dim));
        }
    }
  }
}

TEST_CASE("distances: identical results for any thread count and kernel - clamped at zero",
          "[distances]") {
  const Matrix x = random_matrix(203, 50, 9);
  Matrix c(5, 50);
  for (int j = 0; j < 5; ++j)  // centres equal to data points: distance 0 up to rounding
    for (int d = 0; d < 50; ++d) c.at(j, d) = x.at(j * 7, d);
  std::vector<float> d1(203 * 5), d2(203 * 5), d3(203 * 5);
  cbtm::kmeans::squared_distances(x, c, d1.data(), 1);
  cbtm::kmeans::squared_distances(x, c, d2.data(), 2);
  CHECK(d1 == d2);
  // The portable kernel and the AVX2 / AVX-512 ones (those this CPU has) agree bit for bit,
  // for centre counts that fill whole tiles and ones that do not.
  using cbtm::kmeans::DistanceKernel;
  cbtm::kmeans::detail::squared_distances(x, c, d3.data(), 2, DistanceKernel::kScalar);
  CHECK(d1 == d3);
  for (int kc : {37, 32, 16, 3}) {
    const Matrix y = random_matrix(61, 100, 10), cy = random_matrix(kc, 100, 11);
    std::vector<float> ref(61 * kc);
    cbtm::kmeans::detail::squared_distances(y, cy, ref.data(), 1, DistanceKernel::kScalar);
    for (DistanceKernel kern : {DistanceKernel::kAvx2, DistanceKernel::kAvx512}) {
      if (!cbtm::kmeans::kernel_available(kern)) continue;
      std::vector<float> e(61 * kc);
      cbtm::kmeans::detail::squared_distances(y, cy, e.data(), 2, kern);
      CHECK(e == ref);
    }
    // Against a plain double-precision computation.
    for (int i = 0; i < 61; ++i)
      for (int j = 0; j < kc; ++j) {
        double d = 0;
        for (int t = 0; t < 100; ++t) {
          const double u = double(y.at(i, t)) - cy.at(j, t);
          d += u * u;
        }
        CHECK(std::abs(ref[i * kc + j] - d) <= 1e-4 * std::max(1.0, d));
      }
  }
  for (float v : d1) CHECK(v >= 0.f);
  for (int j = 0; j < 5; ++j) CHECK(d1[(j * 7) * 5 + j] < 1e-4f);
  // Precomputed row norms (what Lloyd passes) give the same bits.
  std::vector<float> d4(203 * 5);
  cbtm::kmeans::squared_distances(x, cbtm::kmeans::row_sqnorms(x, 2), c, d4.data(), 2);
  CHECK(d1 == d4);
  CHECK_THROWS(cbtm::kmeans::squared_distances(x, std::vector<float>(5), c, d4.data(), 2));
}

TEST_CASE("distances: cluster_means equals the naive means - any thread count", "[distances]") {
  const Matrix x = random_matrix(3001, 101, 12);  // large enough for the parallel path
  std::vector<int32_t> a(3001);
  for (int i = 0; i < 3001; ++i) a[i] = (i * 7 + i / 13) % 6;  // cluster 6 stays empty
  std::vector<int64_t> sizes;
  const Matrix m1 = cbtm::kmeans::cluster_means(x, a, 7, &sizes, 1);
  for (int threads : {2, 3, 200}) {
    const Matrix mt = cbtm::kmeans::cluster_means(x, a, 7, nullptr, threads);
    CHECK(mt.data == m1.data);
  }
  for (int j = 0; j < 7; ++j) {
    int64_t n = 0;
    std::vector<double> s(101, 0);
    for (int i = 0; i < 3001; ++i)
      if (a[i] == j) {
        ++n;
        for (int d = 0; d < 101; ++d) s[d] += x.at(i, d);
      }
    CHECK(sizes[j] == n);
    for (int d = 0; d < 101; ++d) CHECK(m1.at(j, d) == Approx(n ? s[d] / n : 0.0).margin(1e-6));
  }
}

TEST_CASE("distances: row_argmin takes the first minimum", "[distances]") {
  const std::vector<float> d = {3, 1, 1, 2,  //
                                0, 5, 0, 0,  //
                                9, 8, 7, 6};
  std::vector<int32_t> arg(3);
  std::vector<float> best(3);
  cbtm::kmeans::row_argmin(d.data(), 3, 4, arg.data(), best.data(), 2);
  CHECK(arg == std::vector<int32_t>{1, 0, 3});
  CHECK(best == std::vector<float>{1, 0, 6});
}

TEST_CASE("init: random picks k distinct rows - deterministically per seed", "[init]") {
  Matrix x(50, 2);
  for (int i = 0; i < 50; ++i) {
    x.at(i, 0) = float(i);
    x.at(i, 1) = -float(i);
  }
  const Matrix a = cbtm::kmeans::init_random(x, 50, 3);  // k = n: a permutation
  std::set<float> rows;
  for (int j = 0; j < 50; ++j) {
    CHECK(a.at(j, 1) == -a.at(j, 0));
    rows.insert(a.at(j, 0));
  }
  CHECK(rows.size() == 50);
  CHECK(cbtm::kmeans::init_random(x, 7, 3).data == cbtm::kmeans::init_random(x, 7, 3).data);
  CHECK(cbtm::kmeans::init_random(x, 7, 3).data != cbtm::kmeans::init_random(x, 7, 4).data);
}

TEST_CASE("init: kmeans++ spreads the centres over separated groups", "[init]") {
  // 4 tight groups far apart: D^2 sampling picks one centre in each (the probability of
  // drawing a second point of an already covered group is ~1e-8 here).
  Matrix x(400, 2);
  std::mt19937 gen(1);
  std::normal_distribution<float> g(0.f, 0.01f);
  const float corner[4][2] = {{0, 0}, {100, 0}, {0, 100}, {100, 100}};
  for (int i = 0; i < 400; ++i) {
    x.at(i, 0) = corner[i % 4][0] + g(gen);
    x.at(i, 1) = corner[i % 4][1] + g(gen);
  }
  for (uint64_t seed : {0, 1, 2, 3}) {
    const Matrix c = cbtm::kmeans::init_kmeans_pp(x, 4, seed, 2);
    std::set<int> groups;
    for (int j = 0; j < 4; ++j)
      groups.insert(int(std::lround(c.at(j, 0) / 100)) * 2 + int(std::lround(c.at(j, 1) / 100)));
    CHECK(groups.size() == 4);
    CHECK(c.data == cbtm::kmeans::init_kmeans_pp(x, 4, seed, 1).data);
  }
  SECTION("duplicate points: still k distinct rows") {
    Matrix same(10, 3, 1.f);
    const Matrix c = cbtm::kmeans::init_kmeans_pp(same, 10, 0, 1);
    CHECK(c.rows == 10);
  }
  CHECK_THROWS(cbtm::kmeans::init_centers(x, 4, "farthest", 0, 1));
}
