#pragma once
/// \file cluster_analysis.h
/// How a clustering relates to known labels (e.g. the `domain` field) and how balanced it is:
/// the cluster x label overlap table with normalized mutual information and purity (the
/// paper's Fig. 16), and the size summary (Fig. 18). Pure functions; no plugin involved.
///
/// \code
///   Contingency t = contingency(domains, assignment.cluster, k);
///   double n = nmi(t), p = purity(t);
///   SizeSummary s = size_summary(t.cluster_totals());
/// \endcode
#include <cstdint>
#include <string>
#include <vector>

namespace cbtm {

/// Counts of (label, cluster) pairs. Labels are sorted; rows = labels, columns = clusters.
struct Contingency {
  std::vector<std::string> labels;
  int32_t k = 0;
  std::vector<int64_t> counts;  ///< labels.size() x k, row-major

  int64_t at(size_t label, int32_t cluster) const { return counts[label * static_cast<size_t>(k) + cluster]; }
  int64_t total() const;
  std::vector<int64_t> cluster_totals() const;
  std::vector<int64_t> label_totals() const;
};

/// Builds the table; `cluster[i]` in [0, k). Points whose label is empty are left out.
Contingency contingency(const std::vector<std::string>& labels, const std::vector<int32_t>& cluster,
                        int32_t k);

/// Mutual information I(L;C) in nats (scikit-learn's mutual_info_score).
double mutual_information(const Contingency& t);

/// Normalized mutual information with the arithmetic-mean normaliser,
/// I(L;C) / ((H(L) + H(C)) / 2), natural logs -- scikit-learn's
/// normalized_mutual_info_score default. 1 when both partitions are trivial and equal.
double nmi(const Contingency& t);

/// Purity: the fraction of points whose cluster's most common label is their label.
double purity(const Contingency& t);

/// Cluster sizes at a glance.
struct SizeSummary {
  int64_t total = 0, min = 0, max = 0;
  double q1 = 0, median = 0, q3 = 0;  ///< quartiles (linear interpolation, numpy's default)
  double mean = 0, stddev = 0;
  double cv = 0;           ///< stddev / mean (0 = perfectly balanced)
  double max_over_min = 0; ///< infinity when some cluster is empty
  int32_t empty = 0;       ///< clusters with no point
};
SizeSummary size_summary(const std::vector<int64_t>& sizes);

}  // namespace cbtm
