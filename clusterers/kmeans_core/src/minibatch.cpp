// Mini-batch k-means; see minibatch.h.
#include "kmeans_core/minibatch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <utility>

#include <spdlog/spdlog.h>

#include "kmeans_core/auction.h"
#include "kmeans_core/distances.h"
#include "kmeans_core/init.h"
#include "kmeans_core/rng.h"

namespace cbtm::kmeans {
namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ||a - b||_F / ||b||_F (or ||a - b||_F when b is 0).
double relative_shift(const Matrix& a, const Matrix& b) {
  double diff = 0, base = 0;
  for (size_t v = 0; v < a.data.size(); ++v) {
    const double d = static_cast<double>(a.data[v]) - b.data[v];
    diff += d * d;
    base += static_cast<double>(b.data[v]) * b.data[v];
  }
  return base > 0 ? std::sqrt(diff / base) : std::sqrt(diff);
}

void add_stats(AuctionStats& total, const AuctionStats& s) {
  total.phases += s.phases;
  total.bids += s.bids;
  total.rejected += s.rejected;
  total.rounds += s.rounds;
  total.seconds += s.seconds;
}

// The state of one fit: centres, running counts and the per-batch buffers.
class MiniBatch {
 public:
  MiniBatch(const Matrix& x, const MiniBatchOptions& o, Matrix centers)
      : x_(x), o_(o), k_(o.k), threads_(std::max(1, o.threads)), auction_(auction_options()),
        centers_(std::move(centers)), count_(static_cast<size_t>(k_), 0),
        sum_(static_cast<size_t>(k_) * x.cols, 0.0), batch_count_(static_cast<size_t>(k_), 0) {}

  // E-step and M-step on the rows idx[0..b); adds the batch's sizes to `sizes` and returns
  // its objective (squared distances to the centres before the update).
  double step(const int64_t* idx, int64_t b, std::vector<int64_t>& sizes, AuctionStats& stats) {
    const int64_t dim = x_.cols;
    batch_.rows = b;
    batch_.cols = dim;
    batch_.data.resize(static_cast<size_t>(b * dim));
    for (int64_t r = 0; r < b; ++r)
      std::memcpy(batch_.row(r), x_.row(idx[r]), sizeof(float) * static_cast<size_t>(dim));
    dist_.resize(static_cast<size_t>(b * k_));
    own_.resize(static_cast<size_t>(b));
    cluster_.resize(static_cast<size_t>(b));
    squared_distances(batch_, centers_, dist_.data(), threads_);
    if (o_.balanced) {
      BalancedAssignment a = auction_.solve(dist_.data(), b, k_);
      add_stats(stats, a.stats);
      cluster_ = std::move(a.cluster);
      for (int64_t i = 0; i < b; ++i) own_[i] = dist_[i * k_ + cluster_[i]];
    } else {
      row_argmin(dist_.data(), b, k_, cluster_.data(), own_.data(), threads_);
      // Centres that never received a point may take one (minibatch.h).
      never_.assign(static_cast<size_t>(k_), 0);
      bool any = false;
      for (int32_t j = 0; j < k_; ++j)
        if (count_[j] == 0) {
          never_[j] = 1;
          any = true;
        }
      if (any) reseed_empty(cluster_, own_, k_, &never_);
    }
    const double objective = std::accumulate(own_.begin(), own_.end(), 0.0);

    // M-step: c_j <- (N_j c_j + sum of the batch points in j) / (N_j + b_j).
    std::fill(sum_.begin(), sum_.end(), 0.0);
    std::fill(batch_count_.begin(), batch_count_.end(), 0);
    for (int64_t i = 0; i < b; ++i) {
      const int32_t j = cluster_[i];
      ++batch_count_[j];
      double* s = sum_.data() + static_cast<int64_t>(j) * dim;
      const float* r = batch_.row(i);
      for (int64_t d = 0; d < dim; ++d) s[d] += r[d];
    }
    for (int32_t j = 0; j < k_; ++j) {
      if (batch_count_[j] == 0) continue;
      const double before = static_cast<double>(count_[j]);
      const double after = before + static_cast<double>(batch_count_[j]);
      float* c = centers_.row(j);
      const double* s = sum_.data() + static_cast<int64_t>(j) * dim;
      for (int64_t d = 0; d < dim; ++d)
        c[d] = static_cast<float>((before * c[d] + s[d]) / after);
      count_[j] += batch_count_[j];
      sizes[j] += batch_count_[j];
    }
    return objective;
  }

  // Final E-step on all of x (see minibatch.h, step 5).
  double assign_all(std::vector<int32_t>& cluster) {
    const int64_t n = x_.rows;
    std::vector<float> dist(static_cast<size_t>(n * k_));
    std::vector<float> own(static_cast<size_t>(n));
    squared_distances(x_, centers_, dist.data(), threads_);
    if (o_.balanced) {
      cluster = auction_.solve(dist.data(), n, k_).cluster;
      for (int64_t i = 0; i < n; ++i) own[i] = dist[i * k_ + cluster[i]];
    } else {
      cluster.resize(static_cast<size_t>(n));
      row_argmin(dist.data(), n, k_, cluster.data(), own.data(), threads_);
    }
    return std::accumulate(own.begin(), own.end(), 0.0);
  }

  const Matrix& centers() const { return centers_; }
  Matrix take_centers() { return std::move(centers_); }

 private:
  AuctionOptions auction_options() const {
    AuctionOptions ao;
    ao.threads = threads_;
    ao.warm_start = false;  // consecutive batches hold different points
    return ao;
  }

  const Matrix& x_;
  const MiniBatchOptions& o_;
  const int32_t k_;
  const int threads_;
  BalancedAuction auction_;
  Matrix centers_;
  std::vector<int64_t> count_;        // running count per centre
  std::vector<double> sum_;           // per batch: k x dim sums
  std::vector<int64_t> batch_count_;  // per batch: points per centre
  Matrix batch_;
  std::vector<float> dist_, own_;
  std::vector<int32_t> cluster_;
  std::vector<char> never_;
};
}  // namespace

MiniBatchResult minibatch_kmeans(const Matrix& x, const MiniBatchOptions& o) {
  const int64_t n = x.rows;
  const int32_t k = o.k;
  if (k < 1 || n < k)
    throw std::invalid_argument("minibatch_kmeans: need 1 <= k <= number of points");
  if (o.batch_size < k) throw std::invalid_argument("minibatch_kmeans: need batch_size >= k");
  if (o.max_epochs < 1) throw std::invalid_argument("minibatch_kmeans: need max_epochs >= 1");
  if (!o.initial.empty() && (o.initial.rows != k || o.initial.cols != x.cols))
    throw std::invalid_argument("minibatch_kmeans: initial centres must be k x dim");
  const int threads = std::max(1, o.threads);
  const auto start = Clock::now();

  MiniBatch mb(x, o, o.initial.empty() ? init_centers(x, k, o.init, o.seed, threads) : o.initial);
  MiniBatchResult res;
  const int64_t nb = std::max<int64_t>(1, n / o.batch_size);
  res.batches_per_epoch = nb;
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(o.seed ^ 0xA0761D6478BD642FULL);  // a stream apart from the initialisation's

  for (int epoch = 1; epoch <= o.max_epochs; ++epoch) {
    const auto t0 = Clock::now();
    LloydIteration rec;
    rec.iteration = epoch;
    for (int64_t i = n - 1; i > 0; --i)  // Fisher-Yates, continuing from the last order
      std::swap(perm[i], perm[rng.below(static_cast<uint64_t>(i + 1))]);
    const Matrix before = mb.centers();
    std::vector<int64_t> sizes(static_cast<size_t>(k), 0);
    for (int64_t t = 0; t < nb; ++t) {
      const int64_t b0 = t * n / nb, b1 = (t + 1) * n / nb;
      rec.objective += mb.step(perm.data() + b0, b1 - b0, sizes, rec.auction);
    }
    rec.shift = relative_shift(mb.centers(), before);
    const auto [mn, mx] = std::minmax_element(sizes.begin(), sizes.end());
    rec.min_size = *mn;
    rec.max_size = *mx;
    rec.seconds = seconds_since(t0);
    res.history.push_back(rec);
    spdlog::info("{} mini-batch epoch {}/{}: {} batches of ~{}, running objective {:.6g}, "
                 "shift {:.3g}, sizes {}..{}, {:.3f}s{}",
                 o.label, epoch, o.max_epochs, nb, n / nb, rec.objective, rec.shift,
                 rec.min_size, rec.max_size, rec.seconds,
                 o.balanced ? fmt::format(" (auction {:.3f}s)", rec.auction.seconds) : "");
    if (rec.shift < o.tol) {
      res.converged = true;
      break;
    }
  }

  const auto t_final = Clock::now();
  res.objective = mb.assign_all(res.cluster);
  std::vector<int64_t> sizes(static_cast<size_t>(k), 0);
  for (int32_t j : res.cluster) ++sizes[j];
  const auto [mn, mx] = std::minmax_element(sizes.begin(), sizes.end());
  spdlog::info("{} mini-batch: {} epochs ({}), final {} assignment of {} points: objective "
               "{:.6g}, sizes {}..{} ({:.3f}s); {:.2f}s in all",
               o.label, res.history.size(), res.converged ? "converged" : "epoch limit",
               o.balanced ? "balanced" : "nearest-centre", n, res.objective, *mn, *mx,
               seconds_since(t_final), seconds_since(start));
  res.centers = mb.take_centers();
  return res;
}

}  // namespace cbtm::kmeans
