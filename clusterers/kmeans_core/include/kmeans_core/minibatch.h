#pragma once
/// \file minibatch.h
/// Mini-batch (online) k-means, balanced or plain, for shards much larger than one batch
/// (the `batch_size` option of balanced_kmeans / kmeans).
///
/// Algorithm (one "epoch" = one pass over the data):
///   1. Initial centres as in lloyd() (init.h on the whole of x, same seed => same start).
///   2. Every epoch draws a fresh seeded permutation of the rows and cuts it into
///      nb = max(1, n / batch_size) consecutive batches of floor(n/nb) or ceil(n/nb) rows
///      (so every batch has at least batch_size rows, and at least k).
///   3. Per batch: E-step on the batch alone, with the current centres: the exact balanced
///      assignment of the batch (auction.h; each cluster gets floor(b/k) or ceil(b/k) of the
///      b batch points) when `balanced`, else the nearest centre. M-step, as sklearn's
///      MiniBatchKMeans: every centre keeps a running count N_j of the points it has been
///      given since the start; a batch giving it b_j points with mean m_j moves it to
///      (N_j c_j + b_j m_j) / (N_j + b_j), i.e. each point pulls with learning rate
///      1 / (its running count). Centres that get no point in a batch do not move.
///   4. After each epoch: relative shift ||C_end - C_start||_F / ||C_start||_F of the centres
///      over the epoch; stop when it is below `tol`, or after `max_epochs` epochs.
///   5. Final E-step on the whole fit set with the final centres: the balanced assignment
///      (floor(n/k) or ceil(n/k) per cluster, one auction over all n points) or the nearest
///      centre; its objective is MiniBatchResult::objective (comparable with full Lloyd).
///
/// Plain k-means only: a centre that has not yet received any point and gets none in a
/// batch is re-seeded with the batch point farthest from its centre (lloyd.h's rule,
/// restricted to never-filled centres), so identical or clumped starts still give k
/// clusters. sklearn's random reassignment of small clusters is not done.
///
/// Memory per batch: batch_size x (dim + k) floats; the final E-step needs n x k floats
/// (as one full-batch Lloyd iteration). Deterministic for a seed whatever the thread count
/// (the distances and the auction are; the M-step runs in point order). Logs one info line
/// per epoch (running objective = sum of the batch E-step objectives, shift, time).
#include <cstdint>
#include <string>
#include <vector>

#include "cbtm/matrix.h"
#include "kmeans_core/lloyd.h"

namespace cbtm::kmeans {

struct MiniBatchOptions {
  int32_t k = 8;
  bool balanced = true;          ///< balanced (auction) or greedy E-step per batch
  std::string init = "random";   ///< random | kmeans++ (init.h, on all of x)
  int64_t batch_size = 1024;     ///< rows per batch (>= k)
  int max_epochs = 20;
  double tol = 1e-3;             ///< relative centre shift over an epoch that ends the loop
  uint64_t seed = 0;             ///< initialisation and the per-epoch shuffles
  int threads = 1;
  std::string label = "kmeans";  ///< prefix of the log lines
  Matrix initial;                ///< k x dim starting centres; empty: use `init`
};

struct MiniBatchResult {
  Matrix centers;                  ///< k x dim, after the last epoch
  std::vector<int32_t> cluster;    ///< final E-step on the whole fit set (step 5)
  double objective = 0;            ///< sum of squared distances of that assignment
  /// One record per epoch: objective = running objective (sum over the epoch's batches),
  /// shift = relative shift over the epoch, min/max_size = smallest/largest number of
  /// points a cluster received in the epoch, auction = totals over the epoch's batches.
  std::vector<LloydIteration> history;
  bool converged = false;          ///< the epoch shift fell below tol
  int64_t batches_per_epoch = 0;
};

/// Runs mini-batch k-means. Requires 1 <= k <= batch_size and k <= x.rows
/// (std::invalid_argument otherwise; the plugins check their input first).
MiniBatchResult minibatch_kmeans(const Matrix& x, const MiniBatchOptions& options);

}  // namespace cbtm::kmeans
