#include "randomized_svd.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>

#include "cbtm/error.h"
#include "cbtm/hash.h"
#include <chrono>
#include <cstdio>
static double T_(){return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();}
#ifdef CBTM_SVD_TRACE
#define TP(msg) do{double t_=T_(); std::fprintf(stderr,"  svd %-14s %.3f\n",msg,t_-tlast_); tlast_=t_;}while(0)
#else
#define TP(msg) (void)tlast_
#endif

namespace cbtm::tfidf {
namespace {

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

/// out = x * d for a CSR x and dense float tensors d (x.cols x k) and out (x.rows x k),
/// reused between products (a fresh one would cost page faults each time).
void times(const CsrMatrix& x, const torch::Tensor& d, torch::Tensor& out, int threads) {
  const torch::Tensor dc = d.contiguous();
  if (!out.defined() || out.size(0) != x.rows || out.size(1) != dc.size(1))
    out = torch::empty({x.rows, dc.size(1)}, torch::kFloat32);
  spmm(x, dc.data_ptr<float>(), dc.size(1), out.data_ptr<float>(), threads);
}

torch::Tensor times(const CsrMatrix& x, const torch::Tensor& d, int threads) {
  torch::Tensor out;
  times(x, d, out, threads);
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

torch::Tensor to_tensor(const std::vector<double>& v, int64_t l) {
  return torch::from_blob(const_cast<double*>(v.data()), {l, l}, torch::kFloat64)
      .to(torch::kFloat32);
}

/// out = y R^-1 with R^T R ~ y^T y (one CholeskyQR pass, Fukaya et al. 2014): the columns
/// of y renormalised between power iterations (well scaled and nearly orthonormal; the
/// range is unchanged), as scikit-learn's LU normalisation does. Its heavy work is two
/// GEMMs, which multithreaded BLAS runs well, unlike Householder QR (LAPACK geqrf: a long
/// chain of small parallel steps; measured here under load, 2000 x 110 took 6.7 s on 2
/// threads, 7 ms on 1). Falls back to single-threaded Householder QR when y is
/// rank-deficient or too ill-conditioned for CholeskyQR in float.
void normalize_columns(const torch::Tensor& y, torch::Tensor& out) {
  const int64_t l = y.size(1);
  // Only the conditioning of the result matters here (any invertible R keeps the range), so
  // for a tall y the Gram matrix is estimated from an evenly strided sample of ~16k rows:
  // y R^-1 then has orthogonal columns up to the sampling error (~1%), at a fraction of the
  // cost of the full product.
  constexpr int64_t kSampleRows = 16384;
  const int64_t stride = std::max<int64_t>(1, y.size(0) / kSampleRows);
  const torch::Tensor ys = stride > 1 ? y.slice(0, 0, y.size(0), stride) : y;
  const torch::Tensor g = torch::matmul(ys.t(), ys).to(torch::kFloat64).contiguous();
  const std::vector<double> gv(g.data_ptr<double>(), g.data_ptr<double>() + l * l);
  std::vector<double> r;
  if (!cholesky_upper(gv, l, r, 300.0)) {
    TorchThreads one(1);
    out = std::get<0>(torch::linalg_qr(y, "reduced")).contiguous();
    return;
  }
  if (!out.defined() || out.sizes() != y.sizes()) out = torch::empty_like(y);
  torch::mm_out(out, y, to_tensor(inverse_upper(r, l), l));
}

}  // namespace

namespace {
/// The standard normal quantile (Wichura 1988, AS 241 PPND7: absolute error < 1e-6), for
/// p in (0, 1). Only basic arithmetic in the central 85%, a log and a sqrt in the tails.
inline double normal_quantile(double p) {
  const double q = p - 0.5;
  if (std::abs(q) <= 0.425) {
    const double r = 0.180625 - q * q;
    return q * (((59.109374720 * r + 159.29113202) * r + 50.434271938) * r + 3.3871327179) /
           (((67.187563600 * r + 78.757757664) * r + 17.895169469) * r + 1.0);
  }
  double r = std::sqrt(-std::log(q < 0 ? p : 1.0 - p));
  double v;
  if (r <= 5.0) {
    r -= 1.6;
    v = (((0.17023821103 * r + 1.3067284816) * r + 2.7568153900) * r + 1.4234372777) /
        ((0.12021132975 * r + 0.73700164250) * r + 1.0);
  } else {
    r -= 5.0;
    v = (((0.017337203997 * r + 0.42868294337) * r + 3.0812263860) * r + 6.6579051150) /
        ((0.012258202635 * r + 0.24197894225) * r + 1.0);
  }
  return q < 0 ? -v : v;
}
}  // namespace

std::vector<float> gaussian_matrix(int64_t rows, int64_t cols, uint64_t seed, int threads) {
  const int64_t n = rows * cols;
  std::vector<float> out(static_cast<size_t>(n));
  const uint64_t base = splitmix64(seed ^ 0x5DEECE66Dull);
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(static) if (n >= (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    // Inversion of one uniform in (0, 1) from a counter-based generator.
    const uint64_t a = splitmix64(base + static_cast<uint64_t>(i));
    const double u = (static_cast<double>(a >> 11) + 0.5) * 0x1.0p-53;
    out[i] = static_cast<float>(normal_quantile(u));
  }
  return out;
}

namespace {

/// Row-major l x l std::vector of a double tensor.
std::vector<double> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

/// Right singular vectors of `a` (cols x k: a column per component) from the explicit basis q of the range
/// of M (b x l, M = a^T when wide, else a) and B^T = M^T q: the path for rank-deficient
/// ranges, where the implicit Cholesky route does not apply.
torch::Tensor explicit_components(const CsrMatrix& mt, const torch::Tensor& y, bool wide,
                                  int64_t k, torch::Tensor& s, int threads) {
  TorchThreads one(1);
  const torch::Tensor q = std::get<0>(torch::linalg_qr(y, "reduced")).contiguous();
  const torch::Tensor bt = times(mt, q, threads);  // (q^T M)^T
  auto [u, sv, vh] = torch::linalg_svd(bt.to(torch::kFloat64), false);
  s = sv.to(torch::kFloat32);
  // B^T = u S vh: left singular vectors of M are q vh^T, right ones u.
  const torch::Tensor v = wide ? torch::matmul(q, vh.t().to(torch::kFloat32))
                               : u.to(torch::kFloat32);
  return v.narrow(1, 0, k).contiguous();  // cols x k
}

}  // namespace

SvdResult randomized_svd(const CsrMatrix& a, const RandomizedSvdOptions& o) {
  double tlast_=T_();
  const int64_t small = std::min(a.rows, a.cols);
  if (o.components < 1 || o.components > small)
    throw Error("randomized SVD: " + std::to_string(o.components) + " components asked of a " +
                std::to_string(a.rows) + " x " + std::to_string(a.cols) + " matrix (at most " +
                std::to_string(small) + ")");
  if (o.oversamples < 0 || o.power_iters < 0)
    throw Error("randomized SVD: oversamples and power_iters must be >= 0");
  const int threads = std::max(1, o.threads);
  const int64_t k = o.components;
  const int64_t l = std::min(k + o.oversamples, small);
  TorchThreads torch_threads(threads);
  torch::NoGradGuard no_grad;
  TP("threads");

  // Work on M = a, or on M = a^T when a has fewer rows than columns (as scikit-learn
  // does): the Gaussian test matrix Z then lives in the small space (M.cols =
  // min(rows, cols)) and the range Y = M Z in the big one (M.rows).
  // Terms (columns of a) renumbered by descending document frequency: the products that
  // read term rows of a dense matrix then find the frequent ones close together in cache.
  // Each row keeps the order of its entries, so every sum runs in the same order.
  std::vector<int32_t> term_of(static_cast<size_t>(a.cols));  // new id -> column of a
  CsrMatrix ap;
  {
  TP("pre");
    std::vector<int64_t> df(static_cast<size_t>(a.cols), 0);
    for (int32_t c : a.indices) ++df[c];
    std::iota(term_of.begin(), term_of.end(), 0);
    std::stable_sort(term_of.begin(), term_of.end(),
                     [&](int32_t x, int32_t y) { return df[x] > df[y]; });
    std::vector<int32_t> new_id(static_cast<size_t>(a.cols));
    for (int32_t i = 0; i < static_cast<int32_t>(a.cols); ++i) new_id[term_of[i]] = i;
    ap.rows = a.rows;
    ap.cols = a.cols;
    ap.indptr = a.indptr;
    ap.values = a.values;
    ap.indices.resize(a.indices.size());
#pragma omp parallel for num_threads(threads) schedule(static) if (a.nnz() > (1 << 16))
    for (int64_t p = 0; p < a.nnz(); ++p) ap.indices[p] = new_id[a.indices[p]];
  }
  TP("permute");
  const CsrMatrix at = transpose(ap, threads);
  TP("transpose");
  const bool wide = a.rows < a.cols;
  const CsrMatrix& m = wide ? at : ap;
  const CsrMatrix& mt = wide ? ap : at;

  // Power iterations Y = (M M^T)^q M Z. Renormalising between products (right-multiplying
  // by the inverse of a triangular factor) leaves every range unchanged, so it is done only
  // in the small space, once per iteration: that keeps the columns well apart in float at
  // the cheaper size.
  std::vector<float> omega = gaussian_matrix(m.cols, l, o.seed, threads);
  if (!wide) {  // Omega's rows are terms: row i belongs to term term_of[i]
    std::vector<float> permuted(omega.size());
    for (int64_t i = 0; i < m.cols; ++i)
      std::copy_n(omega.data() + static_cast<int64_t>(term_of[i]) * l, l, permuted.data() + i * l);
    omega.swap(permuted);
  }
  torch::Tensor z = torch::from_blob(omega.data(), {m.cols, l}, torch::kFloat32);
  torch::Tensor y, w, zn;  // buffers, reused
  TP("omega");
  if (o.power_iters == 0) {
    times(m, z, y, threads);
  } else {
    // The power iterations run on half-precision copies of Z and Y (sparse_matrix.h): only
    // the range matters there, and the products are bound by reading those rows. The last
    // Z is then used exactly as rounded (z = float(half(z))), so Y = M Z, W = M^T Y and
    // Z^T W below stay consistent to float rounding.
    const int64_t ld = half_ld(l);
    std::vector<uint16_t> zh(static_cast<size_t>(m.cols * ld)), yh(static_cast<size_t>(m.rows * ld));
    to_half(z.data_ptr<float>(), m.cols, l, zh.data(), threads);
    w = torch::empty({m.cols, l}, torch::kFloat32);
    for (int64_t i = 0; i < o.power_iters; ++i) {
      spmm(m, zh.data(), l, yh.data(), threads);  // Y = M Z (half)
      TP("spmm m");
      spmm(mt, yh.data(), l, w.data_ptr<float>(), threads);  // W = M^T Y
      TP("spmm mt");
      normalize_columns(w, zn);
      TP("normalize");
      to_half(zn.data_ptr<float>(), m.cols, l, zh.data(), threads);
    }
    z = torch::empty({m.cols, l}, torch::kFloat32);
    from_half(zh.data(), m.cols, l, z.data_ptr<float>(), threads);
    y = torch::empty({m.rows, l}, torch::kFloat32);
    spmm(m, zh.data(), l, y.data_ptr<float>(), threads);
  }
  TP("spmm m");

  // Q = Y R^-1 with R^T R = Y^T Y is an orthonormal basis of range(Y), and B = Q^T M. With
  // W = M^T Y (small space): Y^T Y = Z^T W and B B^T = R^-T (W^T W) R^-1, so the SVD of B
  // comes from an l x l eigenproblem, never forming Q in the big space. B = U S V^T gives
  // the left singular vectors of M as Q U = Y R^-1 U and the right ones as
  // V = B^T U S^-1 = W R^-1 U S^-1.
  times(mt, y, w, threads);
  torch::Tensor cf, s;  // cf: l x k (float) on the implicit route
  {
    TP("final-w");
    // G = Z^T W and H = W^T W: float GEMMs (their rounding, ~1e-6 relative, is far below
    // the method's own error), then the l x l algebra in double.
    const torch::Tensor gt = torch::mm(z.t(), w).to(torch::kFloat64);
    const torch::Tensor h = torch::mm(w.t(), w).to(torch::kFloat64);
    TP("final-GH");
    std::vector<double> g = to_vector(gt);
    for (int64_t i = 0; i < l; ++i)  // symmetric up to rounding: use the mean
      for (int64_t j = 0; j < i; ++j)
        g[i * l + j] = g[j * l + i] = 0.5 * (g[i * l + j] + g[j * l + i]);
    std::vector<double> r;
    if (cholesky_upper(g, l, r, 1e6)) {
      const torch::Tensor rinv =
          torch::from_blob(inverse_upper(r, l).data(), {l, l}, torch::kFloat64).clone();
      torch::Tensor bbt = torch::matmul(torch::matmul(rinv.t(), h), rinv);
      bbt = 0.5 * (bbt + bbt.t());
      torch::Tensor evals, evecs;
      {
        TorchThreads one(1);  // see "small l x l algebra" above
        std::tie(evals, evecs) = torch::linalg_eigh(bbt);
      }
      // Descending order; singular values are the square roots of the eigenvalues.
      evals = evals.flip(0).clamp_min(0).sqrt();
      evecs = evecs.flip(1).narrow(1, 0, k);
      TP("final-eig");
      torch::Tensor c = torch::matmul(rinv, evecs);  // l x k
      s = evals.to(torch::kFloat32);
      // V = W R^-1 U S^-1 divides by the singular values: one at the noise level of the
      // double algebra (dims at the matrix's rank) would blow its component up to inf/NaN, and
      // l2 would then spread that to every embedding. Such a range takes the explicit route.
      const double smax = evals[0].item<double>();
      const bool tiny = !wide && evals.narrow(0, 0, k).min().item<double>() <=
                                     std::sqrt(static_cast<double>(l) * 1e-15) * std::max(smax, 1e-300);
      if (!tiny) {
        if (!wide) c = c / evals.narrow(0, 0, k).unsqueeze(0);
        cf = c.to(torch::kFloat32).contiguous();
      }
    }
  }
  // Term-major projection (a.cols x k) = (wide ? Y : W) C, rows in the renumbered order: a
  // block of rows at a time into a small buffer, then each row to its term's place.
  SvdResult out;
  out.cols = a.cols;
  out.projection.resize(static_cast<size_t>(a.cols * k));
  float* pp = out.projection.data();
  auto scatter = [&](const float* rows, int64_t r0, int64_t count) {
#pragma omp parallel for num_threads(threads) schedule(static) if (count * k >= (1 << 16))
    for (int64_t i = 0; i < count; ++i)
      std::copy_n(rows + i * k, k, pp + static_cast<int64_t>(term_of[r0 + i]) * k);
  };
  if (cf.defined()) {
    const torch::Tensor src = wide ? y : w;
    constexpr int64_t kBlock = 8192;
    torch::Tensor blk = torch::empty({std::min(kBlock, a.cols), k}, torch::kFloat32);
    for (int64_t r0 = 0; r0 < a.cols; r0 += kBlock) {
      const int64_t count = std::min(kBlock, a.cols - r0);
      torch::Tensor part = blk.narrow(0, 0, count);
      torch::mm_out(part, src.narrow(0, r0, count), cf);
      scatter(part.data_ptr<float>(), r0, count);
    }
  } else {
    const torch::Tensor v = explicit_components(mt, y, wide, k, s, threads);  // a.cols x k
    scatter(v.data_ptr<float>(), 0, a.cols);
  }
  TP("final");

  // Signs: the entry of largest magnitude of every component (the first such in column
  // order) is made positive. Fixed chunks of columns are scanned in parallel and merged in
  // order, so the choice does not depend on the thread count.
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (a.cols + kChunk - 1) / kChunk;
  std::vector<float> best(static_cast<size_t>(chunks * k), 0.f), best_abs(best.size(), -1.f);
#pragma omp parallel for num_threads(threads) schedule(static) if (chunks > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    float* b = best.data() + ch * k;
    float* ba = best_abs.data() + ch * k;
    for (int64_t t = ch * kChunk; t < std::min(a.cols, (ch + 1) * kChunk); ++t) {
      const float* row = pp + t * k;
      for (int64_t c = 0; c < k; ++c)
        if (std::abs(row[c]) > ba[c]) {
          ba[c] = std::abs(row[c]);
          b[c] = row[c];
        }
    }
  }
  std::vector<float> top(best.begin(), best.begin() + k), top_abs(best_abs.begin(), best_abs.begin() + k);
  for (int64_t ch = 1; ch < chunks; ++ch)
    for (int64_t c = 0; c < k; ++c)
      if (best_abs[ch * k + c] > top_abs[c]) {  // a tie keeps the earlier chunk's entry
        top_abs[c] = best_abs[ch * k + c];
        top[c] = best[ch * k + c];
      }
  bool flip = false;
  for (int64_t c = 0; c < k; ++c) flip = flip || top[c] < 0;
  if (flip) {
#pragma omp parallel for num_threads(threads) schedule(static) if (a.cols * k >= (1 << 18))
    for (int64_t t = 0; t < a.cols; ++t)
      for (int64_t c = 0; c < k; ++c)
        if (top[c] < 0) pp[t * k + c] = -pp[t * k + c];
  }
  const torch::Tensor sv = s.narrow(0, 0, k).contiguous();
  out.singular_values.assign(sv.data_ptr<float>(), sv.data_ptr<float>() + sv.numel());
  TP("end");
  return out;
}

}  // namespace cbtm::tfidf

namespace cbtm::tfidf {

Matrix SvdResult::components() const {
  const int64_t k = static_cast<int64_t>(singular_values.size());
  Matrix m(k, cols);
  for (int64_t t = 0; t < cols; ++t)
    for (int64_t c = 0; c < k; ++c) m.at(c, t) = projection[static_cast<size_t>(t * k + c)];
  return m;
}

}  // namespace cbtm::tfidf
