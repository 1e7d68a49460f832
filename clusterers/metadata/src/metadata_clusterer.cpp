// Cluster = a document field; see metadata_clusterer.h.
#include "metadata/metadata_clusterer.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/runtime.h"
#include "cbtm/tensor_file.h"
#include "kmeans_core/checks.h"

namespace cbtm::metadata {
namespace {
std::string joined(const std::vector<std::string>& v, size_t limit = 10) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < limit; ++i) s += (i ? ", '" : "'") + v[i] + "'";
  if (v.size() > limit) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s;
}
}  // namespace

void MetadataOptions::validate() const {
  require(!field.empty(), "field", "must name a document field (e.g. domain)");
  require(k >= 1, "k", "is required: the number of clusters (>= 1), got " + std::to_string(k));
  require(values.empty() || values.size() == static_cast<size_t>(k), "values",
          "lists " + std::to_string(values.size()) + " values but k is " + std::to_string(k) +
              " (list k values in cluster order, or none for the k most frequent)");
  std::set<std::string> seen;
  for (const auto& v : values) {
    require(!v.empty(), "values", "an empty value cannot name a cluster");
    require(seen.insert(v).second, "values", "'" + v + "' is listed twice");
  }
  require_one_of(unknown, {"nearest", "error"}, "unknown");
}

MetadataClusterer::MetadataClusterer(const Options& options)
    : CentroidClusterer("metadata", options.k), options_(options) {}

void MetadataClusterer::fit(const Matrix&) {
  throw Error(owner() + ": clusters by the document field '" + options_.field +
              "': fit_with_metadata() is needed (the pipeline calls it because "
              "metadata_field() is set)");
}

void MetadataClusterer::set_values(std::vector<std::string> values) {
  values_ = std::move(values);
  index_.clear();
  for (size_t j = 0; j < values_.size(); ++j) index_.emplace(values_[j], static_cast<int32_t>(j));
}

std::vector<int32_t> MetadataClusterer::lookup(const std::vector<std::string>& metadata,
                                               int64_t rows) const {
  if (static_cast<int64_t>(metadata.size()) != rows)
    throw Error(owner() + ": got " + std::to_string(metadata.size()) + " values of field '" +
                options_.field + "' for " + std::to_string(rows) + " embeddings");
  std::vector<int32_t> cluster(static_cast<size_t>(rows), -1);
  for (int64_t i = 0; i < rows; ++i) {
    const auto it = index_.find(metadata[i]);
    if (it != index_.end()) {
      cluster[i] = it->second;
    } else if (options_.unknown == "error") {
      const std::string what = metadata[i].empty()
                                   ? "has no '" + options_.field + "' field"
                                   : "has " + options_.field + " '" + metadata[i] + "'";
      throw Error(owner() + ": document " + std::to_string(i) + " " + what +
                  ", which is not one of the k=" + std::to_string(k()) + " cluster values (" +
                  joined(values_) + "); set unknown: nearest to send such documents to the "
                  "nearest centre");
    }
  }
  return cluster;
}

void MetadataClusterer::fit_with_metadata(const Matrix& x,
                                          const std::vector<std::string>& metadata) {
  kmeans::check_fit_input(x, k(), owner());
  if (static_cast<int64_t>(metadata.size()) != x.rows)
    throw Error(owner() + ": got " + std::to_string(metadata.size()) + " values of field '" +
                options_.field + "' for " + std::to_string(x.rows) + " embeddings");
  std::map<std::string, int64_t> count;
  for (const auto& v : metadata)
    if (!v.empty()) ++count[v];

  std::vector<std::string> values = options_.values;
  if (values.empty()) {
    if (count.size() < static_cast<size_t>(k()))
      throw Error(owner() + ": field '" + options_.field + "' has " +
                  std::to_string(count.size()) + " distinct values in the " +
                  std::to_string(x.rows) + " fit documents, fewer than k=" +
                  std::to_string(k()) + " (lower k, or list the cluster values in `values`)");
    std::vector<std::pair<std::string, int64_t>> byfreq(count.begin(), count.end());
    // Most frequent first; std::map order (by name) breaks ties through the stable sort.
    std::stable_sort(byfreq.begin(), byfreq.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    for (int32_t j = 0; j < k(); ++j) values.push_back(byfreq[j].first);
  } else {
    for (const auto& v : values)
      if (!count.count(v))
        throw Error(owner() + ": value '" + v + "' (in `values`) is the " + options_.field +
                    " of none of the " + std::to_string(x.rows) +
                    " fit documents, so its centre is undefined");
  }
  std::vector<std::string> previous = values_;
  set_values(std::move(values));
  std::vector<int32_t> cluster;
  try {
    cluster = lookup(metadata, x.rows);
  } catch (...) {
    set_values(std::move(previous));  // a failed fit leaves the clusterer as it was
    throw;
  }

  // Centres: per-value means, accumulated in double in document order.
  const int64_t dim = x.cols;
  std::vector<double> sum(static_cast<size_t>(k()) * dim, 0.0);
  std::vector<int64_t> size(static_cast<size_t>(k()), 0);
  for (int64_t i = 0; i < x.rows; ++i) {
    const int32_t j = cluster[i];
    if (j < 0) continue;
    ++size[j];
    double* s = sum.data() + static_cast<int64_t>(j) * dim;
    const float* r = x.row(i);
    for (int64_t d = 0; d < dim; ++d) s[d] += r[d];
  }
  Matrix c(k(), dim);
  for (int32_t j = 0; j < k(); ++j)
    for (int64_t d = 0; d < dim; ++d)
      c.at(j, d) = static_cast<float>(sum[static_cast<int64_t>(j) * dim + d] / size[j]);
  set_centers(std::move(c));

  int64_t others = 0;
  for (int32_t j : cluster) others += j < 0;
  std::string summary;
  for (int32_t j = 0; j < k(); ++j)
    summary += (j ? ", " : "") + values_[j] + " (" + std::to_string(size[j]) + ")";
  spdlog::info("{}: {} clusters by field '{}': {}; {} of {} fit documents have another or no "
               "value (unknown: {})",
               owner(), k(), options_.field, summary, others, x.rows, options_.unknown);
}

Assignment MetadataClusterer::assign_with_metadata(const Matrix& x,
                                                   const std::vector<std::string>& metadata) const {
  check_assignable(x);
  const std::vector<int32_t> known = lookup(metadata, x.rows);
  const Matrix& c = centers();
  Assignment a;
  a.cluster.assign(static_cast<size_t>(x.rows), 0);
  a.sqdist.assign(static_cast<size_t>(x.rows), 0.f);
#pragma omp parallel for num_threads(runtime().resolved_threads()) schedule(static)
  for (int64_t i = 0; i < x.rows; ++i) {
    int32_t arg = known[i];
    float best = 0.f;
    if (arg >= 0) {
      best = squared_distance(x.row(i), c.row(arg), x.cols);
    } else {  // nearest centre, lowest index on ties (as nearest_centers)
      arg = 0;
      best = squared_distance(x.row(i), c.row(0), x.cols);
      for (int64_t j = 1; j < c.rows; ++j) {
        const float d = squared_distance(x.row(i), c.row(j), x.cols);
        if (d < best) {
          best = d;
          arg = static_cast<int32_t>(j);
        }
      }
    }
    a.cluster[i] = arg;
    a.sqdist[i] = best;
  }
  return a;
}

void MetadataClusterer::save_extra(TensorFileWriter& out, const std::string& prefix) const {
  out.add_strings(prefix + ".field", {options_.field});
  out.add_strings(prefix + ".values", values_);
}

void MetadataClusterer::load_extra(const TensorFile& in, const std::string& prefix) {
  const std::string where = in.path() + ": " + owner() + ": ";
  for (const char* t : {".field.bytes", ".values.bytes"})
    if (!in.has(prefix + t)) throw Error(where + "tensor '" + prefix + t + "' is missing");
  const std::vector<std::string> field = in.strings(prefix + ".field");
  if (field.size() != 1 || field[0] != options_.field)
    throw Error(where + "the artifact clusters by field '" +
                (field.empty() ? std::string() : field[0]) + "' but the configured field is '" +
                options_.field + "'");
  std::vector<std::string> values = in.strings(prefix + ".values");
  if (values.size() != static_cast<size_t>(k()))
    throw Error(where + "the artifact lists " + std::to_string(values.size()) +
                " cluster values, not k=" + std::to_string(k()));
  if (!options_.values.empty() && values != options_.values)
    throw Error(where + "the artifact's cluster values (" + joined(values) +
                ") differ from the configured `values` (" + joined(options_.values) + ")");
  set_values(std::move(values));
}

}  // namespace cbtm::metadata
