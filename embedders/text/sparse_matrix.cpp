#include "sparse_matrix.h"

#include <omp.h>

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>

// GCC 12's _mm512_cvtph_ps starts from an "undefined" vector and warns about it.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

std::atomic<bool> g_portable{false};  // detail::use_portable_kernels

bool have_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes && !g_portable.load(std::memory_order_relaxed);
}

// ---- half precision ----------------------------------------------------------------------
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      uint32_t m = man;
      do {
        ++e;
        m <<= 1;
      } while (!(m & 0x400u));
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (m & 0x3FFu) << 13;
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t float_to_half(float f) {  // round to nearest even, as F16C (vcvtps2ph, imm 0)
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7FFFFFFFu;
  if (absx >= 0x7F800000u)  // inf or NaN (NaN stays a quiet NaN)
    return static_cast<uint16_t>(sign | 0x7C00u | (absx > 0x7F800000u ? 0x200u | ((absx >> 13) & 0x3FFu) : 0u));
  if (absx >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to inf
  if (absx < 0x38800000u) {  // below the smallest normal half: a subnormal (or zero)
    if (absx < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to 0
    const uint32_t e = absx >> 23, man = (absx & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 .. 24
    const uint32_t half_man = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    const uint32_t r = half_man + (rem > mid || (rem == mid && (half_man & 1u)));
    return static_cast<uint16_t>(sign | r);
  }
  const uint32_t e = (absx >> 23) - 127 + 15, man = absx & 0x7FFFFFu;
  uint32_t h = e << 10 | man >> 13;
  const uint32_t rem = man & 0x1FFFu;
  h += rem > 0x1000u || (rem == 0x1000u && (h & 1u));  // may carry into the exponent: fine
  return static_cast<uint16_t>(sign | h);
}

// Rows [r0, r1) of out = a * dense, dense in half precision (leading dimension ld).
template <class Out>
void spmm_half_rows(const CsrMatrix& a, const uint16_t* dense, int64_t k, int64_t ld, Out* out,
                    int64_t r0, int64_t r1) {
  std::vector<float> acc(static_cast<size_t>(k));
  for (int64_t r = r0; r < r1; ++r) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
      const float v = a.values[p];
      const uint16_t* d = dense + static_cast<int64_t>(a.indices[p]) * ld;
      for (int64_t j = 0; j < k; ++j) acc[j] = acc[j] + v * half_to_float(d[j]);
    }
    if constexpr (std::is_same_v<Out, float>) {
      std::copy(acc.begin(), acc.end(), out + r * k);
    } else {
      for (int64_t j = 0; j < k; ++j) out[r * ld + j] = float_to_half(acc[j]);
      for (int64_t j = k; j < ld; ++j) out[r * ld + j] = 0;
    }
  }
}

// The AVX-512 kernel for half operands: NV vectors of 16 columns per pass, accumulators in
// registers; the padding of the half rows (zeros) is read and discarded.
template <int NV, class Out>
__attribute__((target("avx512f"))) void spmm_half_rows512(const CsrMatrix& a, const uint16_t* dense,
                                                          int64_t k, int64_t ld, Out* out,
                                                          int64_t r0, int64_t r1, int64_t c0) {
  const int64_t* indptr = a.indptr.data();
  const int32_t* indices = a.indices.data();
  const float* values = a.values.data();
  const int64_t nnz = a.nnz();
  const int64_t w = std::min<int64_t>(16 * NV, k - c0);
  const int64_t tail = w - 16 * (NV - 1);
  const __mmask16 last = tail >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << tail) - 1);
  for (int64_t r = r0; r < r1; ++r) {
    __m512 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = _mm512_setzero_ps();
    for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
      if (p + kPrefetch < nnz) {
        const char* next = reinterpret_cast<const char*>(
            dense + static_cast<int64_t>(indices[p + kPrefetch]) * ld + c0);
        for (int b = 0; b < NV * 32; b += 64) __builtin_prefetch(next + b);
      }
      const __m512 val = _mm512_set1_ps(values[p]);
      const uint16_t* d = dense + static_cast<int64_t>(indices[p]) * ld + c0;
      for (int v = 0; v < NV; ++v) {
        const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + 16 * v)));
        acc[v] = _mm512_add_ps(acc[v], _mm512_mul_ps(val, x));
      }
    }
    if constexpr (std::is_same_v<Out, float>) {
      float* o = out + r * k + c0;
      for (int v = 0; v < NV; ++v) {
        if (v + 1 < NV)
          _mm512_storeu_ps(o + 16 * v, acc[v]);
        else
          _mm512_mask_storeu_ps(o + 16 * v, last, acc[v]);
      }
    } else {
      uint16_t* o = out + r * ld + c0;
      for (int v = 0; v < NV; ++v) {
        // Columns past k (the padding) are 0 + 0 * 0 = 0 already, as the padding must be.
        const __m256i h = _mm512_cvtps_ph(acc[v], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 16 * v), h);
      }
    }
  }
}

template <class Out>
__attribute__((target("avx512f"))) void spmm_half_block512(const CsrMatrix& a, const uint16_t* dense,
                                                           int64_t k, int64_t ld, Out* out,
                                                           int64_t r0, int64_t r1) {
  for (int64_t c0 = 0; c0 < k; c0 += 128) {
    const int nv = static_cast<int>((std::min<int64_t>(128, k - c0) + 15) / 16);
    switch (nv) {
      case 1: spmm_half_rows512<1>(a, dense, k, ld, out, r0, r1, c0); break;
      case 2: spmm_half_rows512<2>(a, dense, k, ld, out, r0, r1, c0); break;
      case 3: spmm_half_rows512<3>(a, dense, k, ld, out, r0, r1, c0); break;
      case 4: spmm_half_rows512<4>(a, dense, k, ld, out, r0, r1, c0); break;
      case 5: spmm_half_rows512<5>(a, dense, k, ld, out, r0, r1, c0); break;
      case 6: spmm_half_rows512<6>(a, dense, k, ld, out, r0, r1, c0); break;
      case 7: spmm_half_rows512<7>(a, dense, k, ld, out, r0, r1, c0); break;
      default: spmm_half_rows512<8>(a, dense, k, ld, out, r0, r1, c0); break;
    }
  }
}

template <class Out>
void spmm_half(const CsrMatrix& a, const uint16_t* dense, int64_t k, Out* out, int threads) {
  const int64_t ld = half_ld(k);
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (a.rows + kBlock - 1) / kBlock;
  const bool parallel = threads > 1 && (a.nnz() + a.rows) * k > (1 << 18);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) if (parallel)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kBlock, r1 = std::min(a.rows, r0 + kBlock);
    if (have_avx512())
      spmm_half_block512(a, dense, k, ld, out, r0, r1);
    else
      spmm_half_rows(a, dense, k, ld, out, r0, r1);
  }
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
  // Blocks are handed out by `omp for`, not by thread number: OpenMP may give the region
  // fewer threads than nt (OMP_THREAD_LIMIT, OMP_DYNAMIC, a nested region), and a block
  // nobody owned would leave its counts empty and its entries unscattered.
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
#pragma omp for schedule(static)
    for (int j = 0; j < nt; ++j) {
      std::vector<int64_t>& c = count[static_cast<size_t>(j)];
      c.assign(static_cast<size_t>(a.cols), 0);
      const int64_t p0 = a.indptr[row_begin[j]], p1 = a.indptr[row_begin[j + 1]];
      for (int64_t p = p0; p < p1; ++p) ++c[a.indices[p]];
    }
#pragma omp single
    {
      t.indptr.assign(static_cast<size_t>(a.cols + 1), 0);
      int64_t at = 0;
      for (int64_t col = 0; col < a.cols; ++col) {
        t.indptr[col] = at;
        for (int i = 0; i < nt; ++i) {
          const int64_t n = count[i][col];
          count[i][col] = at;  // becomes block i's next slot in column col
          at += n;
        }
      }
      t.indptr[a.cols] = at;
    }
#pragma omp for schedule(static)
    for (int j = 0; j < nt; ++j) {
      std::vector<int64_t>& c = count[static_cast<size_t>(j)];
      for (int64_t r = row_begin[j]; r < row_begin[j + 1]; ++r)
        for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) {
          const int64_t q = c[a.indices[p]]++;
          t.indices[q] = static_cast<int32_t>(r);
          t.values[q] = a.values[p];
        }
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

namespace {
__attribute__((target("avx512f"))) void to_half_row512(const float* in, int64_t k, uint16_t* out) {
  for (int64_t c = 0; c < half_ld(k); c += 16) {
    const int64_t left = k - c;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(m, in + c);  // the padding reads as 0
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c),
                        _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}
__attribute__((target("avx512f"))) void from_half_row512(const uint16_t* in, int64_t k, float* out) {
  for (int64_t c = 0; c < k; c += 16) {
    const int64_t left = k - c;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + c)));
    _mm512_mask_storeu_ps(out + c, m, x);
  }
}
}  // namespace

namespace detail {
void use_portable_kernels(bool on) { g_portable.store(on); }
}  // namespace detail

void to_half(const float* in, int64_t rows, int64_t k, uint16_t* out, int threads) {
  const int64_t ld = half_ld(k);
  const bool fast = have_avx512();
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(static) if (rows * k >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    if (fast) {
      to_half_row512(in + r * k, k, out + r * ld);
      continue;
    }
    for (int64_t c = 0; c < k; ++c) out[r * ld + c] = float_to_half(in[r * k + c]);
    for (int64_t c = k; c < ld; ++c) out[r * ld + c] = 0;
  }
}

void from_half(const uint16_t* in, int64_t rows, int64_t k, float* out, int threads) {
  const int64_t ld = half_ld(k);
  const bool fast = have_avx512();
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(static) if (rows * k >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    if (fast) {
      from_half_row512(in + r * ld, k, out + r * k);
      continue;
    }
    for (int64_t c = 0; c < k; ++c) out[r * k + c] = half_to_float(in[r * ld + c]);
  }
}

void spmm(const CsrMatrix& a, const uint16_t* dense, int64_t k, float* out, int threads) {
  spmm_half(a, dense, k, out, threads);
}

void spmm(const CsrMatrix& a, const uint16_t* dense, int64_t k, uint16_t* out, int threads) {
  spmm_half(a, dense, k, out, threads);
}

}  // namespace cbtm::tfidf
