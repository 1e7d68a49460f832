#pragma once
/// \file lloyd_clusterer.h
/// The "balanced_kmeans" and "kmeans" clusterers: Lloyd's algorithm (lloyd.h) with the
/// balanced auction E-step or the greedy one, or with `batch_size` > 0 mini-batch fitting
/// (minibatch.h: balanced or greedy E-step per batch, sklearn-style running-count M-step,
/// `max_iters` epochs). Only fitting is balanced: assign() (inference, and the pipeline's
/// assignment of documents) is the greedy nearest centre, so its cluster sizes are not
/// constrained; the balanced assignment of the fit set is fit_assignment().
///
/// \code
///   clusterer: {type: balanced_kmeans, k: 8, init: random, max_iters: 20, tol: 0.001, seed: 0,
///               batch_size: 0, n_init: 1}
/// \endcode
#include <cstdint>
#include <string>

#include "cbtm/options.h"
#include "kmeans_core/centroid_clusterer.h"
#include "kmeans_core/lloyd.h"
#include "kmeans_core/minibatch.h"

namespace cbtm::kmeans {

struct KMeansOptions {
  int k = 8;
  std::string init = "random";
  int max_iters = 20;
  double tol = 1e-3;
  uint64_t seed = 0;
  int64_t batch_size = 0;
  int n_init = 1;

  template <class V> void visit(V& v) {
    v("k", k, "number of clusters (>= 1)");
    v("init", init, "initial centres: random (k distinct points) | kmeans++");
    v("max_iters", max_iters, "maximum Lloyd iterations, or epochs when batch_size > 0 (>= 1)");
    v("tol", tol,
      "stop when the relative centre shift ||C'-C||/||C|| (per iteration, or per epoch) is "
      "below this");
    v("seed", seed, "random seed of the initialisation (and of the mini-batch shuffles)");
    v("batch_size", batch_size,
      "0: full-batch Lloyd; > 0 (>= k): mini-batch fitting on batches of this many points, "
      "max_iters epochs");
    v("n_init", n_init,
      "full-batch fits from seeds seed, seed+1, ...; the one with the lowest final objective "
      "(sum of squared distances) is kept (scikit-learn's n_init; >= 1)");
  }
  void validate() const {
    require(k >= 1, "k", "must be >= 1, got " + std::to_string(k));
    require_one_of(init, {"random", "kmeans++"}, "init");
    require(max_iters >= 1, "max_iters", "must be >= 1, got " + std::to_string(max_iters));
    require(tol >= 0, "tol", "must be >= 0");
    require(n_init >= 1, "n_init", "must be >= 1, got " + std::to_string(n_init));
    require(n_init == 1 || batch_size == 0, "n_init", "applies to full-batch fitting only (batch_size: 0)");
    require(batch_size == 0 || batch_size >= k, "batch_size",
            "must be 0 (full batch) or >= k=" + std::to_string(k) + ", got " +
                std::to_string(batch_size));
  }
};

class LloydClusterer : public CentroidClusterer {
 public:
  using Options = KMeansOptions;
  LloydClusterer(std::string plugin, bool balanced, const Options& options);

  /// Validates x (checks.h), then runs lloyd() (batch_size 0) or minibatch_kmeans() with
  /// runtime().resolved_threads() threads.
  void fit(const Matrix& x) override;
  /// Iterations, final assignment and convergence of the last full-batch fit() (empty after
  /// a mini-batch fit).
  const LloydResult& last_fit() const { return last_; }
  /// Epochs, final assignment and objective of the last mini-batch fit() (empty after a
  /// full-batch fit).
  const MiniBatchResult& last_minibatch_fit() const { return last_minibatch_; }
  /// The fit's own assignment of the fit set (balanced for balanced_kmeans: floor/ceil
  /// sizes); empty before fit().
  const std::vector<int32_t>& fit_assignment() const {
    return options_.batch_size > 0 ? last_minibatch_.cluster : last_.cluster;
  }

 private:
  bool balanced_;
  Options options_;
  LloydResult last_;
  MiniBatchResult last_minibatch_;
};

/// Registered as "balanced_kmeans".
class BalancedKMeans : public LloydClusterer {
 public:
  explicit BalancedKMeans(const Options& o) : LloydClusterer("balanced_kmeans", true, o) {}
};

/// Registered as "kmeans".
class PlainKMeans : public LloydClusterer {
 public:
  explicit PlainKMeans(const Options& o) : LloydClusterer("kmeans", false, o) {}
};

}  // namespace cbtm::kmeans
