#pragma once
/// \file randomized_svd.h
/// Seeded randomized truncated SVD of a sparse matrix (Halko, Martinsson & Tropp 2011,
/// Alg. 4.4), as scikit-learn's TruncatedSVD(algorithm="randomized") computes it: a
/// Gaussian test matrix with `oversamples` extra columns, `power_iters` power iterations,
/// the range of the transpose when rows < cols, an orthonormal basis Q of the range, and
/// the exact SVD of the small projected matrix B = Q^T M; signs fixed so that the
/// largest-magnitude entry of every component (the term side, V^T) is positive -- scikit-learn
/// 1.2 fixes them on the document side (U), so about half the embedding dimensions have the
/// opposite sign of its TruncatedSVD (distances, and so clusterings, are the same).
///
/// The arithmetic is arranged for speed without changing what is computed (every step
/// below leaves the ranges, hence Q and B, unchanged in exact arithmetic): the columns are
/// renormalised (CholeskyQR, where scikit-learn uses LU) once per power iteration, in the
/// smaller of the two spaces; Q is never formed: with Y the range and W = M^T Y, the
/// Gram matrices Y^T Y = Z^T W and W^T W (in double) give B B^T, whose l x l
/// eigendecomposition yields the singular values and vectors. When the range is
/// rank-deficient it falls back to an explicit Householder basis. Same seed, input and
/// thread count -> the same result (other thread counts differ by float rounding in the
/// BLAS).
/// Dense algebra runs in LibTorch (float32 GEMMs); the header is torch-free.
///
/// \code
///   SvdResult svd = randomized_svd(x, {/*components=*/100});
///   svd.components().row(0);      // first right singular vector (x.cols floats)
///   svd.projection[t * 100 + c];  // column t's value in component c
///   svd.singular_values[0];
/// \endcode
#include <cstdint>
#include <vector>

#include "cbtm/matrix.h"
#include "sparse_matrix.h"

namespace cbtm::tfidf {

struct RandomizedSvdOptions {
  int64_t components = 100;  ///< singular triplets wanted (1 .. min(rows, cols))
  int64_t oversamples = 10;  ///< extra random columns (clipped to min(rows, cols))
  int64_t power_iters = 5;   ///< power iterations
  uint64_t seed = 0;         ///< seed of the Gaussian test matrix
  int threads = 1;           ///< OpenMP and LibTorch threads
};

struct SvdResult {
  std::vector<float> singular_values;  ///< descending, `components` values
  int64_t cols = 0;                    ///< columns of the input
  /// cols x components, row-major: row t holds column t's value in every right singular
  /// vector (the transpose of scikit-learn's components_; what an embedding multiplies).
  std::vector<float> projection;
  /// components x cols: the right singular vectors as rows (scikit-learn's components_).
  Matrix components() const;
};

/// Approximate top singular values and right singular vectors of `a`. Error if
/// components is not in 1 .. min(a.rows, a.cols). Sets LibTorch's (process-wide) intra-op
/// thread count to `threads` while it runs.
SvdResult randomized_svd(const CsrMatrix& a, const RandomizedSvdOptions& options);

/// rows x cols standard normal values (row-major); value i depends only on (seed, i), so
/// the result does not depend on the thread count.
std::vector<float> gaussian_matrix(int64_t rows, int64_t cols, uint64_t seed, int threads);

}  // namespace cbtm::tfidf
