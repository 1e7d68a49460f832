// Initial centres; see init.h.
#include "kmeans_core/init.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "kmeans_core/rng.h"

namespace cbtm::kmeans {
namespace {
Matrix rows_of(const Matrix& x, const std::vector<int64_t>& idx) {
  Matrix c(static_cast<int64_t>(idx.size()), x.cols);
  for (size_t j = 0; j < idx.size(); ++j)
    std::copy(x.row(idx[j]), x.row(idx[j]) + x.cols, c.row(static_cast<int64_t>(j)));
  return c;
}
}  // namespace

Matrix init_random(const Matrix& x, int32_t k, uint64_t seed) {
  if (k < 1 || x.rows < k) throw std::invalid_argument("init_random: need 1 <= k <= rows");
  // The first k entries of a partial Fisher-Yates shuffle of 0..n-1, with the swapped
  // positions kept in a map (O(k) memory).
  Rng rng(seed);
  std::unordered_map<int64_t, int64_t> moved;
  auto value_at = [&](int64_t p) {
    const auto it = moved.find(p);
    return it == moved.end() ? p : it->second;
  };
  std::vector<int64_t> idx(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) {
    const int64_t r = j + static_cast<int64_t>(rng.below(static_cast<uint64_t>(x.rows - j)));
    const int64_t vr = value_at(r), vj = value_at(j);
    idx[j] = vr;
    moved[r] = vj;
    moved[j] = vr;
  }
  return rows_of(x, idx);
}

Matrix init_kmeans_pp(const Matrix& x, int32_t k, uint64_t seed, int threads) {
  if (k < 1 || x.rows < k) throw std::invalid_argument("init_kmeans_pp: need 1 <= k <= rows");
  Rng rng(seed);
  const int64_t n = x.rows;
  std::vector<int64_t> idx;
  idx.push_back(static_cast<int64_t>(rng.below(static_cast<uint64_t>(n))));
  std::vector<double> d2(static_cast<size_t>(n), std::numeric_limits<double>::infinity());
  std::vector<char> taken(static_cast<size_t>(n), 0);
  taken[idx[0]] = 1;
  while (static_cast<int32_t>(idx.size()) < k) {
    const float* c = x.row(idx.back());
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i)
      d2[i] = std::min(d2[i], static_cast<double>(squared_distance(x.row(i), c, x.cols)));
    double total = 0;
    for (int64_t i = 0; i < n; ++i)
      if (!taken[i]) total += d2[i];
    // Draw with probability d2 / total among the points not taken yet.
    int64_t pick = -1, last = -1;
    if (total > 0) {
      const double u = rng.uniform() * total;
      double acc = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (taken[i] || d2[i] <= 0) continue;
        acc += d2[i];
        last = i;
        if (acc > u) {
          pick = i;
          break;
        }
      }
      if (pick < 0) pick = last;  // u within rounding of the total
    }
    if (pick < 0) {
      // Every remaining point coincides with a centre: take a uniform untaken one.
      int64_t r = static_cast<int64_t>(rng.below(static_cast<uint64_t>(n - idx.size())));
      for (int64_t i = 0; i < n; ++i)
        if (!taken[i] && r-- == 0) {
          pick = i;
          break;
        }
    }
    taken[pick] = 1;
    idx.push_back(pick);
  }
  return rows_of(x, idx);
}

Matrix init_centers(const Matrix& x, int32_t k, const std::string& method, uint64_t seed,
                    int threads) {
  if (method == "random") return init_random(x, k, seed);
  if (method == "kmeans++") return init_kmeans_pp(x, k, seed, threads);
  throw std::invalid_argument("unknown init method '" + method + "' (random | kmeans++)");
}

}  // namespace cbtm::kmeans
