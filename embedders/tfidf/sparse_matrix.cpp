#include "sparse_matrix.h"

#include <algorithm>

namespace cbtm::tfidf {

std::vector<float> CsrMatrix::dense_row(int64_t r) const {
  std::vector<float> out(static_cast<size_t>(cols), 0.f);
  for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) out[indices[p]] = values[p];
  return out;
}

CsrMatrix transpose(const CsrMatrix& a) {
  CsrMatrix t;
  t.rows = a.cols;
  t.cols = a.rows;
  t.indptr.assign(static_cast<size_t>(a.cols + 1), 0);
  for (int32_t c : a.indices) ++t.indptr[c + 1];
  for (int64_t c = 0; c < a.cols; ++c) t.indptr[c + 1] += t.indptr[c];
  t.indices.resize(a.indices.size());
  t.values.resize(a.values.size());
  // Rows of `a` in ascending order, so each output row comes out sorted. A serial
  // scatter: one pass over nnz, cheap next to the products that use it.
  std::vector<int64_t> next(t.indptr.begin(), t.indptr.end() - 1);
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
      const int64_t q = next[a.indices[p]]++;
      t.indices[q] = static_cast<int32_t>(r);
      t.values[q] = a.values[p];
    }
  return t;
}

void spmm(const CsrMatrix& a, const float* dense, int64_t k, float* out, int threads) {
  // Small products run serially: a parallel region costs more than they do.
  const bool parallel = threads > 1 && (a.nnz() + a.rows) * k > (1 << 18);
#pragma omp parallel num_threads(threads) if (parallel)
  {
#pragma omp for schedule(dynamic, 256)
    for (int64_t r = 0; r < a.rows; ++r) {
      float* __restrict o = out + r * k;
      std::fill(o, o + k, 0.f);
      for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
        const float v = a.values[p];
        const float* __restrict d = dense + static_cast<int64_t>(a.indices[p]) * k;
        for (int64_t j = 0; j < k; ++j) o[j] += v * d[j];
      }
    }
  }
}

}  // namespace cbtm::tfidf
