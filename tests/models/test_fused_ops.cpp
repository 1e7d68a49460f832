// The fused CPU ops (models/opt/fused_ops.h, row_kernels.h, attention_kernel.h) against the plain LibTorch
// ops they replace, in values and gradients; the AVX-512 and portable kernels bit for bit.
#include "support/catch_torch.h"  // first: see the header

#include <cmath>
#include <random>
#include <vector>

#include "opt/fused_ops.h"
#include "opt/row_kernels.h"

using namespace cbtm::models;
namespace k = cbtm::models::kernels;

namespace {

std::vector<uint16_t> random_bf16(int64_t n, float spread, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, spread);
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = k::float_to_bf16(d(rng));
  return v;
}

struct PortableScope {
  explicit PortableScope(bool on) { k::detail::use_portable_kernels(on); }
  ~PortableScope() { k::detail::use_portable_kernels(false); }
};

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST_CASE("fast_exp is within (2e-7 + 1e-7 |x|) of exp and bf16 conversion rounds to nearest even", "[fused]") {
  for (double x = -80.0; x <= 10.0; x += 0.0137) {
    const double want = std::exp(static_cast<double>(static_cast<float>(x)));
    // the rounding of x log2(e) in float costs up to ~8e-8 |x| relative
    CHECK(std::abs(k::fast_exp(static_cast<float>(x)) - want) <= (2e-7 + 1e-7 * std::abs(x)) * want);
  }
  CHECK(k::fast_exp(-1000.0f) < 1e-37f);
  CHECK(k::float_to_bf16(1.0f) == 0x3F80);
  CHECK(k::bf16_to_float(0x3F80) == 1.0f);
  CHECK(k::float_to_bf16(1.0f + 1.0f / 256) == 0x3F80);             // tie -> even (down)
  CHECK(k::float_to_bf16(1.0f + 3.0f / 256) == 0x3F82);             // tie -> even (up)
  CHECK(k::float_to_bf16(1.0f + 1.0f / 256 + 1e-6f) == 0x3F81);     // above the tie
}

TEST_CASE("softmax_row and its backward match a double-precision reference and both paths give the same bits", "[fused]") {
  for (int64_t n : {1, 7, 16, 17, 100, 512, 1000}) {
    for (int64_t valid : {int64_t(1), std::max<int64_t>(1, n / 3), n}) {
      const auto x = random_bf16(n, 3.0f, static_cast<uint32_t>(n * 31 + valid));
      const auto dp = random_bf16(n, 1.0f, static_cast<uint32_t>(n * 7 + valid));
      const float scale = 0.37f, out_scale = 0.5f;
      // reference
      double m = -1e300;
      for (int64_t j = 0; j < valid; ++j) m = std::max(m, double(k::bf16_to_float(x[j])) * scale);
      double sum = 0;
      for (int64_t j = 0; j < valid; ++j) sum += std::exp(double(k::bf16_to_float(x[j])) * scale - m);
      const double lse = m + std::log(sum);
      std::vector<std::vector<uint16_t>> outs, grads;
      std::vector<float> lses;
      for (bool portable : {true, false}) {
        if (!portable && !k::detail::avx512_available()) continue;
        PortableScope scope(portable);
        std::vector<uint16_t> out(static_cast<size_t>(n), 0xFFFF), ds(static_cast<size_t>(n), 0xFFFF);
        lses.push_back(k::softmax_row(x.data(), out.data(), valid, n, scale, out_scale));
        CHECK(std::abs(lses.back() - lse) <= 1e-5 * std::max(1.0, std::abs(lse)));
        double dot = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double p = j < valid ? std::exp(double(k::bf16_to_float(x[j])) * scale - lse) : 0.0;
          CHECK(std::abs(k::bf16_to_float(out[j]) - out_scale * p) <= 4e-3 * out_scale * p + 1e-30);
          dot += double(k::bf16_to_float(out[j])) * k::bf16_to_float(dp[j]);
        }
        // backward from the (rounded) probabilities, as autograd gives it the saved output
        k::softmax_backward_row(out.data(), dp.data(), ds.data(), valid, n, scale);
        for (int64_t j = 0; j < n; ++j) {
          const double p = k::bf16_to_float(out[j]);
          const double want = j < valid ? scale * p * (k::bf16_to_float(dp[j]) - dot) : 0.0;
          CHECK(std::abs(k::bf16_to_float(ds[j]) - want) <= 8e-3 * std::abs(want) + 1e-6);
        }
        outs.push_back(out);
        grads.push_back(ds);
      }
      if (outs.size() == 2) {
        CHECK(outs[0] == outs[1]);
        CHECK(grads[0] == grads[1]);
        CHECK(lses[0] == lses[1]);
      }
    }
  }
}

TEST_CASE("logsumexp_row matches a double-precision reference and both paths give the same bits", "[fused]") {
  std::mt19937 rng(9);
  std::normal_distribution<float> d(0.0f, 4.0f);
  for (int64_t n : {1, 7, 16, 17, 100, 4096, 4099}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = d(rng) + 30.0f;  // offset: the max must be subtracted
    double m = -1e300, sum = 0;
    for (float v : x) m = std::max(m, double(v));
    for (float v : x) sum += std::exp(double(v) - m);
    const double want = m + std::log(sum);
    std::vector<float> got;
    for (bool portable : {true, false}) {
      if (!portable && !k::detail::avx512_available()) continue;
      PortableScope scope(portable);
      got.push_back(k::logsumexp_row(x.data(), n));
      INFO("n = " << n << ", portable " << portable);
      CHECK(std::abs(got.back() - want) <= 2e-6 * std::abs(want));
    }
    if (got.size() == 2) CHECK(got[0] == got[1]);
  }
}

TEST_CASE("target_log_probs equals log_softmax + gather, on CPU float32 through the row kernel", "[fused]") {
  torch::manual_seed(4);
  const torch::Tensor logits = torch::randn({37, 4099}) * 5, targets = torch::randint(0, 4099, {37}, torch::kLong);
  const torch::Tensor want = torch::log_softmax(logits.to(torch::kDouble), -1).gather(1, targets.unsqueeze(1)).squeeze(1);
  const torch::Tensor got = target_log_probs(logits, targets);
  REQUIRE(got.sizes() == torch::IntArrayRef({37}));
  CHECK(got.scalar_type() == torch::kFloat);
  CHECK(max_abs_diff(got.to(torch::kDouble), want) < 2e-5);
  CHECK(max_abs_diff(target_log_probs(logits.to(torch::kBFloat16), targets).to(torch::kDouble),  // the plain path
                     torch::log_softmax(logits.to(torch::kBFloat16).to(torch::kFloat), -1).gather(1, targets.unsqueeze(1)).squeeze(1).to(torch::kDouble)) < 1e-6);
  CHECK_THROWS(target_log_probs(logits, torch::full({37}, 4099, torch::kLong)));
  CHECK_THROWS(target_log_probs(logits, targets.narrow(0, 0, 5)));
}

TEST_CASE("causal_attention in bf16 matches the fp32 masked-softmax attention, values and gradients", "[fused]") {
  torch::manual_seed(3);
  const auto make = [] { return torch::randn({2, 3, 37, 16}, torch::kFloat).to(torch::kBFloat16).requires_grad_(); };
  torch::Tensor q = make(), kk = make(), v = make();
  const double scale = 0.25;
  const torch::Tensor out = causal_attention(q, kk, v, scale);
  CHECK(out.scalar_type() == torch::kBFloat16);
  const torch::Tensor g = torch::randn(out.sizes()).to(torch::kBFloat16);
  out.backward(g);

  // reference in fp32 from the same bf16 inputs
  torch::Tensor qf = q.detach().to(torch::kFloat).requires_grad_(), kf = kk.detach().to(torch::kFloat).requires_grad_(),
                vf = v.detach().to(torch::kFloat).requires_grad_();
  const torch::Tensor ref = causal_attention(qf, kf, vf, scale);  // float: the plain-ops path
  ref.backward(g.to(torch::kFloat));
  // and that path against an explicit loop over positions for one head
  {
    torch::NoGradGuard ng;
    const torch::Tensor q0 = qf[1][2], k0 = kf[1][2], v0 = vf[1][2];
    for (int64_t i : {0, 5, 36}) {
      const torch::Tensor w = torch::softmax(torch::mv(k0.slice(0, 0, i + 1), q0[i]) * scale, 0);
      CHECK(max_abs_diff(torch::mv(v0.slice(0, 0, i + 1).t(), w), ref[1][2][i]) < 1e-5);
    }
  }
  // bf16 keeps 8 significant bits (relative step 2^-8 = 0.4%) and the kernels round their
  // partial results differently from CPU to CPU, so the bounds are relative to the largest
  // reference value: a few bf16 steps, far below what a wrong mask or scale gives (O(1)).
  const auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
    return max_abs_diff(a, b) / b.abs().max().item<double>();
  };
  INFO("relative errors: out " << rel(out, ref) << ", dq " << rel(q.grad(), qf.grad()) << ", dk "
                               << rel(kk.grad(), kf.grad()) << ", dv " << rel(v.grad(), vf.grad()));
  CHECK(rel(out, ref) < 0.02);
  CHECK(rel(q.grad(), qf.grad()) < 0.03);
  CHECK(rel(kk.grad(), kf.grad()) < 0.03);
  CHECK(rel(v.grad(), vf.grad()) < 0.03);
  CHECK(q.grad().abs().sum().item<double>() > 1.0);  // not trivially zero
}

TEST_CASE("causal_attention_loops (inference on short rows) matches the fp32 masked-softmax attention", "[fused]") {
  torch::manual_seed(5);
  // head widths: a multiple of the kernel's 16-wide blocks and one that is not; rows shorter than,
  // equal to and longer than a block
  for (int64_t hd : {32, 20})
    for (int64_t T : {1, 7, 16, 17, 40}) {
      INFO("T = " << T << ", head_dim = " << hd);
      const auto make = [&] { return torch::randn({2, 3, T, hd}, torch::kFloat).to(torch::kBFloat16); };
      const torch::Tensor q = make(), kk = make(), v = make();
      const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
      torch::NoGradGuard ng;
      const torch::Tensor out = causal_attention_loops(q, kk, v, scale);
      REQUIRE(out.sizes() == q.sizes());
      CHECK(out.scalar_type() == torch::kBFloat16);
      const torch::Tensor ref = causal_attention(q.to(torch::kFloat), kk.to(torch::kFloat), v.to(torch::kFloat), scale);
      // fp32 arithmetic throughout, one rounding to bf16 at the end: within a bf16 step (2^-8
      // relative) of the fp32 reference
      const torch::Tensor err = (out.to(torch::kFloat) - ref).abs() - ref.abs() * (1.0 / 256) - 1e-6;
      CHECK(err.max().item<double>() <= 0.0);
      // causal_attention takes this path without autograd for rows under 80 tokens
      CHECK(torch::equal(causal_attention(q, kk, v, scale), out));
    }
  // row 0 attends to itself only: its output is v[0]
  const torch::Tensor q = torch::randn({1, 5, 16}).to(torch::kBFloat16), v = torch::randn({1, 5, 16}).to(torch::kBFloat16);
  torch::NoGradGuard ng;
  CHECK(torch::equal(causal_attention_loops(q, q, v, 0.3)[0][0], v[0][0]));
  CHECK_THROWS(causal_attention_loops(q.to(torch::kFloat), q.to(torch::kFloat), v.to(torch::kFloat), 0.3));
}

TEST_CASE("fused_cross_entropy equals torch's cross_entropy on bf16 logits, loss and gradient", "[fused]") {
  torch::manual_seed(4);
  const torch::Tensor logits = (torch::randn({53, 301}) * 3).to(torch::kBFloat16).requires_grad_();
  const torch::Tensor targets = torch::randint(0, 301, {53}, torch::kLong);
  const torch::Tensor loss = fused_cross_entropy(logits, targets);
  CHECK(loss.scalar_type() == torch::kFloat);
  (loss * 2.0).backward();
  torch::Tensor lf = logits.detach().to(torch::kFloat).requires_grad_();
  const torch::Tensor ref = torch::nn::functional::cross_entropy(lf, targets);
  (ref * 2.0).backward();
  CHECK(loss.item<double>() == Approx(ref.item<double>()).epsilon(1e-6));
  CHECK(max_abs_diff(logits.grad(), lf.grad()) < 2e-4);
  // fp32 logits take torch's own op
  CHECK(fused_cross_entropy(lf.detach(), targets).item<double>() == Approx(ref.item<double>()).epsilon(1e-6));
  const torch::Tensor bad = torch::full({53}, 301, torch::kLong);
  CHECK_THROWS(fused_cross_entropy(logits.detach(), bad));
}

TEST_CASE("fused_cross_entropy: the target's gradient stays exact to bf16 rounding for confident tokens", "[fused]") {
  // p_t from 0.9 to 0.9999: the target's gradient g (p_t - 1) is small against g p_t, so it
  // must be formed before rounding
  torch::manual_seed(5);
  const int64_t N = 64, V = 50;
  torch::Tensor l = torch::randn({N, V});
  const torch::Tensor targets = torch::randint(0, V, {N}, torch::kLong);
  for (int64_t r = 0; r < N; ++r) l[r][targets[r].item<int64_t>()] = 4.0 + 8.0 * static_cast<double>(r) / N;
  const torch::Tensor logits = l.to(torch::kBFloat16).requires_grad_();
  fused_cross_entropy(logits, targets).backward();
  torch::Tensor lf = logits.detach().to(torch::kFloat).requires_grad_();
  torch::nn::functional::cross_entropy(lf, targets).backward();
  const torch::Tensor ours = logits.grad().to(torch::kFloat).gather(1, targets.unsqueeze(1)).squeeze(1);
  const torch::Tensor ref = lf.grad().gather(1, targets.unsqueeze(1)).squeeze(1);
  const torch::Tensor p = torch::softmax(lf.detach(), 1).gather(1, targets.unsqueeze(1)).squeeze(1);
  REQUIRE(p.max().item<double>() > 0.999);
  REQUIRE(p.min().item<double>() < 0.99);
  // one bf16 rounding: relative error below 2^-8 on every row, the sign always right
  CHECK(((ours - ref).abs() / ref.abs()).max().item<double>() < 1.0 / 256);
  CHECK((ours < 0).all().item<bool>());
}

TEST_CASE("fused_dropout: Bernoulli(1-p) keep mask scaled by 1/(1-p), reproducible from torch's seed", "[fused]") {
  const double p = 0.1;
  const torch::Tensor x = torch::rand({1000, 257}) + 0.5;  // no zeros
  torch::manual_seed(11);
  torch::Tensor xg = x.clone().requires_grad_();
  const torch::Tensor y = fused_dropout(xg, p, true);
  const torch::Tensor kept = y != 0;
  const double frac = 1.0 - kept.to(torch::kDouble).mean().item<double>();
  const double n = static_cast<double>(x.numel()), sd = std::sqrt(p * (1 - p) / n);
  CHECK(std::abs(frac - p) < 4 * sd);
  CHECK(max_abs_diff(y.masked_select(kept), x.masked_select(kept) / (1 - p)) < 1e-6);
  y.sum().backward();
  CHECK(torch::equal(xg.grad() != 0, kept));  // the backward uses the forward's mask
  torch::manual_seed(11);
  CHECK(torch::equal(fused_dropout(x, p, true), y.detach()));
  torch::manual_seed(12);
  CHECK_FALSE(torch::equal(fused_dropout(x, p, true), y.detach()));
  // the mask does not depend on the number of threads
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  torch::manual_seed(11);
  CHECK(torch::equal(fused_dropout(x, p, true), y.detach()));
  torch::set_num_threads(threads);
  // bf16, eval mode, p = 0
  torch::manual_seed(11);
  const torch::Tensor yb = fused_dropout(x.to(torch::kBFloat16), p, true);
  CHECK(yb.scalar_type() == torch::kBFloat16);
  CHECK(torch::equal(yb != 0, kept));
  CHECK(torch::equal(fused_dropout(x, p, false), x));
  CHECK(torch::equal(fused_dropout(x, 0.0, true), x));
}
