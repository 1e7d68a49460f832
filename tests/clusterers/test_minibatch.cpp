// Mini-batch k-means (balanced and plain): recovery of known partitions, the running-count
// M-step against independent means, balance of the final assignment, determinism, and the
// objective compared with full-batch Lloyd.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "support/catch.h"

#include "blobs.h"
#include "kmeans_core/auction.h"
#include "kmeans_core/distances.h"
#include "kmeans_core/lloyd.h"
#include "kmeans_core/minibatch.h"

using cbtm::Matrix;
using cbtm::kmeans::MiniBatchOptions;
using cbtm::kmeans::MiniBatchResult;
using cbtm::test::make_blobs;
using cbtm::test::purity;

namespace {
std::vector<int64_t> sizes_of(const std::vector<int32_t>& a, int32_t k) {
  std::vector<int64_t> s(k, 0);
  for (int32_t j : a) ++s[j];
  return s;
}
MiniBatchOptions options(int32_t k, bool balanced, int64_t batch, uint64_t seed = 0) {
  MiniBatchOptions o;
  o.k = k;
  o.balanced = balanced;
  o.init = "kmeans++";
  o.batch_size = batch;
  o.seed = seed;
  o.threads = 2;
  o.max_epochs = 20;
  o.tol = 1e-4;
  return o;
}
// Sum of squared distances (double, direct) of each row to its assigned centre.
double objective(const Matrix& x, const Matrix& c, const std::vector<int32_t>& a) {
  double s = 0;
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t d = 0; d < x.cols; ++d) {
      const double t = double(x.at(i, d)) - c.at(a[i], d);
      s += t * t;
    }
  return s;
}
// Unit rows around Zipf-weighted topics (like L2-normalised tf-idf/SVD embeddings).
Matrix topic_embeddings(int64_t n, int64_t dim, int topics, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> t(size_t(topics) * dim);
  for (auto& v : t) v = g(gen);
  std::vector<double> w(topics);
  for (int i = 0; i < topics; ++i) w[i] = 1.0 / (1 + i);
  std::discrete_distribution<int> pick(w.begin(), w.end());
  Matrix x(n, dim);
  for (int64_t i = 0; i < n; ++i) {
    const int a = pick(gen);
    double s = 0;
    for (int64_t d = 0; d < dim; ++d) {
      x.at(i, d) = t[a * dim + d] + 1.5f * g(gen);
      s += double(x.at(i, d)) * x.at(i, d);
    }
    for (int64_t d = 0; d < dim; ++d) x.at(i, d) = float(x.at(i, d) / std::sqrt(s));
  }
  return x;
}
}  // namespace

TEST_CASE("minibatch: balanced mini-batch recovers equal well separated blobs",
          "[minibatch]") {
  const auto b = make_blobs({400, 400, 400, 400, 400}, 8, 10.f, 0.5f, 31);
  // The per-batch balanced E-step keeps moving the centres a little (a random batch is
  // rarely split evenly between the blobs), less every epoch: tol 1e-3 is reached.
  MiniBatchOptions o = options(5, true, 256);
  o.tol = 1e-3;
  const MiniBatchResult r = cbtm::kmeans::minibatch_kmeans(b.x, o);
  CHECK(r.batches_per_epoch == 7);  // 2000 / 256
  CHECK(purity(r.cluster, b.label, 5, 5) == 1.0);
  CHECK(sizes_of(r.cluster, 5) == std::vector<int64_t>(5, 400));
  CHECK(r.converged);
  CHECK(r.objective == Approx(objective(b.x, r.centers, r.cluster)).epsilon(1e-4));
  // Every epoch hands each cluster between the sums of its per-batch floor and ceil shares.
  for (const auto& e : r.history) {
    CHECK(e.min_size >= 7 * (2000 / 7 / 5));
    CHECK(e.max_size <= 7 * (2000 / 7 / 5 + 1));
    CHECK(e.auction.bids > 0);
  }
}

TEST_CASE("minibatch: plain mini-batch recovers unequal blobs", "[minibatch]") {
  const auto b = make_blobs({800, 200, 80}, 5, 10.f, 0.3f, 32);
  const MiniBatchResult r = cbtm::kmeans::minibatch_kmeans(b.x, options(3, false, 100));
  CHECK(purity(r.cluster, b.label, 3, 3) == 1.0);
  auto s = sizes_of(r.cluster, 3);
  std::sort(s.begin(), s.end());
  CHECK(s == std::vector<int64_t>{80, 200, 800});
}

TEST_CASE("minibatch: final balanced assignment has floor/ceil sizes", "[minibatch]") {
  const auto b = make_blobs({300, 200, 503}, 4, 3.f, 1.f, 33);  // n = 1003
  for (int64_t batch : {8, 100, 1003, 5000}) {
    INFO("batch " << batch);
    MiniBatchOptions o = options(8, true, batch);
    o.init = "random";
    o.max_epochs = 3;
    const MiniBatchResult r = cbtm::kmeans::minibatch_kmeans(b.x, o);
    auto s = sizes_of(r.cluster, 8);
    std::sort(s.begin(), s.end());
    CHECK(s == std::vector<int64_t>{125, 125, 125, 125, 125, 126, 126, 126});
    CHECK(r.batches_per_epoch == std::max<int64_t>(1, 1003 / batch));
  }
}

TEST_CASE("minibatch: k = 1 keeps the running mean of all points seen", "[minibatch]") {
  // With learning rate 1 / count the single centre is the mean of every point it has
  // received: after whole epochs, exactly the mean of x.
  const auto b = make_blobs({97, 60}, 3, 4.f, 1.f, 34);
  std::vector<double> mean(3, 0);
  for (int64_t i = 0; i < b.x.rows; ++i)
    for (int d = 0; d < 3; ++d) mean[d] += b.x.at(i, d) / double(b.x.rows);
  for (bool balanced : {true, false}) {
    MiniBatchOptions o = options(1, balanced, 10);
    o.tol = 0;
    o.max_epochs = 3;
    const MiniBatchResult r = cbtm::kmeans::minibatch_kmeans(b.x, o);
    CHECK(r.history.size() == 3);
    for (int d = 0; d < 3; ++d) CHECK(r.centers.at(0, d) == Approx(mean[d]).epsilon(1e-5));
  }
}

TEST_CASE("minibatch: one epoch on separated blobs ends at the blob means", "[minibatch]") {
  // Plain E-step, each centre started on a point of its blob: every batch sends each point
  // to its blob's centre, so after one epoch each centre is the mean of its whole blob.
  const auto b = make_blobs({120, 90}, 4, 20.f, 0.5f, 35);
  MiniBatchOptions o = options(2, false, 16);
  o.max_epochs = 1;
  o.initial = Matrix(2, 4);
  for (int j = 0; j < 2; ++j) {
    const int64_t i = std::find(b.label.begin(), b.label.end(), j) - b.label.begin();
    std::copy(b.x.row(i), b.x.row(i) + 4, o.initial.row(j));
  }
  const MiniBatchResult r = cbtm::kmeans::minibatch_kmeans(b.x, o);
  CHECK(r.cluster == b.label);
  for (int j = 0; j < 2; ++j)
    for (int d = 0; d < 4; ++d) {
      double s = 0;
      int n = 0;
      for (int64_t i = 0; i < b.x.rows; ++i)
        if (b.label[i] == j) {
          s += b.x.at(i, d);
          ++n;
        }
      CHECK(r.centers.at(j, d) == Approx(s / n).epsilon(1e-5));
    }
}

TEST_CASE("minibatch: one batch of all points is one Lloyd iteration", "[minibatch]") {
  const auto b = make_blobs({100, 80, 60, 90}, 6, 2.f, 1.f, 36);
  cbtm::kmeans::LloydOptions lo;
  lo.k = 4;
  lo.balanced = false;
  lo.seed = 3;
  lo.threads = 2;
  lo.max_iters = 1;
  const auto full = cbtm::kmeans::lloyd(b.x, lo);
  MiniBatchOptions o = options(4, false, b.x.rows, 3);
  o.init = "random";
  o.max_epochs = 1;
  const MiniBatchResult r = cbtm::kmeans::minibatch_kmeans(b.x, o);
  CHECK(r.batches_per_epoch == 1);
  CHECK(r.history[0].objective == Approx(full.history[0].objective).epsilon(1e-5));
  for (size_t v = 0; v < r.centers.data.size(); ++v)
    CHECK(r.centers.data[v] == Approx(full.centers.data[v]).epsilon(1e-5).margin(1e-5));
}

TEST_CASE("minibatch: same seed gives identical centres - any thread count", "[minibatch]") {
  const auto b = make_blobs({300, 250, 200, 270}, 6, 2.f, 1.f, 37);
  for (bool balanced : {true, false}) {
    INFO("balanced " << balanced);
    MiniBatchOptions o = options(6, balanced, 128, 7);
    o.max_epochs = 5;
    o.tol = 0;
    const MiniBatchResult a = cbtm::kmeans::minibatch_kmeans(b.x, o);
    o.threads = 1;
    const MiniBatchResult c = cbtm::kmeans::minibatch_kmeans(b.x, o);
    CHECK(a.centers.data == c.centers.data);
    CHECK(a.cluster == c.cluster);
    CHECK(a.objective == c.objective);
    o.seed = 8;
    const MiniBatchResult d = cbtm::kmeans::minibatch_kmeans(b.x, o);
    CHECK(d.centers.data != a.centers.data);
  }
}

TEST_CASE("minibatch: identical points still give k clusters", "[minibatch]") {
  const Matrix x(64, 3, 0.5f);
  for (bool balanced : {true, false}) {
    const MiniBatchResult r = cbtm::kmeans::minibatch_kmeans(x, options(4, balanced, 16));
    if (balanced) CHECK(sizes_of(r.cluster, 4) == std::vector<int64_t>(4, 16));
    // Plain: the centres that never got a point were re-seeded with a point of the batch,
    // so every cluster received points in the first epoch (the final nearest-centre
    // assignment then sends all the tied points to centre 0).
    if (!balanced) CHECK(r.history[0].min_size >= 1);
    CHECK(r.objective == Approx(0).margin(1e-6));
  }
}

TEST_CASE("minibatch: objective within a few percent of full-batch Lloyd", "[minibatch]") {
  // Topic-like unit embeddings (as tf-idf/SVD gives): n = 8000, dim 32, k = 16, batches of
  // 512 (15 per epoch). Both objectives are of the final balanced (resp. nearest)
  // assignment of all points to the final centres.
  const Matrix x = topic_embeddings(8000, 32, 60, 38);
  for (bool balanced : {true, false}) {
    INFO("balanced " << balanced);
    cbtm::kmeans::LloydOptions lo;
    lo.k = 16;
    lo.balanced = balanced;
    lo.threads = 2;
    lo.max_iters = 20;
    lo.tol = 1e-4;
    lo.seed = 1;
    const auto full = cbtm::kmeans::lloyd(x, lo);
    std::vector<float> dist(size_t(x.rows) * 16);
    cbtm::kmeans::squared_distances(x, full.centers, dist.data(), 2);
    std::vector<int32_t> a(x.rows);
    if (balanced) {
      a = cbtm::kmeans::BalancedAuction().solve(dist.data(), x.rows, 16).cluster;
    } else {
      std::vector<float> best(x.rows);
      cbtm::kmeans::row_argmin(dist.data(), x.rows, 16, a.data(), best.data(), 2);
    }
    const double full_obj = objective(x, full.centers, a);

    MiniBatchOptions o = options(16, balanced, 512, 1);
    o.init = "random";
    const MiniBatchResult r = cbtm::kmeans::minibatch_kmeans(x, o);
    const double mb_obj = objective(x, r.centers, r.cluster);
    INFO("full " << full_obj << " mini-batch " << mb_obj << " epochs " << r.history.size());
    CHECK(mb_obj == Approx(r.objective).epsilon(1e-4));
    CHECK(mb_obj <= 1.03 * full_obj);
    CHECK(mb_obj >= 0.97 * full_obj);
  }
}

TEST_CASE("minibatch: input errors", "[minibatch]") {
  const auto b = make_blobs({10, 10}, 2, 1.f, 1.f, 39);
  using cbtm::kmeans::minibatch_kmeans;
  CHECK_THROWS_AS(minibatch_kmeans(b.x, options(4, true, 3)), std::invalid_argument);   // batch < k
  CHECK_THROWS_AS(minibatch_kmeans(b.x, options(21, true, 30)), std::invalid_argument);  // k > n
  MiniBatchOptions o = options(2, true, 5);
  o.initial = Matrix(3, 2);
  CHECK_THROWS_AS(cbtm::kmeans::minibatch_kmeans(b.x, o), std::invalid_argument);
}
