// Register-blocked squared distances with FMA; see distances.h.
#include "kmeans_core/distances.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace cbtm::kmeans {
namespace {
constexpr int64_t kPad = 16;  // centres are padded to a multiple of 16 (one AVX-512 vector)

// Every kernel computes each entry as acc = 0; acc = fma(x[d], c[d], acc) for d = 0..dim-1,
// then max(0, ||x||^2 + ||c||^2 - 2 acc): the same rounding in every lane of every kernel,
// so all kernels (and all thread counts) give the same bits.
struct Job {
  const Matrix* x;
  const float* ct;  // dim x kp: centres transposed, zero padded
  int64_t kp;
  int64_t k_out;    // centres (columns of out)
  const float* xn;
  const float* cn;  // kp values
  float* out;
};

inline void store(const Job& job, int64_t i, int64_t j0, int64_t width, const float* acc) {
  float* o = job.out + i * job.k_out;
  for (int64_t c = 0; c < width && j0 + c < job.k_out; ++c)
    o[j0 + c] = std::max(0.f, job.xn[i] + job.cn[j0 + c] - 2.f * acc[c]);
}

// ---- AVX-512F: 8 points x (16 * NV) centres per tile -----------------------------------
template <int NV>
__attribute__((target("avx512f"), always_inline)) inline void tile512(const Job& job,
                                                                       int64_t i0, int64_t j0) {
  constexpr int R = 8;
  const Matrix& x = *job.x;
  const int64_t dim = x.cols, n = x.rows;
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = x.row(std::min(i0 + r, n - 1));
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t d = 0; d < dim; ++d) {
    const float* cr = job.ct + d * job.kp + j0;
    __m512 c[NV];
    for (int v = 0; v < NV; ++v) c[v] = _mm512_loadu_ps(cr + 16 * v);
    for (int r = 0; r < R; ++r) {
      const __m512 xv = _mm512_set1_ps(xr[r][d]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(xv, c[v], acc[r][v]);
    }
  }
  // The epilogue in vectors, with the same operations as store(): (xn + cn) - 2 acc, >= 0.
  const __m512 two = _mm512_set1_ps(2.f), zero = _mm512_setzero_ps();
  __m512 cn[NV];
  __mmask16 mask[NV];
  for (int v = 0; v < NV; ++v) {
    cn[v] = _mm512_loadu_ps(job.cn + j0 + 16 * v);
    const int64_t left = job.k_out - (j0 + 16 * v);
    mask[v] = left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
  }
  for (int r = 0; r < R && i0 + r < n; ++r) {
    const __m512 xn = _mm512_set1_ps(job.xn[i0 + r]);
    float* o = job.out + (i0 + r) * job.k_out + j0;
    for (int v = 0; v < NV; ++v) {
      const __m512 d = _mm512_sub_ps(_mm512_add_ps(xn, cn[v]), _mm512_mul_ps(two, acc[r][v]));
      _mm512_mask_storeu_ps(o + 16 * v, mask[v], _mm512_max_ps(d, zero));
    }
  }
}

__attribute__((target("avx512f"))) void rows512(const Job& job, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; i += 8) {
    int64_t j0 = 0;
    for (; j0 + 32 <= job.kp; j0 += 32) tile512<2>(job, i, j0);
    for (; j0 < job.kp; j0 += 16) tile512<1>(job, i, j0);
  }
}

// ---- AVX2 + FMA: 4 points x 16 centres per tile ------------------------------------------
__attribute__((target("avx2,fma"))) void rows256(const Job& job, int64_t i0, int64_t i1) {
  constexpr int R = 4;
  const Matrix& x = *job.x;
  const int64_t dim = x.cols, n = x.rows;
  alignas(32) float buf[16];
  for (int64_t i = i0; i < i1; i += R) {
    const float* xr[R];
    for (int r = 0; r < R; ++r) xr[r] = x.row(std::min(i + r, n - 1));
    for (int64_t j0 = 0; j0 < job.kp; j0 += 16) {
      __m256 acc[R][2];
      for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
      for (int64_t d = 0; d < dim; ++d) {
        const float* cr = job.ct + d * job.kp + j0;
        const __m256 c0 = _mm256_loadu_ps(cr), c1 = _mm256_loadu_ps(cr + 8);
        for (int r = 0; r < R; ++r) {
          const __m256 xv = _mm256_set1_ps(xr[r][d]);
          acc[r][0] = _mm256_fmadd_ps(xv, c0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(xv, c1, acc[r][1]);
        }
      }
      for (int r = 0; r < R && i + r < n; ++r) {
        _mm256_store_ps(buf, acc[r][0]);
        _mm256_store_ps(buf + 8, acc[r][1]);
        store(job, i + r, j0, 16, buf);
      }
    }
  }
}

// ---- portable: std::fma one entry at a time (CPUs without FMA; slow, same bits) --------
void rows_scalar(const Job& job, int64_t i0, int64_t i1) {
  const Matrix& x = *job.x;
  const int64_t dim = x.cols;
  std::vector<float> acc(static_cast<size_t>(job.kp));
  for (int64_t i = i0; i < std::min(i1, x.rows); ++i) {
    const float* xr = x.row(i);
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int64_t d = 0; d < dim; ++d) {
      const float* cr = job.ct + d * job.kp;
      for (int64_t j = 0; j < job.kp; ++j) acc[j] = std::fma(xr[d], cr[j], acc[j]);
    }
    store(job, i, 0, job.kp, acc.data());
  }
}

DistanceKernel best_kernel() {
  static const DistanceKernel k =
      __builtin_cpu_supports("avx512f")                                        ? DistanceKernel::kAvx512
      : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? DistanceKernel::kAvx2
                                                                           : DistanceKernel::kScalar;
  return k;
}
}  // namespace

bool kernel_available(DistanceKernel k) {
  switch (k) {
    case DistanceKernel::kAuto:
    case DistanceKernel::kScalar:
      return true;
    case DistanceKernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case DistanceKernel::kAvx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
}

std::vector<float> row_sqnorms(const Matrix& x, int threads) {
  std::vector<float> out(static_cast<size_t>(x.rows));
#pragma omp parallel for num_threads(threads) schedule(static) if (x.rows * x.cols >= (1 << 16))
  for (int64_t i = 0; i < x.rows; ++i) {
    const float* r = x.row(i);
    float s = 0.f;
    for (int64_t d = 0; d < x.cols; ++d) s += r[d] * r[d];
    out[i] = s;
  }
  return out;
}

namespace detail {
void squared_distances(const Matrix& x, const Matrix& c, float* out, int threads,
                       DistanceKernel kernel, const float* x_sqnorms) {
  const int64_t n = x.rows, k = c.rows, dim = x.cols;
  if (n == 0 || k == 0) return;
  if (kernel == DistanceKernel::kAuto) kernel = best_kernel();
  if (!kernel_available(kernel))
    throw std::invalid_argument("squared_distances: this CPU lacks the requested kernel");
  // Centres transposed to dim x kp (kp: k rounded up to a multiple of 16), zero padded.
  const int64_t kp = (k + kPad - 1) / kPad * kPad;
  std::vector<float> ct(static_cast<size_t>(dim * kp), 0.f);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t d = 0; d < dim; ++d) ct[d * kp + j] = c.at(j, d);
  std::vector<float> own_xn;
  if (!x_sqnorms) own_xn = row_sqnorms(x, threads);
  const float* xn = x_sqnorms ? x_sqnorms : own_xn.data();
  std::vector<float> cn = row_sqnorms(c, 1);
  cn.resize(static_cast<size_t>(kp), 0.f);
  const Job job{&x, ct.data(), kp, k, xn, cn.data(), out};
  constexpr int64_t kChunk = 64;  // points per task (a multiple of every kernel's tile)
  const int64_t tasks = (n + kChunk - 1) / kChunk;
  const bool parallel = threads > 1 && n * kp * dim >= (int64_t(1) << 18);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) if (parallel)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t i0 = t * kChunk, i1 = std::min(n, i0 + kChunk);
    if (kernel == DistanceKernel::kAvx512)
      rows512(job, i0, i1);
    else if (kernel == DistanceKernel::kAvx2)
      rows256(job, i0, i1);
    else
      rows_scalar(job, i0, i1);
  }
}
}  // namespace detail

void squared_distances(const Matrix& x, const Matrix& c, float* out, int threads) {
  detail::squared_distances(x, c, out, threads, DistanceKernel::kAuto);
}

void squared_distances(const Matrix& x, const std::vector<float>& x_sqnorms, const Matrix& c,
                       float* out, int threads) {
  if (static_cast<int64_t>(x_sqnorms.size()) != x.rows)
    throw std::invalid_argument("squared_distances: one squared norm per row of x expected");
  detail::squared_distances(x, c, out, threads, DistanceKernel::kAuto, x_sqnorms.data());
}

void row_argmin(const float* d, int64_t n, int32_t k, int32_t* arg, float* best, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (n * k >= (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    const float* r = d + i * k;
    int32_t a = 0;
    for (int32_t j = 1; j < k; ++j)
      if (r[j] < r[a]) a = j;
    arg[i] = a;
    best[i] = r[a];
  }
}

}  // namespace cbtm::kmeans
