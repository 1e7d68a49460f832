#pragma once
/// \file sparse_matrix.h
/// A compressed-sparse-row float matrix (the tf-idf document-term matrix) and the two
/// products the randomized SVD needs, as OpenMP loops over output rows (deterministic:
/// each output value is summed in a fixed order whatever the thread count).
///
/// \code
///   CsrMatrix x = vectorizer.fit_transform(texts, threads);   // docs x terms
///   CsrMatrix xt = transpose(x, threads);                     // terms x docs
///   std::vector<float> y(x.rows * k);
///   spmm(x, dense.data(), k, y.data(), threads);              // y = x * dense
/// \endcode
#include <cstdint>
#include <vector>

namespace cbtm::tfidf {

struct CsrMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int64_t> indptr{0};  ///< rows + 1 offsets into indices/values
  std::vector<int32_t> indices;    ///< column of each stored value, ascending within a row
  std::vector<float> values;

  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
  /// Row r as a dense vector of `cols` values (for tests and debugging).
  std::vector<float> dense_row(int64_t r) const;
};

/// The transpose (cols x rows), rows of the result sorted by column. The result does not
/// depend on `threads`.
CsrMatrix transpose(const CsrMatrix& a, int threads = 1);

/// out (a.rows x k, row-major) = a * dense (a.cols x k, row-major). `out` must not overlap
/// `dense`. Each output value is summed in the order of the row's stored entries, so the
/// result does not depend on `threads` (nor on the CPU's vector width: no fused
/// multiply-adds).
void spmm(const CsrMatrix& a, const float* dense, int64_t k, float* out, int threads);

}  // namespace cbtm::tfidf
