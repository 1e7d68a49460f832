// The balanced auction against an independent exact solver: for every choice of which
// n mod k clusters take ceil(n/k) points, a Hungarian algorithm on the square problem with
// each cluster replicated by its capacity; the optimum is the best over the choices.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "support/catch.h"

#include "kmeans_core/auction.h"

using cbtm::kmeans::AuctionOptions;
using cbtm::kmeans::BalancedAssignment;
using cbtm::kmeans::BalancedAuction;

namespace {

// Hungarian algorithm (shortest augmenting paths with potentials), square n x n, min cost.
double hungarian(const std::vector<std::vector<double>>& a) {
  const int n = static_cast<int>(a.size());
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<int> p(n + 1, 0), way(n + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<char> used(n + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = a[i0 - 1][j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  double total = 0;
  for (int j = 1; j <= n; ++j) total += a[p[j] - 1][j - 1];
  return total;
}

// Optimal balanced cost of the n x k cost matrix c (row-major).
template <class T>
double balanced_optimum(const std::vector<T>& c, int n, int k) {
  const int lo = n / k, r = n % k;
  double best = std::numeric_limits<double>::infinity();
  std::vector<char> big(k, 0);
  std::fill(big.begin(), big.begin() + r, 1);
  std::sort(big.begin(), big.end());
  do {  // every subset of r clusters that take lo + 1 points
    std::vector<int> col_cluster;
    for (int j = 0; j < k; ++j)
      for (int t = 0; t < lo + big[j]; ++t) col_cluster.push_back(j);
    std::vector<std::vector<double>> a(n, std::vector<double>(n));
    for (int i = 0; i < n; ++i)
      for (int s = 0; s < n; ++s) a[i][s] = static_cast<double>(c[i * k + col_cluster[s]]);
    best = std::min(best, hungarian(a));
  } while (std::next_permutation(big.begin(), big.end()));
  return best;
}

// Min-cost flow by successive shortest paths (Bellman-Ford queue), an independent exact
// solver for larger instances: source -> point (1) -> cluster (cost c) -> sink with
// capacity floor(n/k), plus cluster -> pool (1) -> sink (n mod k) for the larger clusters.
int64_t min_cost_flow_optimum(const std::vector<int32_t>& c, int n, int k) {
  struct Arc {
    int to, cap;
    int64_t cost;
  };
  const int S = n + k + 1, T = n + k + 2, pool = n + k, V = n + k + 3;
  std::vector<Arc> arcs;
  std::vector<std::vector<int>> out(V);
  auto add = [&](int a, int b, int cap, int64_t cost) {
    out[a].push_back(int(arcs.size()));
    arcs.push_back({b, cap, cost});
    out[b].push_back(int(arcs.size()));
    arcs.push_back({a, 0, -cost});
  };
  for (int i = 0; i < n; ++i) {
    add(S, i, 1, 0);
    for (int j = 0; j < k; ++j) add(i, n + j, 1, c[i * k + j]);
  }
  for (int j = 0; j < k; ++j) {
    add(n + j, T, n / k, 0);
    add(n + j, pool, 1, 0);
  }
  add(pool, T, n % k, 0);
  int64_t total = 0;
  for (int unit = 0; unit < n; ++unit) {
    std::vector<int64_t> dist(V, std::numeric_limits<int64_t>::max());
    std::vector<int> via(V, -1);
    std::vector<char> queued(V, 0);
    std::vector<int> queue = {S};
    dist[S] = 0;
    for (size_t h = 0; h < queue.size(); ++h) {
      const int a = queue[h];
      queued[a] = 0;
      for (int e : out[a])
        if (arcs[e].cap > 0 && dist[a] + arcs[e].cost < dist[arcs[e].to]) {
          dist[arcs[e].to] = dist[a] + arcs[e].cost;
          via[arcs[e].to] = e;
          if (!queued[arcs[e].to]) {
            queued[arcs[e].to] = 1;
            queue.push_back(arcs[e].to);
          }
        }
    }
    REQUIRE(via[T] >= 0);
    for (int v = T; v != S; v = arcs[via[v] ^ 1].to) {
      --arcs[via[v]].cap;
      ++arcs[via[v] ^ 1].cap;
    }
    total += dist[T];
  }
  return total;
}

void check_sizes(const BalancedAssignment& a, int64_t n, int32_t k) {
  REQUIRE(static_cast<int64_t>(a.cluster.size()) == n);
  std::vector<int64_t> count(k, 0);
  for (int32_t j : a.cluster) {
    REQUIRE(j >= 0);
    REQUIRE(j < k);
    ++count[j];
  }
  REQUIRE(count == a.sizes);
  int64_t big = 0;
  for (int64_t s : count) {
    REQUIRE((s == n / k || s == n / k + 1));
    big += s == n / k + 1;
  }
  // Exactly n mod k clusters are one larger (when k divides n, none).
  CHECK(big == (n % k == 0 ? 0 : n % k));
}

std::vector<float> squared_distance_costs(int n, int k, int dim, std::mt19937& gen) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(n * dim), c(k * dim), out(n * k);
  for (auto& v : x) v = g(gen);
  for (auto& v : c) v = g(gen) * 0.7f;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) {
      float s = 0;
      for (int d = 0; d < dim; ++d) s += (x[i * dim + d] - c[j * dim + d]) * (x[i * dim + d] - c[j * dim + d]);
      out[i * k + j] = s;
    }
  return out;
}

}  // namespace

TEST_CASE("auction: the independent solver itself is right on a hand-checked instance",
          "[auction]") {
  // 3 points, 2 clusters: sizes {2,1} or {1,2}. Costs: everyone prefers cluster 0.
  //   p0: (0, 10), p1: (1, 5), p2: (2, 3)  -> best: p0,p1 in 0, p2 in 1: 0+1+3 = 4
  //   (alternatives: p0,p2 in 0 + p1 in 1 = 0+2+5 = 7; p0 alone in 0 = 0+5+3 = 8, ...)
  const std::vector<int32_t> c = {0, 10, 1, 5, 2, 3};
  CHECK(balanced_optimum(c, 3, 2) == 4.0);
  CHECK(min_cost_flow_optimum(c, 3, 2) == 4);
  BalancedAuction auction;
  const BalancedAssignment a = auction.solve_integer(c.data(), 3, 2);
  CHECK(a.cost == 4.0);
  CHECK(a.cluster == std::vector<int32_t>{0, 0, 1});
}

TEST_CASE("auction: sizes are floor(n/k) or ceil(n/k) - leftovers on distinct clusters",
          "[auction]") {
  std::mt19937 gen(7);
  for (auto [n, k] : std::vector<std::pair<int, int>>{{1003, 8}, {10, 3}, {1024, 8}, {50, 7},
                                                        {9, 9}, {5, 1}, {130, 64}}) {
    INFO("n=" << n << " k=" << k);
    const std::vector<float> c = squared_distance_costs(n, k, 5, gen);
    BalancedAuction auction;
    check_sizes(auction.solve(c.data(), n, k), n, k);
  }
  SECTION("even when every point prefers the same cluster") {
    const int n = 1003, k = 8;
    std::vector<float> c(n * k);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < k; ++j) c[i * k + j] = j == 0 ? 0.f : 1.f + 0.001f * (i % 17) + j;
    BalancedAuction auction;
    check_sizes(auction.solve(c.data(), n, k), n, k);
  }
}

TEST_CASE("auction: exact optimum for integer costs (vs Hungarian)", "[auction]") {
  std::mt19937 gen(11);
  int cases = 0;
  for (int k = 1; k <= 6; ++k)
    for (int n : {k, k + 1, 2 * k - 1, 2 * k + 1, 3 * k, 17, 23, 31, 40}) {
      if (n < k || n > 40) continue;
      for (int range : {3, 100, 100000}) {
        std::uniform_int_distribution<int32_t> u(0, range);
        std::vector<int32_t> c(n * k);
        for (auto& v : c) v = u(gen);
        for (int threads : {1, 2}) {
          AuctionOptions o;
          o.threads = threads;
          o.parallel_min_bidders = 4;  // exercise the Jacobi rounds on these small problems
          BalancedAuction auction(o);
          const BalancedAssignment a = auction.solve_integer(c.data(), n, k);
          INFO("n=" << n << " k=" << k << " range=" << range << " threads=" << threads);
          check_sizes(a, n, k);
          const double opt = balanced_optimum(c, n, k);
          REQUIRE(a.cost == opt);
          REQUIRE(double(min_cost_flow_optimum(c, n, k)) == opt);  // the two checkers agree
          ++cases;
        }
      }
    }
  CHECK(cases > 100);
}

TEST_CASE("auction: exact on larger instances (vs min-cost flow)", "[auction]") {
  std::mt19937 gen(13);
  for (auto [n, k] : std::vector<std::pair<int, int>>{{1003, 8}, {500, 7}, {300, 16}}) {
    // Costs like squared distances (structured, many near ties) rounded to integers.
    std::vector<float> f = squared_distance_costs(n, k, 4, gen);
    std::vector<int32_t> c(n * k);
    for (int v = 0; v < n * k; ++v) c[v] = int32_t(std::lround(f[v] * 100));
    AuctionOptions o;
    o.threads = 2;
    o.parallel_min_bidders = 64;
    BalancedAuction auction(o);
    for (int round = 0; round < 3; ++round) {  // cold, then warm starts on changed costs
      INFO("n=" << n << " k=" << k << " round " << round);
      const BalancedAssignment a = auction.solve_integer(c.data(), n, k);
      check_sizes(a, n, k);
      REQUIRE(a.cost == double(min_cost_flow_optimum(c, n, k)));
      for (auto& v : c) v += int32_t(gen() % 7);
    }
  }
}

TEST_CASE("auction: float costs are within the reported gap of the optimum", "[auction]") {
  std::mt19937 gen(3);
  for (auto [n, k] : std::vector<std::pair<int, int>>{{10, 3}, {40, 4}, {37, 5}, {24, 8}}) {
    for (int64_t levels : {int64_t(1) << 20, int64_t(64)}) {
      const std::vector<float> c = squared_distance_costs(n, k, 3, gen);
      AuctionOptions o;
      o.levels = levels;
      BalancedAuction auction(o);
      const BalancedAssignment a = auction.solve(c.data(), n, k);
      const double opt = balanced_optimum(c, n, k);
      INFO("n=" << n << " k=" << k << " levels=" << levels);
      check_sizes(a, n, k);
      CHECK(a.max_gap > 0);
      CHECK(a.cost >= opt - 1e-9 * std::abs(opt));
      CHECK(a.cost <= opt + a.max_gap + 1e-9 * std::abs(opt));
      if (levels == (int64_t(1) << 20)) CHECK(a.cost == Approx(opt).epsilon(1e-5));
    }
  }
}

TEST_CASE("auction: warm starts stay exact", "[auction]") {
  // Successive solves with slowly changing costs (as in Lloyd iterations) reuse prices and
  // assignments; each result must still be optimal.
  std::mt19937 gen(5);
  const int n = 33, k = 4;
  std::uniform_int_distribution<int32_t> u(0, 1000), du(-60, 60);
  std::vector<int32_t> c(n * k);
  for (auto& v : c) v = u(gen);
  AuctionOptions o;
  o.threads = 2;
  o.parallel_min_bidders = 8;
  BalancedAuction auction(o);
  for (int round = 0; round < 6; ++round) {
    const BalancedAssignment a = auction.solve_integer(c.data(), n, k);
    INFO("round " << round);
    CHECK(a.stats.warm == (round > 0));
    check_sizes(a, n, k);
    REQUIRE(a.cost == balanced_optimum(c, n, k));
    for (auto& v : c) v = std::max(0, v + du(gen));
  }
}

TEST_CASE("auction: optimal vs brute force over every balanced assignment (n <= 8 - k <= 3)",
          "[auction]") {
  // Enumerates all k^n assignments, keeps those with floor/ceil sizes, takes the cheapest:
  // no shared code or reasoning with the Hungarian and flow checkers above.
  std::mt19937 gen(17);
  int cases = 0;
  for (int k = 1; k <= 3; ++k)
    for (int n = k; n <= 8; ++n)
      for (int rep = 0; rep < 3; ++rep) {
        std::uniform_int_distribution<int32_t> u(0, rep == 0 ? 4 : 1000);  // rep 0: many ties
        std::vector<int32_t> c(n * k);
        for (auto& v : c) v = u(gen);
        const std::vector<float> f = squared_distance_costs(n, k, 2, gen);
        double best_int = std::numeric_limits<double>::infinity(), best_f = best_int;
        std::vector<int> a(n, 0);
        for (int64_t code = 0, total = int64_t(std::pow(k, n)); code < total; ++code) {
          int64_t t = code;
          std::vector<int> size(k, 0);
          for (int i = 0; i < n; ++i, t /= k) ++size[a[i] = int(t % k)];
          bool ok = true;
          for (int s : size) ok = ok && (s == n / k || s == (n + k - 1) / k);
          if (!ok) continue;
          double ci = 0, cf = 0;
          for (int i = 0; i < n; ++i) {
            ci += c[i * k + a[i]];
            cf += f[i * k + a[i]];
          }
          best_int = std::min(best_int, ci);
          best_f = std::min(best_f, cf);
        }
        INFO("n=" << n << " k=" << k << " rep " << rep);
        BalancedAuction auction;
        const BalancedAssignment ai = auction.solve_integer(c.data(), n, k);
        check_sizes(ai, n, k);
        CHECK(ai.cost == best_int);
        BalancedAuction fauction;
        const BalancedAssignment af = fauction.solve(f.data(), n, k);
        check_sizes(af, n, k);
        CHECK(af.cost >= best_f - 1e-6);
        CHECK(af.cost <= best_f + af.max_gap + 1e-6);
        CHECK(af.cost == Approx(best_f).epsilon(1e-5));
        ++cases;
      }
  CHECK(cases == 3 * (8 + 7 + 6));
}

TEST_CASE("auction: input errors", "[auction]") {
  BalancedAuction auction;
  std::vector<float> c(6, 1.f);
  CHECK_THROWS_WITH(auction.solve(c.data(), 2, 3),
                    ContainsText("k=3 is larger than the number of points (2)"));
  CHECK_THROWS(auction.solve(c.data(), 6, 0));
  c[4] = std::nanf("");
  CHECK_THROWS_WITH(auction.solve(c.data(), 3, 2), ContainsText("row 2"));
}
