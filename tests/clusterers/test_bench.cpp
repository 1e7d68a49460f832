// Timings of the balanced E-step and of a full balanced k-means fit at the size that the
// reference implementation needs 139 s for (n = 50,000 points, k = 128, dim = 100), on
// synthetic topic-like embeddings and on tf-idf embeddings of devpile documents.
// Hidden ([.bench]); run with: build/tests/test_clusterers "[.bench]" -s
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cbtm/clusterer.h"
#include "cbtm/config_node.h"
#include "cbtm/embedder.h"
#include "cbtm/runtime.h"
#include "kmeans_core/auction.h"
#include "kmeans_core/distances.h"
#include "kmeans_core/init.h"
#include "kmeans_core/lloyd.h"
#include "support/test_support.h"

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Looks like L2-normalised tf-idf/SVD embeddings: 300 topics of unequal weight, noise,
// rows normalised to unit length.
cbtm::Matrix topic_embeddings(int64_t n, int64_t dim, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  const int topics = 300;
  std::vector<float> t(topics * dim);
  for (auto& v : t) v = g(gen);
  std::vector<double> w(topics);
  for (int i = 0; i < topics; ++i) w[i] = 1.0 / (1 + i);  // Zipf-like topic sizes
  std::discrete_distribution<int> pick(w.begin(), w.end());
  cbtm::Matrix x(n, dim);
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

TEST_CASE("bench: balanced E-step and fit - n=50000 k=128 dim=100", "[.bench]") {
  const int64_t n = 50000, dim = 100;
  const int32_t k = 128;
  const cbtm::Matrix x = topic_embeddings(n, dim, 1);
  const cbtm::Matrix c = cbtm::kmeans::init_random(x, k, 0);
  for (int threads : {1, cbtm::runtime().resolved_threads()}) {
    std::vector<float> d(n * k);
    auto t0 = Clock::now();
    cbtm::kmeans::squared_distances(x, c, d.data(), threads);
    const double t_dist = since(t0);

    cbtm::kmeans::AuctionOptions o;
    o.threads = threads;
    cbtm::kmeans::BalancedAuction auction(o);
    t0 = Clock::now();
    const auto a = auction.solve(d.data(), n, k);
    const double t_auction = since(t0);
    std::printf("threads %d: E-step %.3f s = distances %.3f s + cold auction %.3f s (%lld bids, "
                "%lld rejected, %lld Jacobi rounds, %d phases), cost %.8g, gap bound %.3g\n",
                threads, t_dist + t_auction, t_dist, t_auction, (long long)a.stats.bids,
                (long long)a.stats.rejected, (long long)a.stats.rounds, a.stats.phases, a.cost,
                a.max_gap);
    CHECK(a.sizes.size() == size_t(k));

    cbtm::kmeans::LloydOptions lo;
    lo.k = k;
    lo.threads = threads;
    lo.max_iters = 20;
    lo.tol = 0;  // all 20 iterations
    t0 = Clock::now();
    const auto r = cbtm::kmeans::lloyd(x, lo);
    const double t_fit = since(t0);
    double auction_s = 0;
    for (const auto& it : r.history) auction_s += it.auction.seconds;
    std::printf("threads %d: full fit %zu iterations in %.3f s (auction %.3f s), objective %.6g "
                "-> %.6g\n",
                threads, r.history.size(), t_fit, auction_s, r.history.front().objective,
                r.history.back().objective);
  }
}

TEST_CASE("bench: balanced k-means on tf-idf embeddings of 50 -000 devpile documents",
          "[.bench]") {
  if (!cbtm::test::have_devpile() ||
      !cbtm::test::plugins().registry().has("embedder", "tfidf")) {
    WARN("devpile or the tfidf embedder absent: skipped");
    return;
  }
  // Every 6th of the first 300,000 documents: all domains.
  std::vector<std::string> texts;
  {
    const auto docs = cbtm::test::devpile_docs(300000);
    for (size_t i = 0; i < docs.size(); i += 6) texts.push_back(docs[i].text);
  }
  auto emb = cbtm::test::plugins().registry().create<cbtm::Embedder>(
      cbtm::ConfigNode{YAML::Load("{type: tfidf, dims: 100}"), "embedder", ""});
  auto t0 = Clock::now();
  emb->fit(texts);
  const cbtm::Matrix x = emb->embed(texts);
  std::printf("tfidf: %lld docs embedded in %.1f s\n", (long long)x.rows, since(t0));
  auto cl = cbtm::test::plugins().registry().create<cbtm::Clusterer>(cbtm::ConfigNode{
      YAML::Load("{type: balanced_kmeans, k: 128, max_iters: 20, tol: 0}"), "clusterer", ""});
  t0 = Clock::now();
  cl->fit(x);
  std::printf("balanced_kmeans k=128 on %lld x %lld: fit (20 iterations) %.3f s\n",
              (long long)x.rows, (long long)x.cols, since(t0));
}
