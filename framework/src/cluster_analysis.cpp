#include "cbtm/cluster_analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "cbtm/error.h"

namespace cbtm {

int64_t Contingency::total() const {
  int64_t s = 0;
  for (int64_t c : counts) s += c;
  return s;
}

std::vector<int64_t> Contingency::cluster_totals() const {
  std::vector<int64_t> t(static_cast<size_t>(k), 0);
  for (size_t l = 0; l < labels.size(); ++l)
    for (int32_t c = 0; c < k; ++c) t[c] += at(l, c);
  return t;
}

std::vector<int64_t> Contingency::label_totals() const {
  std::vector<int64_t> t(labels.size(), 0);
  for (size_t l = 0; l < labels.size(); ++l)
    for (int32_t c = 0; c < k; ++c) t[l] += at(l, c);
  return t;
}

Contingency contingency(const std::vector<std::string>& labels, const std::vector<int32_t>& cluster,
                        int32_t k) {
  if (labels.size() != cluster.size())
    throw Error("contingency: " + std::to_string(labels.size()) + " labels for " +
                std::to_string(cluster.size()) + " assignments");
  if (k < 1) throw Error("contingency: k must be >= 1");
  std::map<std::string, size_t> index;
  for (const auto& l : labels)
    if (!l.empty()) index.emplace(l, 0);
  Contingency t;
  t.k = k;
  for (auto& [label, i] : index) {
    i = t.labels.size();
    t.labels.push_back(label);
  }
  t.counts.assign(t.labels.size() * static_cast<size_t>(k), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].empty()) continue;
    if (cluster[i] < 0 || cluster[i] >= k)
      throw Error("contingency: cluster " + std::to_string(cluster[i]) + " out of range [0, " +
                  std::to_string(k) + ")");
    ++t.counts[index[labels[i]] * static_cast<size_t>(k) + cluster[i]];
  }
  return t;
}

namespace {
double entropy(const std::vector<int64_t>& sizes, double n) {
  double h = 0;
  for (int64_t s : sizes)
    if (s > 0) h -= (s / n) * std::log(s / n);
  return h;
}
}  // namespace

double mutual_information(const Contingency& t) {
  const double n = static_cast<double>(t.total());
  if (n == 0) return 0;
  const auto a = t.label_totals();
  const auto b = t.cluster_totals();
  double mi = 0;
  for (size_t l = 0; l < t.labels.size(); ++l)
    for (int32_t c = 0; c < t.k; ++c) {
      const double nij = static_cast<double>(t.at(l, c));
      if (nij > 0) mi += (nij / n) * std::log(nij * n / (static_cast<double>(a[l]) * b[c]));
    }
  return std::max(mi, 0.0);
}

double nmi(const Contingency& t) {
  const double n = static_cast<double>(t.total());
  if (n == 0) return 0;
  const double ha = entropy(t.label_totals(), n), hb = entropy(t.cluster_totals(), n);
  // scikit-learn: both partitions trivial (one class each) -> perfect agreement.
  if (ha == 0 && hb == 0) return 1.0;
  const double denom = (ha + hb) / 2;
  return denom > 0 ? std::min(1.0, mutual_information(t) / denom) : 0.0;
}

double purity(const Contingency& t) {
  const double n = static_cast<double>(t.total());
  if (n == 0) return 0;
  int64_t s = 0;
  for (int32_t c = 0; c < t.k; ++c) {
    int64_t best = 0;
    for (size_t l = 0; l < t.labels.size(); ++l) best = std::max(best, t.at(l, c));
    s += best;
  }
  return s / n;
}

SizeSummary size_summary(const std::vector<int64_t>& sizes) {
  SizeSummary s;
  if (sizes.empty()) return s;
  s.min = *std::min_element(sizes.begin(), sizes.end());
  s.max = *std::max_element(sizes.begin(), sizes.end());
  for (int64_t v : sizes) {
    s.total += v;
    if (v == 0) ++s.empty;
  }
  s.mean = static_cast<double>(s.total) / sizes.size();
  double sq = 0;
  for (int64_t v : sizes) sq += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(sq / sizes.size());
  s.cv = s.mean > 0 ? s.stddev / s.mean : 0;
  std::vector<int64_t> v = sizes;
  std::sort(v.begin(), v.end());
  auto quantile = [&](double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return static_cast<double>(v[lo]) + (pos - static_cast<double>(lo)) * static_cast<double>(v[hi] - v[lo]);
  };
  s.q1 = quantile(0.25);
  s.median = quantile(0.5);
  s.q3 = quantile(0.75);
  s.max_over_min = s.min > 0 ? static_cast<double>(s.max) / s.min : std::numeric_limits<double>::infinity();
  return s;
}

}  // namespace cbtm
