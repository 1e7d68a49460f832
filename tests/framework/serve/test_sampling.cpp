// Generation's pure pieces: mixing next-token distributions and sampling from them.
#include "support/catch.h"

#include <cmath>
#include <map>

#include "cbtm/error.h"
#include "cbtm/serve/run_ensemble.h"

TEST_CASE("mix_next_token equals log sum_j w_j p_j(v) over the weighted experts") {
  const std::vector<float> a = {std::log(0.7f), std::log(0.2f), std::log(0.1f)};
  const std::vector<float> b = {std::log(0.1f), std::log(0.1f), std::log(0.8f)};
  const auto m = cbtm::mix_next_token({a, b}, {0.25f, 0.75f});
  const double want[3] = {0.25 * 0.7 + 0.75 * 0.1, 0.25 * 0.2 + 0.75 * 0.1, 0.25 * 0.1 + 0.75 * 0.8};
  for (int v = 0; v < 3; ++v) CHECK(m[v] == Approx(std::log(want[v])).epsilon(1e-6));
  CHECK(cbtm::mix_next_token({a, {}}, {1.f, 0.f}) == a);  // an expert without weight needs no row
  CHECK_THROWS_WITH(cbtm::mix_next_token({a, {}}, {0.5f, 0.5f}), ContainsText("expert 1"));
  CHECK_THROWS_WITH(cbtm::mix_next_token({a, {0.f}}, {0.5f, 0.5f}), ContainsText("differ"));
  CHECK_THROWS(cbtm::mix_next_token({a}, {0.f}));
}

TEST_CASE("sample_token: greedy, temperature, nucleus and seeds") {
  const std::vector<float> lp = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  std::mt19937_64 rng(1);
  CHECK(cbtm::sample_token(lp, 0.0, 1.0, rng) == 0);
  CHECK(cbtm::sample_token({-1.f, -0.5f, -0.5f}, 0.0, 1.0, rng) == 1);  // ties: lowest id
  // frequencies follow p at temperature 1 (4 sigma bounds over 40000 draws)
  const int n = 40000;
  std::map<int, int> count;
  for (int i = 0; i < n; ++i) ++count[cbtm::sample_token(lp, 1.0, 1.0, rng)];
  const double p[4] = {0.5, 0.3, 0.15, 0.05};
  for (int v = 0; v < 4; ++v) CHECK(std::abs(count[v] / double(n) - p[v]) < 4 * std::sqrt(p[v] * (1 - p[v]) / n));
  // temperature 2: p ∝ sqrt(p)
  count.clear();
  double z = 0;
  for (double x : p) z += std::sqrt(x);
  for (int i = 0; i < n; ++i) ++count[cbtm::sample_token(lp, 2.0, 1.0, rng)];
  for (int v = 0; v < 4; ++v) {
    const double q = std::sqrt(p[v]) / z;
    CHECK(std::abs(count[v] / double(n) - q) < 4 * std::sqrt(q * (1 - q) / n));
  }
  // top_p 0.75: the nucleus is {0, 1} (0.5 + 0.3 >= 0.75), renormalised to 5/8, 3/8
  count.clear();
  for (int i = 0; i < n; ++i) ++count[cbtm::sample_token(lp, 1.0, 0.75, rng)];
  CHECK(count[2] + count[3] == 0);
  CHECK(std::abs(count[0] / double(n) - 0.625) < 4 * std::sqrt(0.625 * 0.375 / n));
  // a tiny top_p keeps the single most likely token
  for (int i = 0; i < 100; ++i) CHECK(cbtm::sample_token(lp, 1.0, 1e-6, rng) == 0);
  // the same seed gives the same draws
  std::mt19937_64 r1(42), r2(42);
  for (int i = 0; i < 50; ++i) CHECK(cbtm::sample_token(lp, 1.0, 0.9, r1) == cbtm::sample_token(lp, 1.0, 0.9, r2));
  CHECK_THROWS_AS(cbtm::sample_token({}, 1.0, 1.0, rng), cbtm::Error);
}
