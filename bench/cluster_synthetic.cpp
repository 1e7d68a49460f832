// cluster_bench's synthetic part (see cluster_synthetic.h).
#include "cluster_synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "bench_util.h"
#include "cbtm/matrix.h"
#include "kmeans_core/auction.h"
#include "kmeans_core/distances.h"
#include "kmeans_core/init.h"
#include "kmeans_core/lloyd.h"

namespace cbtm::bench {
namespace {

using nlohmann::json;

/// Looks like L2-normalised tf-idf/SVD embeddings: 300 topics of Zipf-like weight, noise,
/// rows normalised to unit length.
cbtm::Matrix topic_embeddings(int64_t n, int64_t dim, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  const int topics = 300;
  std::vector<float> t(topics * dim);
  for (auto& v : t) v = g(gen);
  std::vector<double> w(topics);
  for (int i = 0; i < topics; ++i) w[i] = 1.0 / (1 + i);
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

/// Cold E-step and full fit on `x` with `threads` threads; prints one table row.
json synthetic_run(const cbtm::Matrix& x, int32_t k, int iters, int threads) {
  const int64_t n = x.rows;
  const cbtm::Matrix c = cbtm::kmeans::init_random(x, k, 0);
  std::vector<float> d(size_t(n) * k);
  auto t0 = Clock::now();
  cbtm::kmeans::squared_distances(x, c, d.data(), threads);
  const double t_dist = seconds_since(t0);

  cbtm::kmeans::AuctionOptions ao;
  ao.threads = threads;
  cbtm::kmeans::BalancedAuction auction(ao);
  t0 = Clock::now();
  const auto a = auction.solve(d.data(), n, k);
  const double t_auction = seconds_since(t0);
  // Cluster sizes counted from the assignment itself (not from a.sizes).
  std::vector<int64_t> sizes(size_t(k), 0);
  for (int32_t j : a.cluster) ++sizes.at(size_t(j));
  const auto [smin, smax] = std::minmax_element(sizes.begin(), sizes.end());

  cbtm::kmeans::LloydOptions lo;
  lo.k = k;
  lo.threads = threads;
  lo.max_iters = iters;
  lo.tol = 0;  // every iteration
  t0 = Clock::now();
  const auto r = cbtm::kmeans::lloyd(x, lo);
  const double t_fit = seconds_since(t0);
  double fit_auction = 0;
  for (const auto& it : r.history) fit_auction += it.auction.seconds;

  std::printf("%7d %9.3f %9.3f %9.3f %10lld %9lld %7lld %6d %6lld %6lld %9.3f %10.3f %12.6g "
              "%12.6g\n",
              threads, t_dist + t_auction, t_dist, t_auction, (long long)a.stats.bids,
              (long long)a.stats.rejected, (long long)a.stats.rounds, a.stats.phases,
              (long long)*smin, (long long)*smax, t_fit, fit_auction, r.history.front().objective,
              r.history.back().objective);
  std::fflush(stdout);
  return {{"threads", threads},
          {"estep_seconds", t_dist + t_auction},
          {"distances_seconds", t_dist},
          {"auction_seconds", t_auction},
          {"auction_bids", a.stats.bids},
          {"auction_rejected", a.stats.rejected},
          {"auction_rounds", a.stats.rounds},
          {"auction_phases", a.stats.phases},
          {"auction_cost", a.cost},
          {"auction_gap_bound", a.max_gap},
          {"size_min", *smin},
          {"size_max", *smax},
          {"fit_iterations", r.history.size()},
          {"fit_seconds", t_fit},
          {"fit_auction_seconds", fit_auction},
          {"objective_first", r.history.front().objective},
          {"objective_last", r.history.back().objective}};
}

}  // namespace

json synthetic_auction(int64_t n, int64_t dim, int32_t auction_k, int iters, int threads) {
  json out;
  std::printf("\n2. balanced auction, synthetic: n %lld, dim %lld, k %d; E-step = distances + "
              "cold auction; fit = %d iterations (tol 0)\n",
              (long long)n, (long long)dim, auction_k, iters);
  std::printf("%7s %9s %9s %9s %10s %9s %7s %6s %6s %6s %9s %10s %12s %12s\n", "threads",
              "E-step s", "dist s", "auction s", "bids", "rejected", "rounds", "phases",
              "min", "max", "fit s", "fit auct s", "objective 1", "objective N");
  {
    const cbtm::Matrix x = topic_embeddings(n, dim, 1);
    json runs = json::array();
    std::vector<int> thread_counts = {1};
    if (threads != 1) thread_counts.push_back(threads);
    for (int t : thread_counts) runs.push_back(synthetic_run(x, auction_k, iters, t));
    const json& last = runs.back();
    out["synthetic"] = {{"n", n}, {"dim", dim}, {"k", auction_k}, {"runs", runs}};
    out["auction_50k_128_s"] = last["estep_seconds"];
    out["balance_spread"] =
        last["size_max"].get<int64_t>() - last["size_min"].get<int64_t>();
    std::printf("auction_50k_128_s %.3f (reference auction: ~139 s, %.0fx), balance_spread "
                "%lld\n",
                last["estep_seconds"].get<double>(),
                139.0 / last["estep_seconds"].get<double>(),
                (long long)out["balance_spread"].get<int64_t>());
  }
  return out;
}

}  // namespace cbtm::bench
