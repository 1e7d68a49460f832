#pragma once
/// \file auction.h
/// Balanced linear assignment by the auction algorithm (Bertsekas 1992), the E-step of
/// balanced k-means (paper §2.1, eq. 1).
///
/// Problem: n points, k clusters, cost c[i][j] (a squared distance). Assign every point to
/// one cluster so that each cluster receives floor(n/k) or ceil(n/k) points (the n mod k
/// larger clusters are chosen by the optimisation, never all dumped on one cluster) and the
/// total cost is minimal.
///
/// Method (Bertsekas' auction / eps-relaxation on the transportation network): one price
/// per cluster. An unassigned point bids for its cheapest cluster (cost + price) and
/// records its tolerance, the price up to which that cluster stays within eps of its second
/// best. A cluster over capacity evicts the member of smallest tolerance (members sit in a
/// per-cluster min-heap) and raises its price to that tolerance + eps; the evicted point
/// bids again. When k does not divide n, k - n mod k "dummy" units (cost 0, at most one per
/// cluster) fill the slack, so every cluster keeps floor(n/k) or ceil(n/k) points. Bids are
/// Gauss-Seidel, or Jacobi rounds with parallel bid computation while many points are
/// unassigned. Epsilon-scaling runs phases eps = C/8, C/64, ..., 1 (C: cost range), keeping
/// between phases every assignment that still satisfies eps-complementary slackness (only
/// the heaps of clusters that lost a member are rebuilt); after a quiet phase (fewer than
/// n/256 bids) the next step divides eps by 8^2, 8^3, ... instead of 8.
///
/// Exactness: an assignment with eps-CS is within 2 * eps * units of the optimum (units =
/// n + dummies). The solver multiplies integer costs by M = 2 * units + 1 and ends with
/// eps = 1, so for integer costs the result is EXACTLY optimal (solve_integer). Float costs
/// are first quantised per row: q[i][j] = round((c[i][j] - min_j c[i][j]) * s) with
/// s = levels / (largest row range); the result is exactly optimal for q, hence within
/// n / s of the float optimum (reported as BalancedAssignment::max_gap).
///
/// Warm start: a solver object remembers its prices and assignment; the next solve() with
/// the same n and k (the next Lloyd iteration) starts from them, at eps = C/8^4.
///
/// \code
///   AuctionOptions o;
///   o.threads = 2;
///   BalancedAuction auction(o);
///   BalancedAssignment a = auction.solve(dist.data(), n, k);   // a.cluster[i], a.cost
/// \endcode
#include <cstdint>
#include <memory>
#include <vector>

namespace cbtm::kmeans {

struct AuctionOptions {
  /// Float costs: the largest row range maps to this many integer levels (capped at
  /// 2^45 / (2 (n + k) + 1) for huge n).
  int64_t levels = int64_t(1) << 20;
  /// eps is divided by this factor between scaling phases (>= 2).
  int64_t eps_factor = 8;
  /// Worker threads for bid computation and checks (>= 1). The result does not depend on it.
  int threads = 1;
  /// Jacobi rounds (bids computed in parallel, applied in order) while at least this many
  /// points are unassigned; Gauss-Seidel bidding below it. Same rule for any thread count.
  int64_t parallel_min_bidders = 2048;
  /// Reuse prices and assignment of the previous solve with the same n and k.
  bool warm_start = true;
};

struct AuctionStats {
  int phases = 0;       ///< eps-scaling phases run
  int64_t bids = 0;     ///< accepted bids (and dummy placements)
  int64_t rejected = 0; ///< Jacobi bids made stale by an earlier bid of the same round
  int64_t rounds = 0;   ///< Jacobi rounds
  double seconds = 0;
  bool warm = false;    ///< started from the previous solve's prices
};

struct BalancedAssignment {
  std::vector<int32_t> cluster;  ///< per point, in [0, k)
  std::vector<int64_t> sizes;    ///< per cluster: floor(n/k) or ceil(n/k)
  double cost = 0;               ///< total of the input costs of the assignment
  /// cost - optimum <= max_gap: 0 for solve_integer, n / s for solve (see the file comment).
  double max_gap = 0;
  AuctionStats stats;
};

class BalancedAuction {
 public:
  explicit BalancedAuction(AuctionOptions options = {});
  ~BalancedAuction();
  BalancedAuction(BalancedAuction&&) noexcept;
  BalancedAuction& operator=(BalancedAuction&&) noexcept;

  /// cost: n x k row-major, finite. Requires 1 <= k <= n.
  BalancedAssignment solve(const float* cost, int64_t n, int32_t k);
  /// Exact optimum for integer costs; needs (largest row range) * (2 (n + k) + 1) < 2^46
  /// (std::invalid_argument otherwise).
  BalancedAssignment solve_integer(const int32_t* cost, int64_t n, int32_t k);
  /// Forgets the warm-start state.
  void reset();
  /// The per-cluster prices after the last solve, in cost units (the optimal dual up to
  /// eps): every point's cluster minimises cost + price within 2 eps.
  std::vector<double> cluster_prices() const;

 private:
  struct Solver;
  AuctionOptions options_;
  std::unique_ptr<Solver> solver_;
  std::vector<int32_t> q_;  // quantised costs of the current solve
};

}  // namespace cbtm::kmeans
