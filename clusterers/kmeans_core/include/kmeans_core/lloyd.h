#pragma once
/// \file lloyd.h
/// Lloyd's algorithm (hard EM) on squared Euclidean distance, balanced or plain.
///
/// Each iteration: distances to the centres (distances.h); E-step = the balanced
/// assignment solved exactly by the auction (auction.h; every cluster gets floor(n/k) or
/// ceil(n/k) points) when `balanced`, else the nearest centre; M-step = centres become the
/// means of their points. Stops after `max_iters` iterations or when the relative centre
/// shift ||C_new - C_old||_F / ||C_old||_F falls below `tol`.
///
/// Plain k-means only: a cluster left empty by the E-step is re-seeded with the point
/// farthest from its assigned centre (distinct points for several empty clusters, taken
/// from clusters that keep at least one point), which is moved to it before the M-step.
///
/// Every iteration is logged (spdlog info): objective (sum of squared distances after the
/// E-step), shift, smallest/largest cluster, time.
#include <cstdint>
#include <string>
#include <vector>

#include "cbtm/matrix.h"
#include "kmeans_core/auction.h"

namespace cbtm::kmeans {

struct LloydOptions {
  int32_t k = 8;
  bool balanced = true;          ///< balanced (auction) or greedy E-step
  std::string init = "random";   ///< random | kmeans++ (init.h)
  int max_iters = 20;
  double tol = 1e-3;             ///< relative centre shift that ends the loop
  uint64_t seed = 0;
  int threads = 1;
  std::string label = "kmeans";  ///< prefix of the log lines
  Matrix initial;                ///< k x dim starting centres; empty: use `init`
  AuctionOptions auction;        ///< its `threads` is replaced by `threads`
};

struct LloydIteration {
  int iteration = 0;       ///< 1-based
  double objective = 0;    ///< sum of squared distances to the assigned centres (E-step)
  double shift = 0;        ///< relative centre shift of the following M-step
  int64_t min_size = 0, max_size = 0;
  double seconds = 0;
  AuctionStats auction;    ///< balanced only
};

struct LloydResult {
  Matrix centers;                  ///< k x dim, after the last M-step
  std::vector<int32_t> cluster;    ///< the last E-step's assignment
  std::vector<LloydIteration> history;
  bool converged = false;          ///< the shift fell below tol
};

/// Runs Lloyd's algorithm. Requires 1 <= k <= x.rows (std::invalid_argument otherwise; the
/// plugins check their input first, see checks.h). Deterministic for a given seed, whatever
/// the thread count.
LloydResult lloyd(const Matrix& x, const LloydOptions& options);

/// Plain k-means' empty-cluster rule: every empty cluster j (only those with
/// (*eligible)[j] != 0 when `eligible` is given) receives the point farthest from its
/// assigned centre (sqdist), taken from clusters that keep at least one point; several
/// empty clusters get distinct points, farthest first. Requires cluster.size() >= k.
void reseed_empty(std::vector<int32_t>& cluster, const std::vector<float>& sqdist, int32_t k,
                  const std::vector<char>* eligible = nullptr);

/// Means of the points of each cluster (k x dim, accumulated in double: fixed blocks of
/// points summed in point order, then the blocks in order, so the result does not depend on
/// `threads`); an empty cluster's row is left at 0. `sizes`, when given, receives the counts.
Matrix cluster_means(const Matrix& x, const std::vector<int32_t>& cluster, int32_t k,
                     std::vector<int64_t>* sizes = nullptr, int threads = 1);

}  // namespace cbtm::kmeans
