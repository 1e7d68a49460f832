#pragma once
/// \file clusterer.h
/// Extension point: fit k cluster centres on embeddings, then assign points.
///
/// Fitting may use any rule (balanced k-means, plain k-means, a random partition);
/// assignment of new points is the greedy nearest centre (paper §2.1), which the default
/// assign() implements and which also returns squared distances for the router.
///
/// \code
///   auto cl = registry.create<Clusterer>(cfg.child("clusterer"));
///   cl->fit(x);                          // x: documents x dim
///   Assignment a = cl->assign(y);        // a.cluster[i], a.sqdist[i]
/// \endcode
#include <cstdint>
#include <string>
#include <vector>

#include "cbtm/component.h"
#include "cbtm/matrix.h"

namespace cbtm {

class TensorFile;
class TensorFileWriter;

struct Assignment {
  std::vector<int32_t> cluster;  ///< per point
  std::vector<float> sqdist;     ///< squared distance to its centre
};

class Clusterer : public Component {
 public:
  static constexpr const char* kKind = "clusterer";

  /// Fits the centres. Throws Error if there are fewer points than clusters.
  virtual void fit(const Matrix& x) = 0;
  /// Number of clusters (known before fit, from the options).
  virtual int32_t k() const = 0;
  /// k x dim centres (valid after fit or load).
  virtual const Matrix& centers() const = 0;
  /// Nearest centre for every row of x (parallel over rows).
  virtual Assignment assign(const Matrix& x) const;

  /// Metadata clusterers (e.g. cluster = the document's `domain`) name the document field
  /// they read; the pipeline then calls the *_with_metadata variants below with that field of
  /// every document ("" when a document lacks it). Empty (the default): embeddings only.
  virtual std::string metadata_field() const { return {}; }
  /// fit() with metadata[i] the field of row i; the default ignores metadata and calls fit().
  virtual void fit_with_metadata(const Matrix& x, const std::vector<std::string>& metadata);
  /// assign() with metadata; the default ignores metadata and calls assign().
  virtual Assignment assign_with_metadata(const Matrix& x,
                                          const std::vector<std::string>& metadata) const;

  virtual void save(TensorFileWriter& out, const std::string& prefix) const = 0;
  virtual void load(const TensorFile& in, const std::string& prefix) = 0;
};

/// Greedy nearest-centre assignment (used by Clusterer::assign; exposed for tests).
Assignment nearest_centers(const Matrix& x, const Matrix& centers);

}  // namespace cbtm
