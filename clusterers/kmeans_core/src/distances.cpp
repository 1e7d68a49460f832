// Register-blocked squared distances; see distances.h.
#include "kmeans_core/distances.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace cbtm::kmeans {
namespace {
constexpr int64_t kRows = 4;   // points per tile
constexpr int64_t kPad = 16;   // centres are padded to a multiple of the widest tile

// W floats (GCC/Clang vector extension): SSE2 for W = 4, AVX for W = 8.
template <int W>
struct Vec {
  typedef float type __attribute__((vector_size(4 * W)));
};

// acc[r][0..2W) = x_r . ct[:, j0..j0+2W) for the 4 rows xr[0..3]; ct is the transposed,
// padded centre matrix with leading dimension ldc. Every lane computes sum_d x[d] * c[d]
// in the same order with separate multiply and add, so W = 4 and W = 8 agree bit for bit.
template <int W>
__attribute__((always_inline)) inline void tile(const float* const xr[kRows], const float* ct,
                                                int64_t ldc, int64_t dim, float* acc) {
  typedef typename Vec<W>::type V;
  V a00 = {}, a01 = {}, a10 = {}, a11 = {}, a20 = {}, a21 = {}, a30 = {}, a31 = {};
  for (int64_t d = 0; d < dim; ++d) {
    const float* cr = ct + d * ldc;
    V c0, c1;
    std::memcpy(&c0, cr, sizeof c0);
    std::memcpy(&c1, cr + W, sizeof c1);
    const V x0 = V{} + xr[0][d], x1 = V{} + xr[1][d];
    const V x2 = V{} + xr[2][d], x3 = V{} + xr[3][d];
    a00 += x0 * c0;
    a01 += x0 * c1;
    a10 += x1 * c0;
    a11 += x1 * c1;
    a20 += x2 * c0;
    a21 += x2 * c1;
    a30 += x3 * c0;
    a31 += x3 * c1;
  }
  const V out[kRows][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
  std::memcpy(acc, out, sizeof out);
}

struct Job {
  const Matrix* x;
  const float* ct;  // dim x kp
  int64_t kp;
  int64_t k_out;    // centres (columns of out)
  const float* xn;
  const float* cn;
  const float* zero;  // dim zeros (rows past the end)
  float* out;
};

// Row blocks [b0, b1) of the output.
template <int W>
__attribute__((always_inline)) inline void blocks(const Job& job, int64_t b0, int64_t b1) {
  const Matrix& x = *job.x;
  const int64_t n = x.rows, dim = x.cols, k = job.kp;  // k: padded centre count
  const int64_t kc = 2 * W;
  alignas(32) float acc[kRows * 2 * W];
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * kRows;
    const float* xr[kRows];
    for (int64_t r = 0; r < kRows; ++r) xr[r] = i0 + r < n ? x.row(i0 + r) : job.zero;
    for (int64_t j0 = 0; j0 < k; j0 += kc) {
      tile<W>(xr, job.ct + j0, job.kp, dim, acc);
      for (int64_t r = 0; r < kRows && i0 + r < n; ++r) {
        float* o = job.out + (i0 + r) * job.k_out;
        for (int64_t cc = 0; cc < kc && j0 + cc < job.k_out; ++cc)
          o[j0 + cc] = std::max(0.f, job.xn[i0 + r] + job.cn[j0 + cc] - 2.f * acc[r * kc + cc]);
      }
    }
  }
}

void blocks_sse(const Job& job, int64_t b0, int64_t b1) { blocks<4>(job, b0, b1); }
__attribute__((target("avx"))) void blocks_avx(const Job& job, int64_t b0, int64_t b1) {
  blocks<8>(job, b0, b1);
}
bool have_avx() {
  static const bool yes = __builtin_cpu_supports("avx");
  return yes;
}
}  // namespace

std::vector<float> row_sqnorms(const Matrix& x, int threads) {
  std::vector<float> out(static_cast<size_t>(x.rows));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < x.rows; ++i) {
    const float* r = x.row(i);
    float s = 0.f;
    for (int64_t d = 0; d < x.cols; ++d) s += r[d] * r[d];
    out[i] = s;
  }
  return out;
}

namespace detail {
void squared_distances(const Matrix& x, const Matrix& c, float* out, int threads, bool avx,
                       const float* x_sqnorms) {
  const int64_t n = x.rows, k = c.rows, dim = x.cols;
  if (n == 0 || k == 0) return;
  // Centres transposed to dim x kp (kp: k rounded up to the widest tile), zero padded.
  const int64_t kp = (k + kPad - 1) / kPad * kPad;
  std::vector<float> ct(static_cast<size_t>(dim * kp), 0.f);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t d = 0; d < dim; ++d) ct[d * kp + j] = c.at(j, d);
  std::vector<float> own_xn;
  if (!x_sqnorms) own_xn = row_sqnorms(x, threads);
  const float* xn = x_sqnorms ? x_sqnorms : own_xn.data();
  std::vector<float> cn = row_sqnorms(c, threads);
  cn.resize(static_cast<size_t>(kp), 0.f);
  const std::vector<float> zero(static_cast<size_t>(dim), 0.f);
  const Job job{&x, ct.data(), kp, k, xn, cn.data(), zero.data(), out};
  const int64_t nblocks = (n + kRows - 1) / kRows;
  const int64_t chunk = 16;  // row blocks per task
  const int64_t tasks = (nblocks + chunk - 1) / chunk;
  const bool use_avx = avx && have_avx();
#pragma omp parallel for num_threads(threads) schedule(dynamic)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b0 = t * chunk, b1 = std::min(nblocks, b0 + chunk);
    if (use_avx)
      blocks_avx(job, b0, b1);
    else
      blocks_sse(job, b0, b1);
  }
}
}  // namespace detail

void squared_distances(const Matrix& x, const Matrix& c, float* out, int threads) {
  detail::squared_distances(x, c, out, threads, true);
}

void squared_distances(const Matrix& x, const std::vector<float>& x_sqnorms, const Matrix& c,
                       float* out, int threads) {
  if (static_cast<int64_t>(x_sqnorms.size()) != x.rows)
    throw std::invalid_argument("squared_distances: one squared norm per row of x expected");
  detail::squared_distances(x, c, out, threads, true, x_sqnorms.data());
}

void row_argmin(const float* d, int64_t n, int32_t k, int32_t* arg, float* best, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
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
