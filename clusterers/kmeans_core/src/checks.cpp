// Input checks; see checks.h.
#include "kmeans_core/checks.h"

#include <cmath>
#include <string>

#include "cbtm/error.h"

namespace cbtm::kmeans {
namespace {
void check_finite(const Matrix& x, const std::string& owner) {
  for (int64_t i = 0; i < x.rows; ++i) {
    const float* r = x.row(i);
    for (int64_t d = 0; d < x.cols; ++d)
      if (!std::isfinite(r[d]))
        throw Error(owner + ": input row " + std::to_string(i) + ", column " +
                    std::to_string(d) + " is " + std::to_string(r[d]) +
                    " (embeddings must be finite)");
  }
}
}  // namespace

void check_fit_input(const Matrix& x, int32_t k, const std::string& owner) {
  if (k < 1) throw Error(owner + ": k must be >= 1, got " + std::to_string(k));
  if (x.rows < k)
    throw Error(owner + ": k=" + std::to_string(k) + " is larger than the number of points (" +
                std::to_string(x.rows) + ")");
  if (x.cols < 1) throw Error(owner + ": the input has no columns");
  if (static_cast<int64_t>(x.data.size()) != x.rows * x.cols)
    throw Error(owner + ": input matrix holds " + std::to_string(x.data.size()) +
                " values, not rows x cols = " + std::to_string(x.rows * x.cols));
  check_finite(x, owner);
}

void check_assign_input(const Matrix& x, int64_t dim, const std::string& owner) {
  if (x.rows > 0 && x.cols != dim)
    throw Error(owner + ": input has " + std::to_string(x.cols) + " columns, the centres have " +
                std::to_string(dim));
  if (static_cast<int64_t>(x.data.size()) != x.rows * x.cols)
    throw Error(owner + ": input matrix holds " + std::to_string(x.data.size()) +
                " values, not rows x cols = " + std::to_string(x.rows * x.cols));
  check_finite(x, owner);
}

}  // namespace cbtm::kmeans
