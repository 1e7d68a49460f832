#pragma once
/// \file metadata_clusterer.h
/// The "metadata" clusterer: cluster = the value of a document field (the BTM baseline,
/// e.g. one expert per `domain`).
///
/// fit_with_metadata(x, meta): the k cluster values are `values` in that order, or (empty
/// `values`) the k most frequent non-empty values of the fit documents, ties broken by name.
/// Centre j = mean embedding of the fit documents whose value is values[j], so a router
/// that only sees embeddings at inference still routes by distance.
/// assign_with_metadata(y, meta): a document with value values[j] goes to cluster j, sqdist =
/// its squared distance to centre j. A document whose value is none of the k values, or
/// that lacks the field (""), is handled by `unknown`: "nearest" sends it to the nearest
/// centre by embedding; "error" throws cbtm::Error naming the document and the value. The
/// rule applies at fit too (with "error", every fit document must carry one of the values).
/// assign(y) without metadata (inference) is the nearest centre. fit() without metadata
/// throws: the pipeline calls fit_with_metadata since metadata_field() is set.
///
/// Saved beside the centres (centroid_clusterer.h): "<prefix>.field" and "<prefix>.values"
/// (string lists). load() checks that the field matches, that there are k values, and, when
/// `values` is configured, that they are the saved ones in the same order.
///
/// \code
///   clusterer: {type: metadata, field: domain, k: 8, values: [], unknown: nearest}
/// \endcode
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "cbtm/options.h"
#include "kmeans_core/centroid_clusterer.h"

namespace cbtm::metadata {

struct MetadataOptions {
  std::string field = "domain";
  int k = 0;
  std::vector<std::string> values;
  std::string unknown = "nearest";

  template <class V> void visit(V& v) {
    v("field", field, "document field whose value is the cluster (e.g. domain)");
    v("k", k, "number of clusters (required, >= 1)");
    v("values", values,
      "field values in cluster order; empty: the k most frequent values of the fit documents "
      "(ties by name)");
    v("unknown", unknown,
      "documents whose value is not one of the k values, or missing: nearest (nearest centre "
      "by embedding) | error");
  }
  void validate() const;
};

class MetadataClusterer : public kmeans::CentroidClusterer {
 public:
  using Options = MetadataOptions;
  explicit MetadataClusterer(const Options& options);

  std::string metadata_field() const override { return options_.field; }
  /// Throws Error: this clusterer needs the field (use fit_with_metadata).
  void fit(const Matrix& x) override;
  void fit_with_metadata(const Matrix& x, const std::vector<std::string>& metadata) override;
  Assignment assign_with_metadata(const Matrix& x,
                                  const std::vector<std::string>& metadata) const override;
  /// The k values in cluster order (after fit or load).
  const std::vector<std::string>& values() const { return values_; }

 protected:
  void save_extra(TensorFileWriter& out, const std::string& prefix) const override;
  void load_extra(const TensorFile& in, const std::string& prefix) override;

 private:
  void set_values(std::vector<std::string> values);
  /// Cluster of each document, or -1 (unknown policy "nearest"); throws for "error".
  std::vector<int32_t> lookup(const std::vector<std::string>& metadata, int64_t rows) const;

  Options options_;
  std::vector<std::string> values_;
  std::unordered_map<std::string, int32_t> index_;
};

}  // namespace cbtm::metadata
