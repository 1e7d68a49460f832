// The random-partition clusterer; see random_clusterer.h.
#include "kmeans_core/random_clusterer.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/hash.h"
#include "cbtm/runtime.h"
#include "cbtm/tensor_file.h"
#include "kmeans_core/checks.h"
#include "kmeans_core/lloyd.h"
#include "kmeans_core/rng.h"

namespace cbtm::kmeans {

RandomClusterer::RandomClusterer(const Options& options)
    : CentroidClusterer("random", options.k), options_(options) {}

void RandomClusterer::fit(const Matrix& x) {
  check_fit_input(x, options_.k, owner());
  std::vector<int64_t> perm(static_cast<size_t>(x.rows));
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(options_.seed);
  for (int64_t i = x.rows - 1; i > 0; --i)
    std::swap(perm[i], perm[rng.below(static_cast<uint64_t>(i + 1))]);
  std::vector<int32_t> cluster(static_cast<size_t>(x.rows));
  for (int64_t t = 0; t < x.rows; ++t) cluster[perm[t]] = static_cast<int32_t>(t % options_.k);
  std::vector<int64_t> sizes;
  set_centers(cluster_means(x, cluster, options_.k, &sizes));
  fit_assignment_ = std::move(cluster);
  const auto [mn, mx] = std::minmax_element(sizes.begin(), sizes.end());
  spdlog::info("random: {} points dealt into {} clusters of {}..{}", x.rows, options_.k, *mn, *mx);
}

int32_t RandomClusterer::cluster_of(const float* row, int64_t dim) const {
  // FNV-1a over the row's bytes, seeded, then mixed; mapped to [0, k) by a 64x64 multiply.
  uint64_t h = 0xcbf29ce484222325ULL ^ mix64(options_.seed);
  const auto* bytes = reinterpret_cast<const unsigned char*>(row);
  for (int64_t b = 0; b < dim * static_cast<int64_t>(sizeof(float)); ++b) {
    h ^= bytes[b];
    h *= 0x100000001b3ULL;
  }
  h = mix64(h);
  return static_cast<int32_t>((static_cast<unsigned __int128>(h) * options_.k) >> 64);
}

Assignment RandomClusterer::assign(const Matrix& x) const {
  check_assignable(x);
  const Matrix& c = centers();
  Assignment a;
  a.cluster.resize(static_cast<size_t>(x.rows));
  a.sqdist.resize(static_cast<size_t>(x.rows));
#pragma omp parallel for num_threads(runtime().resolved_threads()) schedule(static)
  for (int64_t i = 0; i < x.rows; ++i) {
    const int32_t j = cluster_of(x.row(i), x.cols);
    a.cluster[i] = j;
    a.sqdist[i] = squared_distance(x.row(i), c.row(j), x.cols);
  }
  return a;
}

void RandomClusterer::save_extra(TensorFileWriter& out, const std::string& prefix) const {
  out.add_i64(prefix + ".seed", {1}, {static_cast<int64_t>(options_.seed)});
}

void RandomClusterer::load_extra(const TensorFile& in, const std::string& prefix) {
  const std::string name = prefix + ".seed";
  if (!in.has(name)) throw Error(in.path() + ": " + owner() + ": tensor '" + name + "' is missing");
  const std::vector<int64_t> s = in.i64(name);
  if (s.size() != 1 || static_cast<uint64_t>(s[0]) != options_.seed)
    throw Error(in.path() + ": " + owner() + ": the artifact was fitted with seed " +
                (s.empty() ? std::string("?") : std::to_string(static_cast<uint64_t>(s[0]))) +
                " but the configured seed is " + std::to_string(options_.seed) +
                " (assign() hashes rows with the seed)");
}

}  // namespace cbtm::kmeans
