// Randomized truncated SVD of the tfidf embedder against LibTorch's exact SVD.

#include "support/catch_torch.h"  // first: see the header

#include <immintrin.h>

#include <random>
#include <cmath>
#include <string>
#include <vector>

#include "cbtm/error.h"
#include "devpile_slices.h"
#include "randomized_svd.h"
#include "support/test_support.h"
#include "tfidf_vectorizer.h"

using namespace cbtm::tfidf;

namespace {

torch::Tensor dense_of(const CsrMatrix& a) {
  torch::Tensor d = torch::zeros({a.rows, a.cols}, torch::kFloat32);
  auto acc = d.accessor<float, 2>();
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p) acc[r][a.indices[p]] = a.values[p];
  return d;
}

CsrMatrix csr_of(const torch::Tensor& dense) {
  CsrMatrix a;
  a.rows = dense.size(0);
  a.cols = dense.size(1);
  auto acc = dense.accessor<float, 2>();
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t c = 0; c < a.cols; ++c)
      if (acc[r][c] != 0.f) {
        a.indices.push_back(static_cast<int32_t>(c));
        a.values.push_back(acc[r][c]);
      }
    a.indptr.push_back(a.nnz());
  }
  return a;
}

/// rows x cols matrix with singular values 1/(1+i)^0.7 plus a sparse pattern (half of
/// the entries zeroed), so the spectrum decays like a tf-idf matrix's.
CsrMatrix synthetic(int64_t rows, int64_t cols, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t r = std::min(rows, cols);
  auto u = std::get<0>(torch::linalg_qr(torch::randn({rows, r})));
  auto v = std::get<0>(torch::linalg_qr(torch::randn({cols, r})));
  auto s = torch::pow(torch::arange(1, r + 1, torch::kFloat32), -0.7);
  auto m = torch::matmul(u * s, v.t());
  m = m * (torch::rand({rows, cols}) < 0.5).to(torch::kFloat32);
  return csr_of(m.contiguous());
}

/// The top `tight` singular values within `tol_tight` of the exact ones, all k within
/// `tol_all`; the components orthonormal with ||a v_i|| close to s_i.
void check_against_exact(const CsrMatrix& a, int64_t k, int64_t tight, double tol_tight,
                         double tol_all) {
  const SvdResult svd = randomized_svd(a, {k, 10, 5, 42, 2});
  torch::Tensor exact;
  {
    // Exact singular values as square roots of the eigenvalues of the smaller Gram matrix
    // (a GEMM, then a small symmetric eigensolver on one LibTorch thread: LAPACK on 2
    // threads of a shared 2-core machine is very slow, and a full SVD of a 1500 x 20000
    // matrix takes ~20 s on one).
    const torch::Tensor d = dense_of(a);
    const torch::Tensor g =
        (a.rows <= a.cols ? torch::matmul(d, d.t()) : torch::matmul(d.t(), d)).to(torch::kFloat64);
    const int saved = at::get_num_threads();
    at::set_num_threads(1);
    exact = std::get<0>(
        torch::sort(torch::linalg_eigvalsh(g).clamp_min(0).sqrt(), 0, /*descending=*/true));
    at::set_num_threads(saved);
  }
  REQUIRE(static_cast<int64_t>(svd.singular_values.size()) == k);
  double worst = 0;
  for (int64_t i = 0; i < k; ++i) {
    const double e = exact[i].item<double>();
    const double rel = std::abs(svd.singular_values[i] - e) / e;
    INFO("singular value " << i << ": " << svd.singular_values[i] << " vs exact " << e);
    CHECK(rel <= (i < tight ? tol_tight : tol_all));
    worst = std::max(worst, rel);
  }
  WARN("largest relative error of the " << k << " singular values: " << worst);
  torch::Tensor v =
      torch::from_blob(const_cast<float*>(svd.components().data.data()), {k, a.cols}).clone();
  CHECK(torch::allclose(torch::matmul(v, v.t()), torch::eye(k), 1e-4, 1e-4));
  // s_i = ||Q^T a v_i|| <= ||a v_i||, and close to it.
  const torch::Tensor av = torch::matmul(dense_of(a), v.t()).norm(2, 0);
  for (int64_t i = 0; i < k; ++i) {
    CHECK(av[i].item<double>() >= svd.singular_values[i] * (1 - 1e-4));
    CHECK(av[i].item<double>() <= svd.singular_values[i] * (1 + tol_all));
  }
}

}  // namespace

TEST_CASE("tfidf: randomized SVD matches the exact SVD on synthetic matrices", "[tfidf][svd]") {
  SECTION("tall (rows > cols)") { check_against_exact(synthetic(400, 150, 1), 20, 10, 0.01, 0.03); }
  SECTION("wide (rows < cols: the transposed range)") {
    check_against_exact(synthetic(150, 400, 2), 20, 10, 0.01, 0.03);
  }
}

TEST_CASE("tfidf: randomized SVD matches the exact SVD on devpile tf-idf",
          "[tfidf][svd][devpile]") {
  if (!cbtm::test::have_devpile()) {
    WARN("devpile absent: skipped");
    return;
  }
  const std::vector<std::string> texts = cbtm::test::devpile_slices(
      {{0, 300}, {34115, 300}, {43422, 300}, {169688, 300}, {299366, 300}});
  TfidfVectorizer vec;
  const CsrMatrix x = vec.fit_transform(texts, 2);
  INFO(x.rows << " x " << x.cols << " tf-idf matrix");
  // The spectrum of tf-idf is flat, so the last of 100 components with 10 oversamples are
  // rough: scikit-learn 1.2.1's randomized_svd (n_iter=5, n_oversamples=10) on this matrix
  // errs > 1% from component ~52 on and by up to 4.7% at component 100 (seeds 0..2).
  check_against_exact(x, 100, 40, 0.01, 0.06);
}

TEST_CASE("tfidf: randomized SVD is deterministic for a seed", "[tfidf][svd]") {
  const CsrMatrix a = synthetic(200, 120, 3);
  const SvdResult r1 = randomized_svd(a, {10, 10, 5, 7, 2});
  const SvdResult r2 = randomized_svd(a, {10, 10, 5, 7, 2});
  CHECK(r1.singular_values == r2.singular_values);
  CHECK(r1.components().data == r2.components().data);
  const SvdResult r3 = randomized_svd(a, {10, 10, 5, 8, 2});
  CHECK(r3.components().data != r1.components().data);
  for (int i = 0; i < 10; ++i)
    CHECK(r3.singular_values[i] == Approx(r1.singular_values[i]).epsilon(0.01));
}

TEST_CASE("tfidf: components have a positive largest entry", "[tfidf][svd]") {
  const CsrMatrix a = synthetic(100, 80, 4);
  const SvdResult r = randomized_svd(a, {8, 10, 5, 0, 1});
  const cbtm::Matrix components = r.components();
  REQUIRE(r.projection.size() == static_cast<size_t>(a.cols * 8));
  for (int64_t k = 0; k < 8; ++k) {
    const float* row = components.row(k);
    for (int64_t j = 0; j < a.cols; ++j) CHECK(row[j] == r.projection[j * 8 + k]);
    float best = 0;
    for (int64_t j = 0; j < a.cols; ++j)
      if (std::abs(row[j]) > std::abs(best)) best = row[j];
    CHECK(best > 0);
  }
}

TEST_CASE("tfidf: randomized SVD rejects impossible sizes", "[tfidf][svd]") {
  const CsrMatrix a = synthetic(10, 30, 5);
  CHECK_THROWS_WITH(randomized_svd(a, {11, 10, 5, 0, 1}), ContainsText("at most 10"));
  CHECK_THROWS_AS(randomized_svd(a, {0, 10, 5, 0, 1}), cbtm::Error);
  // Oversampling past min(rows, cols) is clipped, not an error.
  CHECK(randomized_svd(a, {10, 10, 2, 0, 1}).singular_values.size() == 10);
}

TEST_CASE("tfidf: Gaussian test matrix is standard normal and thread-independent", "[tfidf][svd]") {
  const std::vector<float> g1 = gaussian_matrix(301, 101, 9, 1);
  const std::vector<float> g2 = gaussian_matrix(301, 101, 9, 2);
  CHECK(g1 == g2);
  double mean = 0, sq = 0;
  for (float v : g1) mean += v;
  mean /= static_cast<double>(g1.size());
  for (float v : g1) sq += (v - mean) * (v - mean);
  CHECK(std::abs(mean) < 0.02);
  CHECK(std::sqrt(sq / static_cast<double>(g1.size())) == Approx(1.0).epsilon(0.02));
  CHECK(gaussian_matrix(301, 101, 10, 2) != g1);
}

TEST_CASE("tfidf: sparse products equal dense ones", "[tfidf][svd]") {
  const CsrMatrix a = synthetic(50, 40, 6);
  const torch::Tensor d = torch::randn({40, 7});
  std::vector<float> out(50 * 7);
  spmm(a, d.data_ptr<float>(), 7, out.data(), 2);
  const torch::Tensor ref = torch::matmul(dense_of(a), d);
  CHECK(torch::allclose(torch::from_blob(out.data(), {50, 7}), ref, 1e-4, 1e-5));
  const CsrMatrix t = transpose(a);
  CHECK(torch::equal(dense_of(t), dense_of(a).t()));
  // Bit for bit what a plain loop gives (sum in stored order, multiply then add), for widths
  // that fill vectors exactly, leave a tail, or need several passes of the vector kernel.
  for (int64_t k : {1, 7, 16, 17, 110, 128, 130, 300}) {
    const torch::Tensor dk = torch::randn({40, k});
    std::vector<float> got(static_cast<size_t>(50 * k)), want(static_cast<size_t>(50 * k), 0.f);
    spmm(a, dk.data_ptr<float>(), k, got.data(), 2);
    const float* dp = dk.data_ptr<float>();
    for (int64_t r = 0; r < 50; ++r)
      for (int64_t p = a.indptr[r]; p < a.indptr[r + 1]; ++p)
        for (int64_t j = 0; j < k; ++j) {
          const float prod = a.values[p] * dp[a.indices[p] * k + j];
          want[r * k + j] = want[r * k + j] + prod;
        }
    size_t bad = 0;
    while (bad < got.size() && got[bad] == want[bad]) ++bad;
    INFO("k = " << k << ", first difference at " << bad << ": "
                << (bad < got.size() ? got[bad] : 0.f) << " vs " << (bad < got.size() ? want[bad] : 0.f));
    CHECK(got == want);
  }
}

namespace {
uint16_t half_bits(float f) {
  uint16_t h;
  cbtm::tfidf::to_half(&f, 1, 1, &h, 1);
  return h;
}
__attribute__((target("f16c"))) uint16_t f16c_bits(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, 0));
}
}  // namespace

TEST_CASE("tfidf: half precision conversions round to nearest even", "[tfidf][svd]") {
  const bool portable = GENERATE(false, true);  // the vector kernels, then the portable loops
  cbtm::tfidf::detail::use_portable_kernels(portable);
  INFO("portable loops: " << portable);
  CHECK(half_bits(1.0f) == 0x3C00);
  CHECK(half_bits(-2.0f) == 0xC000);
  CHECK(half_bits(65504.0f) == 0x7BFF);                    // the largest half
  CHECK(half_bits(65520.0f) == 0x7C00);                    // rounds up to infinity
  CHECK(half_bits(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // a tie: to even
  CHECK(half_bits(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
  CHECK(half_bits(std::ldexp(1.0f, -14)) == 0x0400);       // the smallest normal
  CHECK(half_bits(std::ldexp(1.0f, -24)) == 0x0001);       // the smallest subnormal
  CHECK(half_bits(std::ldexp(1.0f, -25)) == 0x0000);       // a tie: to even (0)
  CHECK(half_bits(3 * std::ldexp(1.0f, -25)) == 0x0002);
  CHECK(half_bits(INFINITY) == 0x7C00);
  CHECK((half_bits(NAN) & 0x7C00) == 0x7C00);
  CHECK((half_bits(NAN) & 0x03FF) != 0);
  // The same bits as the hardware conversion, and back within half's precision.
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> mant(-1.f, 1.f);
  std::uniform_int_distribution<int> ex(-30, 17);
  std::vector<float> xs;
  for (int i = 0; i < 20000; ++i) xs.push_back(std::ldexp(mant(gen), ex(gen)));
  std::vector<uint16_t> hs(cbtm::tfidf::half_ld(static_cast<int64_t>(xs.size())));
  cbtm::tfidf::to_half(xs.data(), 1, static_cast<int64_t>(xs.size()), hs.data(), 2);
  std::vector<float> back(xs.size());
  cbtm::tfidf::from_half(hs.data(), 1, static_cast<int64_t>(xs.size()), back.data(), 2);
  const bool f16c = __builtin_cpu_supports("f16c");
  for (size_t i = 0; i < xs.size(); ++i) {
    if (f16c) CHECK(hs[i] == f16c_bits(xs[i]));
    if (std::abs(xs[i]) >= std::ldexp(1.0f, -14) && std::abs(xs[i]) <= 65504.f)
      CHECK(std::abs(back[i] - xs[i]) <= std::ldexp(std::abs(xs[i]), -11));
    CHECK(hs[i] == half_bits(xs[i]));  // the row and the one-value paths agree
  }
  cbtm::tfidf::detail::use_portable_kernels(false);
}

TEST_CASE("tfidf: sparse products with half-precision operands", "[tfidf][svd]") {
  const bool portable = GENERATE(false, true);
  cbtm::tfidf::detail::use_portable_kernels(portable);
  INFO("portable loops: " << portable);
  const CsrMatrix a = synthetic(60, 45, 9);
  for (int64_t k : {5, 16, 110, 140}) {
    const int64_t ld = cbtm::tfidf::half_ld(k);
    const torch::Tensor d = torch::randn({45, k});
    std::vector<uint16_t> dh(static_cast<size_t>(45 * ld));
    cbtm::tfidf::to_half(d.data_ptr<float>(), 45, k, dh.data(), 2);
    std::vector<float> dr(static_cast<size_t>(45 * k));
    cbtm::tfidf::from_half(dh.data(), 45, k, dr.data(), 2);
    // Float out: bit for bit the float product of the rounded operand.
    std::vector<float> got(static_cast<size_t>(60 * k)), want(static_cast<size_t>(60 * k));
    spmm(a, dh.data(), k, got.data(), 2);
    spmm(a, dr.data(), k, want.data(), 1);
    INFO("k = " << k);
    CHECK(got == want);
    // Half out: the float result rounded, padding zero.
    std::vector<uint16_t> goth(static_cast<size_t>(60 * ld), 0xFFFF), wanth(goth.size());
    spmm(a, dh.data(), k, goth.data(), 2);
    cbtm::tfidf::to_half(want.data(), 60, k, wanth.data(), 1);
    CHECK(goth == wanth);
    // The float kernel, vector or portable, gives the same bits as the other path.
    cbtm::tfidf::detail::use_portable_kernels(!portable);
    std::vector<float> other(want.size());
    spmm(a, dr.data(), k, other.data(), 1);
    std::vector<uint16_t> otherh(goth.size());
    spmm(a, dh.data(), k, otherh.data(), 1);
    cbtm::tfidf::detail::use_portable_kernels(portable);
    CHECK(other == want);
    CHECK(otherh == goth);
  }
  cbtm::tfidf::detail::use_portable_kernels(false);
}

TEST_CASE("tfidf: components at a rank-deficient matrix's full width stay finite", "[tfidf][svd]") {
  // 50 x 50 with two equal columns (two terms that always occur together): rank 49, and
  // 50 components asked for. Dividing by the 50th singular value (float noise) used to give
  // inf/NaN components for some seeds.
  for (uint64_t seed = 0; seed < 30; ++seed) {
    torch::manual_seed(seed + 100);
    torch::Tensor m = torch::rand({50, 50}) * (torch::rand({50, 50}) < 0.3).to(torch::kFloat32);
    m.select(1, 1).copy_(m.select(1, 0));
    const CsrMatrix a = csr_of(m.contiguous());
    const SvdResult r = randomized_svd(a, {50, 10, 5, seed, 1});
    INFO("seed " << seed);
    for (float x : r.projection) REQUIRE(std::isfinite(x));
    for (float x : r.singular_values) REQUIRE(std::isfinite(x));
  }
}
