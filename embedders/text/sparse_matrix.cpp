#include "sparse_matrix.h"

#include <omp.h>

#include <immintrin.h>

#include <algorithm>

namespace cbtm::tfidf {
namespace {

/// How far ahead (stored entries) spmm prefetches the dense rows it will read.
constexpr int64_t kPrefetch = 6;

/// Rows [r0, r1) of out = a * dense. Compiled for AVX2 and for the baseline; both clones
/// do the same multiplies and adds in the same order (no FMA), so they agree bit for bit.
__attribute__((target_clones("avx2", "default"))) void spmm_rows(
    const CsrMatrix& a, const float* __restrict dense, int64_t k, float* __restrict out,
    int64_t r0, int64_t r1) {
  const int64_t* indptr = a.indptr.data();
  const int32_t* indices = a.indices.data();
  const float* values = a.values.data();
  const int64_t nnz = a.nnz();
  for (int64_t r = r0; r < r1; ++r) {
    float* __restrict o = out + r * k;
    for (int64_t j = 0; j < k; ++j) o[j] = 0.f;
    for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
      if (p + kPrefetch < nnz) {
        const char* next =
            reinterpret_cast<const char*>(dense + static_cast<int64_t>(indices[p + kPrefetch]) * k);
        for (int64_t b = 0; b < k * 4; b += 64) __builtin_prefetch(next + b);
      }
      const float v = values[p];
      const float* __restrict d = dense + static_cast<int64_t>(indices[p]) * k;
      for (int64_t j = 0; j < k; ++j) o[j] += v * d[j];
    }
  }
}

// Rows [r0, r1) of out = a * dense with AVX-512, columns [c0, c0 + 16 NV) (the last vector
// masked by `last`): the NV accumulators stay in registers over the whole row. Every lane does
// the same multiply, then add, in the same order as spmm_rows, so the results are identical.
template <int NV>
__attribute__((target("avx512f"))) void spmm_rows512(const CsrMatrix& a, const float* dense,
                                                     int64_t k, float* out, int64_t r0,
                                                     int64_t r1, int64_t c0, __mmask16 last) {
  const int64_t* indptr = a.indptr.data();
  const int32_t* indices = a.indices.data();
  const float* values = a.values.data();
  const int64_t nnz = a.nnz();
  for (int64_t r = r0; r < r1; ++r) {
    __m512 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = _mm512_setzero_ps();
    for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
      if (p + kPrefetch < nnz) {
        const char* next = reinterpret_cast<const char*>(
            dense + static_cast<int64_t>(indices[p + kPrefetch]) * k + c0);
        for (int b = 0; b < NV * 64; b += 64) __builtin_prefetch(next + b);
      }
      const __m512 val = _mm512_set1_ps(values[p]);
      const float* d = dense + static_cast<int64_t>(indices[p]) * k + c0;
      for (int v = 0; v < NV; ++v) {
        const __m512 x = v + 1 < NV ? _mm512_loadu_ps(d + 16 * v)
                                    : _mm512_maskz_loadu_ps(last, d + 16 * v);
        acc[v] = _mm512_add_ps(acc[v], _mm512_mul_ps(val, x));
      }
    }
    float* o = out + r * k + c0;
    for (int v = 0; v < NV; ++v) {
      if (v + 1 < NV)
        _mm512_storeu_ps(o + 16 * v, acc[v]);
      else
        _mm512_mask_storeu_ps(o + 16 * v, last, acc[v]);
    }
  }
}

// Rows [r0, r1) with the AVX-512 kernels, 128 columns at a time.
__attribute__((target("avx512f"))) void spmm_rows_avx512(const CsrMatrix& a, const float* dense,
                                                         int64_t k, float* out, int64_t r0,
                                                         int64_t r1) {
  for (int64_t c0 = 0; c0 < k; c0 += 128) {
    const int64_t w = std::min<int64_t>(128, k - c0);
    const int nv = static_cast<int>((w + 15) / 16);
    const int64_t tail = w - 16 * (nv - 1);
    const __mmask16 last = tail == 16 ? __mmask16(0xFFFF) : __mmask16((1u << tail) - 1);
    switch (nv) {
      case 1: spmm_rows512<1>(a, dense, k, out, r0, r1, c0, last); break;
      case 2: spmm_rows512<2>(a, dense, k, out, r0, r1, c0, last); break;
      case 3: spmm_rows512<3>(a, dense, k, out, r0, r1, c0, last); break;
      case 4: spmm_rows512<4>(a, dense, k, out, r0, r1, c0, last); break;
      case 5: spmm_rows512<5>(a, dense, k, out, r0, r1, c0, last); break;
      case 6: spmm_rows512<6>(a, dense, k, out, r0, r1, c0, last); break;
      case 7: spmm_rows512<7>(a, dense, k, out, r0, r1, c0, last); break;
      default: spmm_rows512<8>(a, dense, k, out, r0, r1, c0, last); break;
    }
  }
}

bool have_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

void spmm_block(const CsrMatrix& a, const float* dense, int64_t k, float* out, int64_t r0,
                int64_t r1) {
  if (have_avx512())
    spmm_rows_avx512(a, dense, k, out, r0, r1);
  else
    spmm_rows(a, dense, k, out, r0, r1);
}

}  // namespace

std::vector<float> CsrMatrix::dense_row(int64_t r) const {
  std::vector<float> out(static_cast<size_t>(cols), 0.f);
  for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) out[indices[p]] = values[p];
  return out;
}

CsrMatrix transpose(const CsrMatrix& a, int threads) {
  CsrMatrix t;
  t.rows = a.cols;
  t.cols = a.rows;
  t.indices.resize(a.indices.size());
  t.values.resize(a.values.size());
  // Each thread scatters a contiguous block of rows of `a`; thread j's entries of column c
  // go after those of threads < j, so every output row comes out sorted, as a serial
  // scatter in row order would give.
  const int nt = std::max(1, std::min<int>(threads, static_cast<int>(a.nnz() >> 16) + 1));
  std::vector<std::vector<int64_t>> count(static_cast<size_t>(nt));
  std::vector<int64_t> row_begin(static_cast<size_t>(nt + 1));
  for (int j = 0; j <= nt; ++j) {
    // Blocks of about equal nnz.
    const int64_t target = a.nnz() * j / nt;
    row_begin[j] = std::lower_bound(a.indptr.begin(), a.indptr.end(), target) - a.indptr.begin();
  }
  row_begin[0] = 0;
  row_begin[nt] = a.rows;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int j = omp_get_thread_num();
    std::vector<int64_t>& c = count[static_cast<size_t>(j)];
    c.assign(static_cast<size_t>(a.cols), 0);
    const int64_t p0 = a.indptr[row_begin[j]], p1 = a.indptr[row_begin[j + 1]];
    for (int64_t p = p0; p < p1; ++p) ++c[a.indices[p]];
#pragma omp barrier
#pragma omp single
    {
      t.indptr.assign(static_cast<size_t>(a.cols + 1), 0);
      int64_t at = 0;
      for (int64_t col = 0; col < a.cols; ++col) {
        t.indptr[col] = at;
        for (int i = 0; i < nt; ++i) {
          const int64_t n = count[i][col];
          count[i][col] = at;  // becomes thread i's next slot in column col
          at += n;
        }
      }
      t.indptr[a.cols] = at;
    }
    for (int64_t r = row_begin[j]; r < row_begin[j + 1]; ++r)
      for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
        const int64_t q = c[a.indices[p]]++;
        t.indices[q] = static_cast<int32_t>(r);
        t.values[q] = a.values[p];
      }
  }
  return t;
}

void spmm(const CsrMatrix& a, const float* dense, int64_t k, float* out, int threads) {
  // Small products run serially: a parallel region costs more than they do.
  const bool parallel = threads > 1 && (a.nnz() + a.rows) * k > (1 << 18);
  if (!parallel) {
    spmm_block(a, dense, k, out, 0, a.rows);
    return;
  }
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (a.rows + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4)
  for (int64_t b = 0; b < blocks; ++b)
    spmm_block(a, dense, k, out, b * kBlock, std::min(a.rows, (b + 1) * kBlock));
}

}  // namespace cbtm::tfidf
