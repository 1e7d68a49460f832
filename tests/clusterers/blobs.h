#pragma once
// Synthetic data for the clusterer tests: Gaussian blobs with known labels.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "cbtm/matrix.h"

namespace cbtm::test {

struct Blobs {
  Matrix x;
  std::vector<int32_t> label;
};

/// sizes[b] points around centre b (a random point of a box of half-width `spread`), with
/// isotropic noise `sigma`, rows shuffled.
inline Blobs make_blobs(const std::vector<int64_t>& sizes, int64_t dim, float spread,
                        float sigma, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> box(-spread, spread);
  std::normal_distribution<float> noise(0.f, sigma);
  std::vector<std::vector<float>> centre(sizes.size(), std::vector<float>(dim));
  for (auto& c : centre)
    for (auto& v : c) v = box(gen);
  std::vector<int32_t> label;
  for (size_t b = 0; b < sizes.size(); ++b) label.insert(label.end(), sizes[b], int32_t(b));
  std::shuffle(label.begin(), label.end(), gen);
  Blobs out;
  out.x = Matrix(static_cast<int64_t>(label.size()), dim);
  out.label = label;
  for (size_t i = 0; i < label.size(); ++i)
    for (int64_t d = 0; d < dim; ++d) out.x.at(i, d) = centre[label[i]][d] + noise(gen);
  return out;
}

/// Fraction of points whose cluster's majority label is their own label.
inline double purity(const std::vector<int32_t>& cluster, const std::vector<int32_t>& label,
                     int32_t k, int32_t labels) {
  std::vector<std::vector<int64_t>> count(k, std::vector<int64_t>(labels, 0));
  for (size_t i = 0; i < cluster.size(); ++i) ++count[cluster[i]][label[i]];
  int64_t hit = 0;
  for (const auto& row : count) hit += *std::max_element(row.begin(), row.end());
  return static_cast<double>(hit) / static_cast<double>(cluster.size());
}

}  // namespace cbtm::test
