#pragma once
/// \file distances.h
/// Squared Euclidean distances between many points and a few centres, computed as
/// ||x||² - 2 x·c + ||c||² with a register-blocked matrix product (4 points x 8 centres per
/// tile in SSE2, 4 x 16 with AVX when the CPU has it, chosen at run time; no -march flags),
/// parallel over blocks of points.
///
/// \code
///   std::vector<float> d(x.rows * c.rows);
///   squared_distances(x, c, d.data(), threads);   // d[i * c.rows + j] = ||x_i - c_j||²
/// \endcode
/// Every entry is computed by the same sequence of operations whatever the thread count, so
/// results are reproducible. Entries are clamped at 0 (the expanded form can round below).
#include <cstdint>
#include <vector>

#include "cbtm/matrix.h"

namespace cbtm::kmeans {

/// out (x.rows x c.rows, row-major) = squared distances. x.cols must equal c.cols.
void squared_distances(const Matrix& x, const Matrix& c, float* out, int threads);
/// The same with x_sqnorms = row_sqnorms(x) given (Lloyd computes them once per fit rather
/// than once per iteration); identical results.
void squared_distances(const Matrix& x, const std::vector<float>& x_sqnorms, const Matrix& c,
                       float* out, int threads);

namespace detail {
/// squared_distances with the 8-wide AVX kernel allowed (used when the CPU has AVX) or not;
/// both give identical results (exposed for the test that checks it).
void squared_distances(const Matrix& x, const Matrix& c, float* out, int threads, bool avx,
                       const float* x_sqnorms = nullptr);
}  // namespace detail

/// Per row of the n x k matrix d: index of the smallest entry (lowest index on ties) and
/// its value.
void row_argmin(const float* d, int64_t n, int32_t k, int32_t* arg, float* best, int threads);

/// Squared norm of every row.
std::vector<float> row_sqnorms(const Matrix& x, int threads);

}  // namespace cbtm::kmeans
