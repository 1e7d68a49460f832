#pragma once
/// \file random_clusterer.h
/// The "random" clusterer: a fixed random partition (the paper's random-split baseline).
///
/// fit(x): a seeded random permutation deals the points round-robin into k clusters (sizes
/// floor(n/k) or ceil(n/k)); the centres are the cluster means (so routers still work).
/// assign(y): each row goes to cluster hash(seed, bytes of the row's floats) mod k: the
/// same row always lands in the same cluster, whatever batch it comes in; sqdist is the
/// squared distance to that cluster's centre. (Rows equal as numbers but not as bytes,
/// e.g. 0.0 and -0.0, may differ.)
///
/// \code
///   clusterer: {type: random, k: 8, seed: 0}
/// \endcode
#include <cstdint>
#include <string>
#include <vector>

#include "cbtm/options.h"
#include "kmeans_core/centroid_clusterer.h"

namespace cbtm::kmeans {

class RandomClusterer : public CentroidClusterer {
 public:
  struct Options {
    int k = 8;
    uint64_t seed = 0;
    template <class V> void visit(V& v) {
      v("k", k, "number of clusters (>= 1)");
      v("seed", seed, "seed of the partition at fit and of the row hash at assign");
    }
    void validate() const { require(k >= 1, "k", "must be >= 1, got " + std::to_string(k)); }
  };
  explicit RandomClusterer(const Options& options);

  void fit(const Matrix& x) override;
  Assignment assign(const Matrix& x) const override;
  /// The cluster of one row of `dim` floats (what assign() uses).
  int32_t cluster_of(const float* row, int64_t dim) const;
  /// The partition drawn by the last fit() (one cluster per fitted point).
  const std::vector<int32_t>& fit_assignment() const { return fit_assignment_; }

 protected:
  /// Saves/checks "<prefix>.seed" (I64): assign() depends on it.
  void save_extra(TensorFileWriter& out, const std::string& prefix) const override;
  void load_extra(const TensorFile& in, const std::string& prefix) override;

 private:
  Options options_;
  std::vector<int32_t> fit_assignment_;
};

}  // namespace cbtm::kmeans
