#pragma once
/// \file distances.h
/// Squared Euclidean distances between many points and a few centres, computed as
/// ||x||² - 2 x·c + ||c||² with a register-blocked matrix product using fused multiply-adds
/// (8 points x 32 centres per tile with AVX-512, 4 x 16 with AVX2 + FMA, chosen at run time;
/// no -march flags; a slow portable std::fma path for CPUs without FMA), parallel over
/// blocks of points.
///
/// \code
///   std::vector<float> d(x.rows * c.rows);
///   squared_distances(x, c, d.data(), threads);   // d[i * c.rows + j] = ||x_i - c_j||²
/// \endcode
/// Every entry is computed by the same sequence of operations (a chain of fmas over the
/// dimensions, in order) whatever the kernel and the thread count, so results are the same
/// bits on every x86-64 CPU. Entries are clamped at 0 (the expanded form can round below).
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

/// The instruction set of the distance kernel; kAuto: the widest this CPU has.
enum class DistanceKernel { kAuto, kAvx512, kAvx2, kScalar };
/// Whether this CPU can run `k`.
bool kernel_available(DistanceKernel k);

namespace detail {
/// squared_distances with a given kernel (std::invalid_argument if the CPU lacks it); all
/// give identical results (exposed for the test that checks it).
void squared_distances(const Matrix& x, const Matrix& c, float* out, int threads,
                       DistanceKernel kernel, const float* x_sqnorms = nullptr);
}  // namespace detail

/// Per row of the n x k matrix d: index of the smallest entry (lowest index on ties) and
/// its value.
void row_argmin(const float* d, int64_t n, int32_t k, int32_t* arg, float* best, int threads);

/// Squared norm of every row.
std::vector<float> row_sqnorms(const Matrix& x, int threads);

}  // namespace cbtm::kmeans
