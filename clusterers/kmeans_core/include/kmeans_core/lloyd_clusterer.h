#pragma once
/// \file lloyd_clusterer.h
/// The "balanced_kmeans" and "kmeans" clusterers: Lloyd's algorithm (lloyd.h) with the
/// balanced auction E-step or the greedy one; inference is the greedy nearest centre.
///
/// \code
///   clusterer: {type: balanced_kmeans, k: 8, init: random, max_iters: 20, tol: 0.001, seed: 0}
/// \endcode
#include <cstdint>
#include <string>

#include "cbtm/options.h"
#include "kmeans_core/centroid_clusterer.h"
#include "kmeans_core/lloyd.h"

namespace cbtm::kmeans {

struct KMeansOptions {
  int k = 8;
  std::string init = "random";
  int max_iters = 20;
  double tol = 1e-3;
  uint64_t seed = 0;

  template <class V> void visit(V& v) {
    v("k", k, "number of clusters (>= 1)");
    v("init", init, "initial centres: random (k distinct points) | kmeans++");
    v("max_iters", max_iters, "maximum Lloyd iterations (>= 1)");
    v("tol", tol, "stop when the relative centre shift ||C'-C||/||C|| is below this");
    v("seed", seed, "random seed of the initialisation");
  }
  void validate() const {
    require(k >= 1, "k", "must be >= 1, got " + std::to_string(k));
    require_one_of(init, {"random", "kmeans++"}, "init");
    require(max_iters >= 1, "max_iters", "must be >= 1, got " + std::to_string(max_iters));
    require(tol >= 0, "tol", "must be >= 0");
  }
};

class LloydClusterer : public CentroidClusterer {
 public:
  using Options = KMeansOptions;
  LloydClusterer(std::string plugin, bool balanced, const Options& options);

  /// Validates x (checks.h), then runs lloyd() with runtime().resolved_threads() threads.
  void fit(const Matrix& x) override;
  /// Iterations, final assignment and convergence of the last fit().
  const LloydResult& last_fit() const { return last_; }

 private:
  bool balanced_;
  Options options_;
  LloydResult last_;
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
