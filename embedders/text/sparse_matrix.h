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

// ---- half precision (IEEE binary16) dense operands ----------------------------------------
// The randomized SVD's power iterations only need the range of their products, so their
// dense operands are stored in half precision: half the memory traffic of the products,
// which is what bounds them. Products and sums stay in float. Conversions round to nearest
// even (as F16C does) and give the same bits with or without F16C.

/// k rounded up to a multiple of 16: the row length (leading dimension) of a half matrix.
inline int64_t half_ld(int64_t k) { return (k + 15) / 16 * 16; }
/// out[r * half_ld(k) + c] = half(in[r * k + c]) for rows x k floats; the padding is zeroed.
void to_half(const float* in, int64_t rows, int64_t k, uint16_t* out, int threads);
/// The inverse (exact): out[r * k + c] = float(in[r * half_ld(k) + c]).
void from_half(const uint16_t* in, int64_t rows, int64_t k, float* out, int threads);
/// out (a.rows x k floats) = a * dense, dense a.cols x k in half precision (row length
/// half_ld(k)); the same order of operations as spmm.
void spmm(const CsrMatrix& a, const uint16_t* dense, int64_t k, float* out, int threads);
/// The same with the result rounded to half precision (row length half_ld(k), padding 0).
void spmm(const CsrMatrix& a, const uint16_t* dense, int64_t k, uint16_t* out, int threads);

namespace detail {
/// Tests only: run the portable loops instead of the AVX-512 kernels (process-wide), to
/// check that both give the same bits.
void use_portable_kernels(bool on);
}  // namespace detail

}  // namespace cbtm::tfidf
