// Centre-based clusterer base; see centroid_clusterer.h.
#include "kmeans_core/centroid_clusterer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "cbtm/error.h"
#include "cbtm/tensor_file.h"
#include "cbtm/runtime.h"
#include "kmeans_core/checks.h"
#include "kmeans_core/distances.h"

namespace cbtm::kmeans {

CentroidClusterer::CentroidClusterer(std::string plugin, int32_t k)
    : plugin_(std::move(plugin)), k_(k) {}

std::string CentroidClusterer::owner() const { return "clusterer '" + plugin_ + "'"; }

void CentroidClusterer::check_assignable(const Matrix& x) const {
  if (centers_.empty()) throw Error(owner() + ": assign() called before fit() or load()");
  check_assign_input(x, centers_.cols, owner());
}

Assignment CentroidClusterer::assign(const Matrix& x) const {
  check_assignable(x);
  // Greedy nearest centre with the fit's distance kernel (distances.h), a block of points
  // at a time so the distance matrix stays small; ties go to the lowest index.
  const int threads = std::max(1, runtime().resolved_threads());
  const int64_t n = x.rows, k = centers_.rows;
  Assignment a;
  a.cluster.resize(static_cast<size_t>(n));
  a.sqdist.resize(static_cast<size_t>(n));
  constexpr int64_t kBlock = 16384;
  std::vector<float> dist(static_cast<size_t>(std::min(n, kBlock) * k));
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t rows = std::min(kBlock, n - b);
    Matrix part;
    if (rows < n) {
      part = Matrix(rows, x.cols);
      std::copy(x.row(b), x.row(b) + rows * x.cols, part.data.begin());
    }
    squared_distances(rows < n ? part : x, centers_, dist.data(), threads);
    row_argmin(dist.data(), rows, static_cast<int32_t>(k), a.cluster.data() + b,
               a.sqdist.data() + b, threads);
  }
  return a;
}

void CentroidClusterer::save(TensorFileWriter& out, const std::string& prefix) const {
  if (centers_.empty()) throw Error(owner() + ": save() called before fit()");
  out.add_f32(prefix + ".centers", {centers_.rows, centers_.cols}, centers_.data);
  out.add_i32(prefix + ".k", {1}, {k_});
  out.add_strings(prefix + ".plugin", {plugin_});
  save_extra(out, prefix);
}

void CentroidClusterer::load(const TensorFile& in, const std::string& prefix) {
  const std::string where = in.path() + ": " + owner() + ": ";
  for (const char* t : {".centers", ".k", ".plugin.bytes"})
    if (!in.has(prefix + t)) throw Error(where + "tensor '" + prefix + t + "' is missing");
  const std::vector<std::string> plugin = in.strings(prefix + ".plugin");
  if (plugin.size() != 1 || plugin[0] != plugin_)
    throw Error(where + "the centres were fitted by '" +
                (plugin.empty() ? std::string() : plugin[0]) + "', not '" + plugin_ + "'");
  const std::vector<int32_t> k = in.i32(prefix + ".k");
  if (k.size() != 1 || k[0] != k_)
    throw Error(where + "the artifact has k=" + (k.empty() ? std::string("?") : std::to_string(k[0])) +
                " but the configured k is " + std::to_string(k_));
  const TensorFile::Info& info = in.info(prefix + ".centers");
  if (info.shape.size() != 2 || info.shape[0] != k_ || info.shape[1] < 1)
    throw Error(where + "tensor '" + prefix + ".centers' must have shape [" + std::to_string(k_) +
                ", dim]");
  Matrix c(info.shape[0], info.shape[1]);
  c.data = in.f32(prefix + ".centers");
  for (float v : c.data)
    if (!std::isfinite(v)) throw Error(where + "tensor '" + prefix + ".centers' is not finite");
  load_extra(in, prefix);
  centers_ = std::move(c);
}

}  // namespace cbtm::kmeans
