#include "randomized_svd.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>

#include "cbtm/error.h"

namespace cbtm::tfidf {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Sets LibTorch's intra-op thread count for a scope.
class TorchThreads {
 public:
  explicit TorchThreads(int n) : saved_(at::get_num_threads()) {
    if (n != saved_) at::set_num_threads(n);
  }
  ~TorchThreads() {
    if (at::get_num_threads() != saved_) at::set_num_threads(saved_);
  }

 private:
  int saved_;
};

/// x * d for a CSR x and a dense float tensor d (x.cols x k).
torch::Tensor times(const CsrMatrix& x, const torch::Tensor& d, int threads) {
  const torch::Tensor dc = d.contiguous();
  torch::Tensor out = torch::empty({x.rows, dc.size(1)}, torch::kFloat32);
  spmm(x, dc.data_ptr<float>(), dc.size(1), out.data_ptr<float>(), threads);
  return out;
}

// ---- small l x l algebra in plain C++ ---------------------------------------------------
// LAPACK on l x l (l ~ 110) matrices through a multithreaded BLAS costs more in thread
// hand-offs than in arithmetic, and collapses when the cores are shared (measured on the
// 2-core build machine under load: Cholesky + triangular inverse 0.1 s, SVD 3.6 s, versus
// 0.1 ms and 10 ms on one thread), so these run serially here.

/// Upper-triangular r with g = r^T r (g symmetric positive definite, row-major l x l).
/// False if g is not numerically positive definite or r is too ill-conditioned
/// (diagonal ratio above `max_ratio`) for CholeskyQR in float.
bool cholesky_upper(const std::vector<double>& g, int64_t l, std::vector<double>& r,
                    double max_ratio) {
  r.assign(static_cast<size_t>(l * l), 0.0);
  double dmin = INFINITY, dmax = 0;
  for (int64_t j = 0; j < l; ++j) {
    double d = g[j * l + j];
    for (int64_t k = 0; k < j; ++k) d -= r[k * l + j] * r[k * l + j];
    if (!(d > 0)) return false;
    const double rjj = std::sqrt(d);
    r[j * l + j] = rjj;
    dmin = std::min(dmin, rjj);
    dmax = std::max(dmax, rjj);
    for (int64_t i = j + 1; i < l; ++i) {
      double v = g[j * l + i];
      for (int64_t k = 0; k < j; ++k) v -= r[k * l + j] * r[k * l + i];
      r[j * l + i] = v / rjj;
    }
  }
  return dmax / dmin < max_ratio;
}

/// The inverse of an upper-triangular l x l matrix (row-major), by back substitution.
std::vector<double> inverse_upper(const std::vector<double>& r, int64_t l) {
  std::vector<double> inv(static_cast<size_t>(l * l), 0.0);
  for (int64_t c = 0; c < l; ++c) {  // column c of the inverse: r x = e_c
    for (int64_t i = c; i >= 0; --i) {
      double v = i == c ? 1.0 : 0.0;
      for (int64_t k = i + 1; k <= c; ++k) v -= r[i * l + k] * inv[k * l + c];
      inv[i * l + c] = v / r[i * l + i];
    }
  }
  return inv;
}

/// a * b for l x l row-major matrices.
std::vector<double> matmul_small(const std::vector<double>& a, const std::vector<double>& b,
                                 int64_t l) {
  std::vector<double> c(static_cast<size_t>(l * l), 0.0);
  for (int64_t i = 0; i < l; ++i)
    for (int64_t k = 0; k < l; ++k) {
      const double aik = a[i * l + k];
      for (int64_t j = 0; j < l; ++j) c[i * l + j] += aik * b[k * l + j];
    }
  return c;
}

torch::Tensor to_tensor(const std::vector<double>& v, int64_t l) {
  return torch::from_blob(const_cast<double*>(v.data()), {l, l}, torch::kFloat64)
      .to(torch::kFloat32);
}

/// A thin QR factorisation y = q r (y: m x l float, m >= l; r: l x l, row-major double).
///
/// `passes` rounds of CholeskyQR (Fukaya et al. 2014): r_i = chol(q^T q), q <- q r_i^-1.
/// Its heavy work is two GEMMs per pass, which multithreaded BLAS runs well, unlike
/// Householder QR (LAPACK geqrf: a long chain of small parallel steps; measured here under
/// load, 2000 x 110 took 6.7 s on 2 threads, 7 ms on 1). One pass normalises the power
/// iterations (as scikit-learn's LU does); two (CholeskyQR2) give an orthonormal q. Falls
/// back to single-threaded Householder QR when y is rank-deficient or ill-conditioned.
std::pair<torch::Tensor, std::vector<double>> thin_qr(const torch::Tensor& y, int passes) {
  const int64_t l = y.size(1);
  torch::Tensor q = y;
  std::vector<double> r(static_cast<size_t>(l * l), 0.0), ri;
  for (int64_t i = 0; i < l; ++i) r[i * l + i] = 1.0;
  for (int pass = 0; pass < passes; ++pass) {
    const torch::Tensor g = torch::matmul(q.t(), q).to(torch::kFloat64).contiguous();
    const std::vector<double> gv(g.data_ptr<double>(), g.data_ptr<double>() + l * l);
    if (!cholesky_upper(gv, l, ri, 300.0)) {
      TorchThreads one(1);
      auto [hq, hr] = torch::linalg_qr(y, "reduced");
      const torch::Tensor hrd = hr.to(torch::kFloat64).contiguous();
      return {hq.contiguous(),
              std::vector<double>(hrd.data_ptr<double>(), hrd.data_ptr<double>() + l * l)};
    }
    q = torch::matmul(q, to_tensor(inverse_upper(ri, l), l));
    r = matmul_small(ri, r, l);
  }
  return {q.contiguous(), r};
}

/// An orthonormal basis of the columns of y.
torch::Tensor orthonormalize(const torch::Tensor& y) { return thin_qr(y, 2).first; }

/// Normalises the columns of y between power iterations (not orthonormal, well scaled).
torch::Tensor normalize_columns(const torch::Tensor& y) { return thin_qr(y, 1).first; }

}  // namespace

std::vector<float> gaussian_matrix(int64_t rows, int64_t cols, uint64_t seed, int threads) {
  const int64_t n = rows * cols;
  std::vector<float> out(static_cast<size_t>(n));
  const uint64_t base = splitmix64(seed ^ 0x5DEECE66Dull);
  const int64_t pairs = (n + 1) / 2;
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(static) if (n >= (1 << 16))
  for (int64_t p = 0; p < pairs; ++p) {
    // Box-Muller on two independent uniforms from a counter-based generator.
    const uint64_t a = splitmix64(base + 2 * static_cast<uint64_t>(p));
    const uint64_t b = splitmix64(base + 2 * static_cast<uint64_t>(p) + 1);
    const double u1 = (static_cast<double>(a >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;          // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double t = 2.0 * M_PI * u2;
    out[2 * p] = static_cast<float>(r * std::cos(t));
    if (2 * p + 1 < n) out[2 * p + 1] = static_cast<float>(r * std::sin(t));
  }
  return out;
}

SvdResult randomized_svd(const CsrMatrix& a, const RandomizedSvdOptions& o) {
  const int64_t small = std::min(a.rows, a.cols);
  if (o.components < 1 || o.components > small)
    throw Error("randomized SVD: " + std::to_string(o.components) + " components asked of a " +
                std::to_string(a.rows) + " x " + std::to_string(a.cols) + " matrix (at most " +
                std::to_string(small) + ")");
  if (o.oversamples < 0 || o.power_iters < 0)
    throw Error("randomized SVD: oversamples and power_iters must be >= 0");
  const int threads = std::max(1, o.threads);
  const int64_t l = std::min(o.components + o.oversamples, small);
  TorchThreads torch_threads(threads);
  torch::NoGradGuard no_grad;

  // Work on M = a, or on M = a^T when a has fewer rows than columns (as scikit-learn
  // does): the Gaussian test matrix then has min(rows, cols) rows.
  const CsrMatrix at = transpose(a);
  const bool wide = a.rows < a.cols;
  const CsrMatrix& m = wide ? at : a;
  const CsrMatrix& mt = wide ? a : at;

  std::vector<float> omega = gaussian_matrix(m.cols, l, o.seed, threads);
  torch::Tensor q = times(m, torch::from_blob(omega.data(), {m.cols, l}, torch::kFloat32), threads);
  for (int64_t i = 0; i < o.power_iters; ++i) {
    q = times(mt, normalize_columns(q), threads);
    q = times(m, normalize_columns(q), threads);
  }
  q = orthonormalize(q);                           // m.rows x l, basis of range(M)
  const torch::Tensor bt = times(mt, q, threads);  // (Q^T M)^T: m.cols x l
  // bt = Q2 R and R = U S Vh (small, exact)  =>  M ~ Q Vh^T S (Q2 U)^T: the right singular
  // vectors of M are Q2 U, the left ones Q Vh^T.
  auto [q2, r] = thin_qr(bt, 2);
  torch::Tensor u, s, vh;
  {
    TorchThreads one(1);  // see "small l x l algebra" above
    std::tie(u, s, vh) =
        torch::linalg_svd(torch::from_blob(r.data(), {l, l}, torch::kFloat64), false);
  }
  torch::Tensor v = wide ? torch::matmul(q, vh.t().to(torch::kFloat32))  // right singular
                         : torch::matmul(q2, u.to(torch::kFloat32));     // vectors of a
  v = v.narrow(1, 0, o.components).t().contiguous();                     // components x a.cols
  s = s.to(torch::kFloat32);

  SvdResult out;
  out.components = Matrix(o.components, a.cols);
  std::copy(v.data_ptr<float>(), v.data_ptr<float>() + v.numel(), out.components.data.begin());
  // Signs: the entry of largest magnitude of every component is positive.
  for (int64_t k = 0; k < o.components; ++k) {
    float* row = out.components.row(k);
    const float* top = std::max_element(row, row + a.cols,
                                        [](float x, float y) { return std::abs(x) < std::abs(y); });
    if (*top < 0)
      for (int64_t j = 0; j < a.cols; ++j) row[j] = -row[j];
  }
  const torch::Tensor sv = s.narrow(0, 0, o.components).contiguous();
  out.singular_values.assign(sv.data_ptr<float>(), sv.data_ptr<float>() + sv.numel());
  return out;
}

}  // namespace cbtm::tfidf
