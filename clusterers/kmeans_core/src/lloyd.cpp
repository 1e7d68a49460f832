// Lloyd's algorithm; see lloyd.h.
#include "kmeans_core/lloyd.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "kmeans_core/distances.h"
#include "kmeans_core/init.h"

namespace cbtm::kmeans {

Matrix cluster_means(const Matrix& x, const std::vector<int32_t>& cluster, int32_t k,
                     std::vector<int64_t>* sizes, int threads) {
  const int64_t dim = x.cols;
  std::vector<int64_t> count(static_cast<size_t>(k), 0);
  for (int64_t i = 0; i < x.rows; ++i) ++count[cluster[i]];
  // Fixed blocks of points (whatever the thread count) are summed in double, in point
  // order, each into its own k x dim partial sum; the partial sums are then added in block
  // order. Every entry is the same sum on any number of threads.
  constexpr int64_t kBlock = 8192;
  const int64_t blocks = std::max<int64_t>(1, (x.rows + kBlock - 1) / kBlock);
  std::vector<double> part(static_cast<size_t>(blocks * k * dim), 0.0);
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic, 1) \
    if (blocks > 1 && threads > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    double* base = part.data() + b * k * dim;
    const int64_t i1 = std::min(x.rows, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < i1; ++i) {
      double* s = base + static_cast<int64_t>(cluster[i]) * dim;
      const float* r = x.row(i);
      for (int64_t d = 0; d < dim; ++d) s[d] += r[d];
    }
  }
  for (int64_t b = 1; b < blocks; ++b) {
    const double* src = part.data() + b * k * dim;
    for (int64_t v = 0; v < k * dim; ++v) part[v] += src[v];
  }
  Matrix c(k, dim);
  for (int32_t j = 0; j < k; ++j)
    if (count[j] > 0)
      for (int64_t d = 0; d < dim; ++d)
        c.at(j, d) = static_cast<float>(part[static_cast<int64_t>(j) * dim + d] / count[j]);
  if (sizes) *sizes = std::move(count);
  return c;
}

void reseed_empty(std::vector<int32_t>& cluster, const std::vector<float>& sqdist, int32_t k,
                  const std::vector<char>* eligible) {
  std::vector<int64_t> size(static_cast<size_t>(k), 0);
  for (int32_t j : cluster) ++size[j];
  auto wanted = [&](int32_t j) { return size[j] == 0 && (!eligible || (*eligible)[j]); };
  bool any = false;
  for (int32_t j = 0; j < k; ++j) any = any || wanted(j);
  if (!any) return;
  std::vector<int64_t> order(cluster.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return sqdist[a] > sqdist[b]; });
  size_t next = 0;
  for (int32_t j = 0; j < k; ++j) {
    if (!wanted(j)) continue;
    while (size[cluster[order[next]]] < 2) ++next;  // n >= k: a donor always exists
    const int64_t i = order[next++];
    --size[cluster[i]];
    cluster[i] = j;
    size[j] = 1;
    spdlog::debug("k-means: cluster {} was empty, re-seeded with point {}", j, i);
  }
}

namespace {
double frob(const Matrix& m) {
  double s = 0;
  for (float v : m.data) s += static_cast<double>(v) * v;
  return std::sqrt(s);
}
}  // namespace

LloydResult lloyd(const Matrix& x, const LloydOptions& o) {
  const int64_t n = x.rows;
  const int32_t k = o.k;
  if (k < 1 || n < k) throw std::invalid_argument("lloyd: need 1 <= k <= number of points");
  const int threads = std::max(1, o.threads);
  AuctionOptions ao = o.auction;
  ao.threads = threads;
  BalancedAuction auction(ao);

  LloydResult res;
  if (!o.initial.empty() && (o.initial.rows != k || o.initial.cols != x.cols))
    throw std::invalid_argument("lloyd: initial centres must be k x dim");
  res.centers = o.initial.empty() ? init_centers(x, k, o.init, o.seed, threads) : o.initial;
  const std::vector<float> xn = row_sqnorms(x, threads);  // the same every iteration
  std::vector<float> dist(static_cast<size_t>(n * k));
  std::vector<float> own(static_cast<size_t>(n));
  res.cluster.assign(static_cast<size_t>(n), 0);

  for (int it = 1; it <= o.max_iters; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    LloydIteration rec;
    rec.iteration = it;
    squared_distances(x, xn, res.centers, dist.data(), threads);
    if (o.balanced) {
      BalancedAssignment a = auction.solve(dist.data(), n, k);
      res.cluster = std::move(a.cluster);
      rec.auction = a.stats;
      for (int64_t i = 0; i < n; ++i) own[i] = dist[i * k + res.cluster[i]];
    } else {
      row_argmin(dist.data(), n, k, res.cluster.data(), own.data(), threads);
    }
    rec.objective = std::accumulate(own.begin(), own.end(), 0.0);
    if (!o.balanced) reseed_empty(res.cluster, own, k);

    std::vector<int64_t> sizes;
    Matrix next = cluster_means(x, res.cluster, k, &sizes, threads);
    const auto [mn, mx] = std::minmax_element(sizes.begin(), sizes.end());
    rec.min_size = *mn;
    rec.max_size = *mx;
    double diff = 0;
    for (size_t v = 0; v < next.data.size(); ++v) {
      const double d = static_cast<double>(next.data[v]) - res.centers.data[v];
      diff += d * d;
    }
    const double base = frob(res.centers);
    rec.shift = base > 0 ? std::sqrt(diff) / base : std::sqrt(diff);
    res.centers = std::move(next);
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.history.push_back(rec);
    // Per-iteration detail at debug level; a summary line at info when the fit ends.
    if (o.balanced)
      spdlog::debug("{} iteration {}/{}: objective {:.6g}, shift {:.3g}, sizes {}..{}, {:.3f}s "
                   "(auction {:.3f}s, {} bids, {} phases)",
                   o.label, it, o.max_iters, rec.objective, rec.shift, rec.min_size,
                   rec.max_size, rec.seconds, rec.auction.seconds, rec.auction.bids,
                   rec.auction.phases);
    else
      spdlog::debug("{} iteration {}/{}: objective {:.6g}, shift {:.3g}, sizes {}..{}, {:.3f}s",
                   o.label, it, o.max_iters, rec.objective, rec.shift, rec.min_size,
                   rec.max_size, rec.seconds);
    if (rec.shift < o.tol) {
      res.converged = true;
      break;
    }
  }
  if (!res.history.empty()) {
    const auto& first = res.history.front();
    const auto& last = res.history.back();
    double secs = 0;
    for (const auto& h : res.history) secs += h.seconds;
    spdlog::info("{}: {} iterations ({}), objective {:.6g} -> {:.6g}, sizes {}..{}, {:.2f}s", o.label,
                 res.history.size(), res.converged ? "converged" : "iteration limit", first.objective,
                 last.objective, last.min_size, last.max_size, secs);
  }
  return res;
}

}  // namespace cbtm::kmeans
