// cluster_bench: balanced k-means timings at the size the reference implementation needs
// 139 s for (n = 50,000 points, k = 128, dim = 100).
//
// 1. Synthetic topic-like embeddings (unit rows around 300 Zipf-weighted topics), on 1
//    thread and on --threads threads: one cold E-step (distances + balanced auction, with the
//    auction's statistics) and a full 20-iteration fit (tol 0).
// 2. tf-idf embeddings (tfidf embedder, dims --dim) of --docs devpile documents (every 6th
//    of the first 6 x docs: all domains): embedder fit and embed time, then the
//    balanced_kmeans clusterer's 20-iteration fit on --threads threads (--docs 0 skips this).
//
//   build/bin/cluster_bench [--devpile PATH] [--threads N] [--n 50000] [--k 128] [--json OUT]
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "cbtm/matrix.h"
#include "cbtm/runtime.h"
#include "kmeans_core/auction.h"
#include "kmeans_core/distances.h"
#include "kmeans_core/init.h"
#include "kmeans_core/lloyd.h"
#include "kmeans_core/lloyd_clusterer.h"
#include "tfidf_embedder.h"

namespace bench = cbtm::bench;

namespace {

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
nlohmann::json synthetic_run(const cbtm::Matrix& x, int32_t k, int iters, int threads) {
  const int64_t n = x.rows;
  const cbtm::Matrix c = cbtm::kmeans::init_random(x, k, 0);
  std::vector<float> d(size_t(n) * k);
  auto t0 = bench::Clock::now();
  cbtm::kmeans::squared_distances(x, c, d.data(), threads);
  const double t_dist = bench::seconds_since(t0);

  cbtm::kmeans::AuctionOptions ao;
  ao.threads = threads;
  cbtm::kmeans::BalancedAuction auction(ao);
  t0 = bench::Clock::now();
  const auto a = auction.solve(d.data(), n, k);
  const double t_auction = bench::seconds_since(t0);

  cbtm::kmeans::LloydOptions lo;
  lo.k = k;
  lo.threads = threads;
  lo.max_iters = iters;
  lo.tol = 0;  // every iteration
  t0 = bench::Clock::now();
  const auto r = cbtm::kmeans::lloyd(x, lo);
  const double t_fit = bench::seconds_since(t0);
  double fit_auction = 0;
  for (const auto& it : r.history) fit_auction += it.auction.seconds;

  std::printf("%7d %9.3f %9.3f %9.3f %10lld %9lld %7lld %6d %9.3f %10.3f %12.6g %12.6g\n",
              threads, t_dist + t_auction, t_dist, t_auction, (long long)a.stats.bids,
              (long long)a.stats.rejected, (long long)a.stats.rounds, a.stats.phases, t_fit,
              fit_auction, r.history.front().objective, r.history.back().objective);
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
          {"fit_iterations", r.history.size()},
          {"fit_seconds", t_fit},
          {"fit_auction_seconds", fit_auction},
          {"objective_first", r.history.front().objective},
          {"objective_last", r.history.back().objective}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"balanced k-means: E-step and fit timings, synthetic and on devpile tf-idf"};
  bench::CommonFlags flags;
  bench::add_common_flags(app, flags, true);
  int64_t n = 50000, dim = 100, docs = 50000;
  int32_t k = 128;
  int iters = 20;
  app.add_option("--n", n, "synthetic points")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--dim", dim, "embedding size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--k", k, "clusters")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--iters", iters, "Lloyd iterations per fit")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--docs", docs, "devpile documents to embed and cluster (0: skip)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  return bench::run_main(app, argc, argv, flags, [&] {
    // Check the input before the long synthetic part.
    if (docs > 0 && !std::filesystem::is_regular_file(flags.devpile))
      throw bench::MissingInput("devpile not found at '" + flags.devpile +
                                "' (pass --devpile PATH, or --docs 0)");
    const int threads = cbtm::runtime().resolved_threads();
    nlohmann::json figures = {{"benchmark", "balanced_kmeans"},
                              {"machine", bench::machine_state()},
                              {"k", k},
                              {"iterations", iters}};

    std::printf("synthetic: n %lld, dim %lld, k %d; E-step = distances + cold auction; fit = "
                "%d iterations (tol 0)\n",
                (long long)n, (long long)dim, k, iters);
    std::printf("%7s %9s %9s %9s %10s %9s %7s %6s %9s %10s %12s %12s\n", "threads", "E-step s",
                "dist s", "auction s", "bids", "rejected", "rounds", "phases", "fit s",
                "fit auct s", "objective 1", "objective N");
    const cbtm::Matrix x = topic_embeddings(n, dim, 1);
    figures["synthetic"] = {{"n", n}, {"dim", dim}, {"runs", nlohmann::json::array()}};
    std::vector<int> thread_counts = {1};
    if (threads != 1) thread_counts.push_back(threads);
    for (int t : thread_counts)
      figures["synthetic"]["runs"].push_back(synthetic_run(x, k, iters, t));

    if (docs > 0) {
      // Every 6th of the first 6 x docs documents (devpile is grouped by domain).
      std::vector<std::string> texts;
      {
        const auto all = bench::read_devpile(flags.devpile, 6 * docs);
        for (size_t i = 0; i < all.size(); i += 6) texts.push_back(all[i].text);
      }
      cbtm::tfidf::TfidfOptions eo;
      eo.dims = static_cast<int>(dim);
      cbtm::tfidf::TfidfEmbedder emb(eo);
      auto t0 = bench::Clock::now();
      emb.fit(texts);
      const double t_fit = bench::seconds_since(t0);
      t0 = bench::Clock::now();
      const cbtm::Matrix y = emb.embed(texts);
      const double t_embed = bench::seconds_since(t0);

      cbtm::kmeans::KMeansOptions ko;
      ko.k = k;
      ko.max_iters = iters;
      ko.tol = 0;
      cbtm::kmeans::BalancedKMeans cl(ko);
      t0 = bench::Clock::now();
      cl.fit(y);
      const double t_cluster = bench::seconds_since(t0);
      const auto& h = cl.last_fit().history;
      std::printf("\ndevpile tf-idf (%d threads): %lld docs x %lld dims | embedder fit %.2f s, "
                  "embed %.2f s | balanced_kmeans k=%d fit (%zu iterations) %.3f s, objective "
                  "%.6g -> %.6g\n",
                  threads, (long long)y.rows, (long long)y.cols, t_fit, t_embed, k, h.size(),
                  t_cluster, h.front().objective, h.back().objective);
      figures["devpile_tfidf"] = {{"docs", y.rows},
                                  {"dims", y.cols},
                                  {"threads", threads},
                                  {"embedder_fit_seconds", t_fit},
                                  {"embed_seconds", t_embed},
                                  {"fit_iterations", h.size()},
                                  {"fit_seconds", t_cluster},
                                  {"objective_first", h.front().objective},
                                  {"objective_last", h.back().objective}};
    }
    bench::write_json(flags.json, figures);
    return 0;
  });
}
