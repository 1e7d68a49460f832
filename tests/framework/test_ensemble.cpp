#include "support/catch.h"

#include <cmath>
#include <limits>
#include <random>

#include "cbtm/ensemble.h"
#include "cbtm/error.h"
#include "cbtm/router.h"

TEST_CASE("ensemble: mixing equals the direct formula log sum_j w_j p_j") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.01f, 1.f);
  const int K = 4, T = 7;
  std::vector<std::vector<float>> lp(K, std::vector<float>(T));
  cbtm::Matrix w(T, K);
  for (int t = 0; t < T; ++t) {
    float s = 0;
    for (int j = 0; j < K; ++j) s += (w.at(t, j) = u(rng));
    for (int j = 0; j < K; ++j) w.at(t, j) /= s;
    for (int j = 0; j < K; ++j) lp[j][t] = std::log(u(rng)) * 3;
  }
  auto mixed = cbtm::mix_log_probs(lp, w);
  for (int t = 0; t < T; ++t) {
    double p = 0;
    for (int j = 0; j < K; ++j) p += w.at(t, j) * std::exp(static_cast<double>(lp[j][t]));
    CHECK(mixed[t] == Approx(std::log(p)).epsilon(1e-6));
  }
}

TEST_CASE("ensemble: one expert with weight 1 equals that expert - inactive experts need no scores") {
  cbtm::Matrix w(3, 3);
  for (int t = 0; t < 3; ++t) w.at(t, 1) = 1.f;
  std::vector<std::vector<float>> lp = {{}, {-1.5f, -0.25f, -7.f}, {}};
  CHECK(cbtm::mix_log_probs(lp, w) == std::vector<float>{-1.5f, -0.25f, -7.f});
  CHECK(cbtm::active_experts(w) == std::vector<int32_t>{1});
  w.at(1, 2) = 0.5f;
  w.at(1, 1) = 0.5f;
  CHECK(cbtm::active_experts(w) == std::vector<int32_t>{1, 2});
  CHECK_THROWS_AS(cbtm::mix_log_probs(lp, w), cbtm::Error);  // expert 2 has weight but no scores
  // extreme log-probs stay finite (log-space mixing)
  cbtm::Matrix h(1, 2, 0.5f);
  auto m = cbtm::mix_log_probs({{-1000.f}, {-1001.f}}, h);
  CHECK(m[0] == Approx(-1000.f + std::log(0.5 * (1 + std::exp(-1.0)))).epsilon(1e-6));
}

TEST_CASE("ensemble: an expert needed for a prefix only may bring log-probs for that prefix") {
  cbtm::Matrix w(4, 2);
  w.at(0, 0) = 0.5f; w.at(0, 1) = 0.5f;
  w.at(1, 0) = 0.25f; w.at(1, 1) = 0.75f;
  w.at(2, 1) = 1.f;
  w.at(3, 1) = 1.f;
  CHECK(cbtm::needed_positions(w) == std::vector<int64_t>{2, 4});
  const std::vector<float> full1 = {-1.f, -2.f, -3.f, -4.f};
  const auto m = cbtm::mix_log_probs({{-0.5f, -0.7f}, full1}, w);
  CHECK(m[0] == Approx(std::log(0.5 * std::exp(-0.5) + 0.5 * std::exp(-1.0))).epsilon(1e-6));
  CHECK(m[1] == Approx(std::log(0.25 * std::exp(-0.7) + 0.75 * std::exp(-2.0))).epsilon(1e-6));
  CHECK(m[2] == -3.f);
  CHECK(m[3] == -4.f);
  CHECK_THROWS_WITH(cbtm::mix_log_probs({{-0.5f}, full1}, w), ContainsText("expert 0") && ContainsText("token 1"));
  CHECK(cbtm::needed_positions(cbtm::Matrix(3, 2)) == std::vector<int64_t>{0, 0});
}

TEST_CASE("keep_top_k keeps the largest weights and renormalises") {
  cbtm::Matrix w(2, 4);
  const float row0[] = {0.1f, 0.4f, 0.2f, 0.3f};
  const float row1[] = {0.25f, 0.25f, 0.25f, 0.25f};
  for (int j = 0; j < 4; ++j) {
    w.at(0, j) = row0[j];
    w.at(1, j) = row1[j];
  }
  cbtm::Matrix w2 = w;
  cbtm::keep_top_k(w2, 2);
  CHECK(w2.at(0, 0) == 0.f);
  CHECK(w2.at(0, 1) == Approx(0.4 / 0.7));
  CHECK(w2.at(0, 3) == Approx(0.3 / 0.7));
  CHECK(w2.at(0, 2) == 0.f);
  CHECK(w2.at(1, 0) == Approx(0.5));  // ties keep the lower index
  CHECK(w2.at(1, 1) == Approx(0.5));
  CHECK(w2.at(1, 2) == 0.f);
  cbtm::Matrix w0 = w;
  cbtm::keep_top_k(w0, 0);  // 0 keeps all
  CHECK(w0.at(0, 2) == Approx(0.2));
}

TEST_CASE("keep_top_k and check_weight_rows refuse rows that are not weights - naming the position") {
  cbtm::Matrix zero(2, 3, 0.f);
  zero.at(0, 1) = 1.f;  // row 1 is all zeros
  CHECK_THROWS_WITH(cbtm::keep_top_k(zero, 1), ContainsText("position 1") && ContainsText("no expert"));
  cbtm::Matrix nan(1, 3, 0.5f);
  nan.at(0, 2) = std::nanf("");
  CHECK_THROWS_WITH(cbtm::keep_top_k(nan, 0), ContainsText("position 0") && ContainsText("weight 2"));
  cbtm::Matrix neg(1, 2, 1.f);
  neg.at(0, 0) = -0.5f;
  CHECK_THROWS_WITH(cbtm::keep_top_k(neg, 0), ContainsText("finite and >= 0"));

  cbtm::Matrix ok(2, 2, 0.5f);
  CHECK_NOTHROW(cbtm::check_weight_rows(ok, "x"));
  CHECK(cbtm::weight_row_problem(ok.row(0), 2).empty());
  ok.at(1, 0) = 1.5f;  // sums to 2: would lower the perplexity without a word
  CHECK_THROWS_WITH(cbtm::check_weight_rows(ok, "ensemble 'e'"), ContainsText("ensemble 'e': position 1") && ContainsText("sum to 2"));
  ok.at(1, 0) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(cbtm::check_weight_rows(ok, "e"), ContainsText("weight 0 is inf"));
}

TEST_CASE("ensemble: weighted_positions marks where each expert has weight, up to its needed prefix - NaN elsewhere is never read") {
  cbtm::Matrix w(5, 3);
  w.at(0, 0) = 1.f;                   // expert 0: position 0, then again at 3
  w.at(1, 1) = 1.f;                   // expert 1: position 1 only
  w.at(2, 0) = 0.5f; w.at(2, 2) = 0.5f;
  w.at(3, 0) = 1.f;
  w.at(4, 2) = 1.f;                   // expert 2: positions 2 and 4
  const auto p = cbtm::weighted_positions(w);
  REQUIRE(p.size() == 3);
  CHECK(p[0] == std::vector<uint8_t>{1, 0, 1, 1});
  CHECK(p[1] == std::vector<uint8_t>{0, 1});
  CHECK(p[2] == std::vector<uint8_t>{0, 0, 1, 0, 1});
  const auto needed = cbtm::needed_positions(w);
  for (size_t j = 0; j < 3; ++j) CHECK(static_cast<int64_t>(p[j].size()) == needed[j]);
  CHECK(cbtm::weighted_positions(cbtm::Matrix(2, 2)) == std::vector<std::vector<uint8_t>>{{}, {}});
  // An expert's log-probs where it has no weight may be NaN (LanguageModel::score_positions).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto m = cbtm::mix_log_probs({{-1.f, nan, -3.f, -4.f}, {nan, -2.f}, {nan, nan, -5.f, nan, -6.f}}, w);
  CHECK(m == std::vector<float>{-1.f, -2.f, static_cast<float>(std::log(0.5 * std::exp(-3.0) + 0.5 * std::exp(-5.0))), -4.f, -6.f});
}
