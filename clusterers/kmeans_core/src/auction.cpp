// Balanced assignment by an auction / eps-relaxation method with eps-scaling; see auction.h.
//
// The network: point i -> cluster j (cost c_ij, capacity 1); a dummy source D with
// k*cap - n units -> cluster j (cost 0, capacity 1); every cluster takes cap = ceil(n/k)
// units. A cluster that ends holding a dummy unit has floor(n/k) points.
//
// Prices: P_j per cluster (rises only within a phase), pi_i per point, pi_D for D. eps-CS:
// for an arc with flow, reduced cost c + P_j - pi <= eps; without flow, >= -eps. A point
// bids for its best cluster j (t = c_ij + P_j smallest) with the largest admissible price
// pi_i = t2 + eps (t2: its best other cluster), so it stays in j while P_j <= beta_i with
// beta_i = t2 - c_ij + eps (its "tolerance"). A cluster over capacity evicts the unit of
// smallest tolerance and raises its price to that tolerance + eps: every other member
// keeps eps-CS and the evicted one bids again. Members sit in a per-cluster min-heap keyed
// by beta - eps = t2 - c_ij, which does not depend on eps: when a new phase lowers eps, a
// heap whose members all keep eps-CS (and their t2) stays valid as it is, so only the heaps
// of clusters that lost a member or whose members' t2 changed are rebuilt.
//
// A feasible flow with eps-CS costs at most 2 * eps * units more than the optimum (each
// unit differs from any other feasible flow on at most two arcs, each off by <= eps), so
// integer costs multiplied by M = 2 * units + 1 and a last phase at eps = 1 give the exact
// optimum. All prices and costs are integers held in doubles (exact below 2^53).
#include "kmeans_core/auction.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "price_scan.h"

namespace cbtm::kmeans {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kExactLimit = 4503599627370496.0;  // 2^52: integers stay exact below this
constexpr int64_t kDummy = -1;                      // queue entry: a unit of D to place
// Loops shorter than this run on one thread: waking the team costs more than it saves
// (and much more on a busy machine).
constexpr int64_t kParallelMin = 8192;
}  // namespace

struct BalancedAuction::Solver {
  // ---- shape ------------------------------------------------------------------------
  int64_t n = 0;        // points
  int32_t k = 0;        // clusters
  int32_t cap = 0;      // units per cluster: ceil(n / k)
  int64_t dummies = 0;  // units of D: k * cap - n (< k)
  double M = 1;         // cost multiplier
  const int32_t* q = nullptr;  // n x k integer costs (>= 0)

  // ---- state --------------------------------------------------------------------------
  std::vector<double> P;           // per cluster price
  std::vector<int32_t> cluster_of; // per point: cluster or -1
  std::vector<double> t2ref;       // per point: see start_phase
  std::vector<int32_t> own_q;      // per assigned point: q of its own cluster (a dense copy,
                                   // so the scans between phases need not read cost rows)
  std::vector<char> has_dummy;     // per cluster: holds a unit of D
  std::vector<int32_t> fill;       // per cluster: units held (points + dummy)
  double piD = 0;                  // price of D
  // Per cluster, a min-heap of (tolerance - eps, point) with room for cap + 1 entries; key
  // and point side by side, so a heap step touches one cache line.
  struct Entry {
    double key;
    int64_t v;
  };
  std::vector<Entry> heap;
  std::vector<int32_t> hsize;
  std::vector<char> touched;       // per cluster: its heap must be rebuilt (start_phase)

  // ---- warm start ----------------------------------------------------------------------
  std::vector<double> warm_P;  // cost units
  int64_t warm_n = -1;
  int32_t warm_k = -1;
  double units = 1;            // integer price units per cost unit (last solve)

  void shape(int64_t n_, int32_t k_) {
    n = n_;
    k = k_;
    cap = static_cast<int32_t>((n + k - 1) / k);
    dummies = static_cast<int64_t>(k) * cap - n;
    M = static_cast<double>(2 * (n + dummies) + 1);
  }

  // ---- heaps ----------------------------------------------------------------------------
  int64_t hbase(int32_t j) const { return static_cast<int64_t>(j) * (cap + 1); }
  void heap_push(int32_t j, double key, int64_t v) {
    Entry* hp = heap.data() + hbase(j);
    int32_t h = hsize[j]++;
    while (h > 0) {
      const int32_t parent = (h - 1) / 2;
      if (!(key < hp[parent].key)) break;
      hp[h] = hp[parent];
      h = parent;
    }
    hp[h] = {key, v};
  }
  void sift_down(int32_t j, int32_t h) {
    Entry* hp = heap.data() + hbase(j);
    const int32_t size = hsize[j];
    const Entry e = hp[h];
    for (;;) {
      int32_t c = 2 * h + 1;
      if (c >= size) break;
      if (c + 1 < size && hp[c + 1].key < hp[c].key) ++c;
      if (!(hp[c].key < e.key)) break;
      hp[h] = hp[c];
      h = c;
    }
    hp[h] = e;
  }
  int64_t heap_pop(int32_t j) {
    Entry* hp = heap.data() + hbase(j);
    const int64_t top = hp[0].v;
    const int32_t last = --hsize[j];
    if (last > 0) {
      hp[0] = hp[last];
      sift_down(j, 0);
    }
    return top;
  }
  // The smallest key of cluster j's heap (tolerance - eps), or +inf when empty.
  double heap_min(int32_t j) const { return hsize[j] > 0 ? heap[hbase(j)].key : kInf; }

  // ---- bids -------------------------------------------------------------------------------
  // Bids read a random cost row: fetch it ahead of time.
  void prefetch_row(int64_t p) const {
    if (p < 0) return;
    const char* row = reinterpret_cast<const char*>(q + p * k);
    for (int64_t b = 0; b < static_cast<int64_t>(k * sizeof(int32_t)); b += 64)
      __builtin_prefetch(row + b);
  }

  // Best cluster of point i at the current prices and its tolerance there.
  void bid_point(int64_t i, double eps, int32_t& cluster, double& beta) const {
    const int32_t* qi = q + i * k;
    double best, second;
    int32_t jb;
    scan::best_two(qi, P.data(), M, k, best, second, jb);
    cluster = jb;
    beta = second - qi[jb] * M + eps;
  }

  // Puts point i (tolerance beta) into cluster j; returns the unit evicted, if any:
  // a point id, kDummy, or -2 for none.
  int64_t join(int64_t i, int32_t j, double beta, double eps) {
    heap_push(j, beta - eps, i);
    own_q[i] = q[i * k + j];
    t2ref[i] = beta - eps + own_q[i] * M;
    cluster_of[i] = j;
    return ++fill[j] > cap ? evict(j, eps) : -2;
  }
  int64_t evict(int32_t j, double eps) {
    --fill[j];
    const double hm = heap_min(j) + eps;  // the smallest tolerance
    if (has_dummy[j] && piD <= hm) {
      has_dummy[j] = 0;
      P[j] = piD + eps;
      return kDummy;
    }
    P[j] = hm + eps;
    const int64_t e = heap_pop(j);
    cluster_of[e] = -1;
    return e;
  }
  // Places one unit of D on the cheapest cluster without one.
  int64_t place_dummy(double eps) {
    double best = kInf, second = kInf;
    int32_t jb = -1;
    for (int32_t j = 0; j < k; ++j) {
      if (has_dummy[j]) continue;
      if (P[j] < second) {
        if (P[j] < best) {
          second = best;
          best = P[j];
          jb = j;
        } else {
          second = P[j];
        }
      }
    }
    if (second < kInf) piD = std::max(piD, second + eps);
    has_dummy[jb] = 1;
    return ++fill[jb] > cap ? evict(jb, eps) : -2;
  }

  // ---- phase start: keep what satisfies eps-CS ---------------------------------------------
  // t2ref[i] is a lower bound of point i's best other cluster value (cost + price), kept
  // from its bid or its last exact check: prices only rise within a solve, so it stays a
  // lower bound, and a member with cost + price <= t2ref + 2 eps satisfies eps-CS without
  // rescanning its row. `exact` (first phase of a solve: the costs are new) rescans all.
  void start_phase(double eps, bool exact, const AuctionOptions& o,
                   std::vector<int64_t>& queue) {
    // 1. Every assigned point: refresh t2ref when the shortcut does not apply, and unassign
    //    it when it violates eps-CS; mark its cluster when its key or membership changes.
    //    Each point is independent, so the pass runs in parallel (touched[] only ever
    //    receives 1, with relaxed atomic stores).
    touched.assign(static_cast<size_t>(k), exact ? 1 : 0);
    char* tch = touched.data();
#pragma omp parallel for num_threads(o.threads) schedule(static) \
    if (n >= kParallelMin && o.threads > 1)
    for (int64_t i = 0; i < n; ++i) {
      const int32_t j = cluster_of[i];
      if (j < 0) continue;
      const int32_t* qi = q + i * k;
      if (exact) own_q[i] = qi[j];  // new costs
      const double own = own_q[i] * M + P[j];
      if (exact || own > t2ref[i] + 2 * eps) {
        const double t2 = scan::min_other(qi, P.data(), M, k, j);
        if (t2 != t2ref[i]) {
          t2ref[i] = t2;
          __atomic_store_n(tch + j, char(1), __ATOMIC_RELAXED);
        }
      }
      // pi_i must satisfy own - eps <= pi_i <= t2 + eps: impossible when own > t2 + 2 eps.
      if (own > t2ref[i] + 2 * eps) {
        cluster_of[i] = -1;
        __atomic_store_n(tch + j, char(1), __ATOMIC_RELAXED);
      }
    }
    // 2. The queue: unassigned points in index order.
    queue.clear();
    for (int64_t i = 0; i < n; ++i)
      if (cluster_of[i] < 0) queue.push_back(i);
    // 3. Rebuild the marked heaps from their remaining members (a first phase of a solve:
    //    every heap, from the assignment, since the costs changed).
    if (exact) {
      std::fill(hsize.begin(), hsize.end(), 0);
      for (int64_t i = 0; i < n; ++i) {
        const int32_t j = cluster_of[i];
        if (j < 0) continue;
        heap[hbase(j) + hsize[j]].v = i;
        ++hsize[j];
      }
    }
    for (int32_t j = 0; j < k; ++j) {
      if (!touched[j]) continue;
      Entry* hp = heap.data() + hbase(j);
      int32_t m = 0;
      for (int32_t h = 0; h < hsize[j]; ++h) {
        const int64_t i = hp[h].v;
        if (cluster_of[i] != j) continue;
        hp[m++] = {t2ref[i] - own_q[i] * M, i};
      }
      hsize[j] = m;
      for (int32_t h = m / 2 - 1; h >= 0; --h) sift_down(j, h);
    }
    for (int32_t j = 0; j < k; ++j) fill[j] = hsize[j];
    // D: pi_D <= P_j + eps for clusters without a unit, >= P_j - eps for those with one.
    if (dummies > 0) {
      double free_min = kInf;
      for (int32_t j = 0; j < k; ++j)
        if (!has_dummy[j]) free_min = std::min(free_min, P[j]);
      piD = free_min + eps;
      for (int32_t j = 0; j < k; ++j) {
        if (has_dummy[j] && P[j] - eps > piD) has_dummy[j] = 0;
        if (has_dummy[j]) ++fill[j];
      }
      int64_t placed = 0;
      for (int32_t j = 0; j < k; ++j) placed += has_dummy[j];
      for (int64_t u = placed; u < dummies; ++u) queue.push_back(kDummy);
    }
  }

  // ---- one phase -------------------------------------------------------------------------
  void phase(double eps, bool exact, const AuctionOptions& o, AuctionStats& st) {
    std::vector<int64_t> cur, next;
    start_phase(eps, exact, o, cur);
    std::vector<int32_t> bj;
    std::vector<double> bb;
    while (!cur.empty()) {
      const int64_t m = static_cast<int64_t>(cur.size());
      if (m >= o.parallel_min_bidders) {
        // Jacobi round: bids against the same prices, computed in parallel, applied in
        // order (whatever the thread count, so that results do not depend on it). Prices
        // only rise, so a bid's tolerance stays a valid lower bound; a bid whose cluster has
        // meanwhile become too expensive is retried next round.
        bj.resize(m);
        bb.resize(m);
        ++st.rounds;
#pragma omp parallel for num_threads(o.threads) schedule(dynamic, 256) if (m >= kParallelMin)
        for (int64_t t = 0; t < m; ++t) {
          if (t + 2 < m) prefetch_row(cur[t + 2]);
          if (cur[t] >= 0) bid_point(cur[t], eps, bj[t], bb[t]);
        }
        next.clear();
        for (int64_t t = 0; t < m; ++t) {
          const int64_t p = cur[t];
          int64_t out;
          if (p == kDummy) {
            out = place_dummy(eps);
          } else if (bb[t] >= P[bj[t]] + eps) {
            out = join(p, bj[t], bb[t], eps);
          } else {
            next.push_back(p);
            ++st.rejected;
            continue;
          }
          ++st.bids;
          if (out != -2) next.push_back(out);
        }
        std::swap(cur, next);
      } else {
        // Gauss-Seidel: one bid at a time from a FIFO.
        size_t head = 0;
        while (head < cur.size()) {
          if (head + 2 < cur.size()) prefetch_row(cur[head + 2]);
          const int64_t p = cur[head++];
          int64_t out;
          if (p == kDummy) {
            out = place_dummy(eps);
          } else {
            int32_t j;
            double b;
            bid_point(p, eps, j, b);
            out = join(p, j, b, eps);
          }
          ++st.bids;
          if (out != -2) cur.push_back(out);
          if (head >= 4096 && 2 * head >= cur.size()) {
            cur.erase(cur.begin(), cur.begin() + static_cast<std::ptrdiff_t>(head));
            head = 0;
          }
        }
        cur.clear();
      }
    }
  }

  // ---- the whole solve on integer costs (q >= 0, largest row range qmax) --------------
  AuctionStats run(const int32_t* costs, int64_t n_, int32_t k_, double qmax, double units_,
                   const AuctionOptions& o) {
    const auto t0 = std::chrono::steady_clock::now();
    AuctionStats st;
    const bool warm = o.warm_start && warm_n == n_ && warm_k == k_;
    shape(n_, k_);
    q = costs;
    units = units_ * M;
    const double C = std::max(1.0, qmax * M);
    // Prices stay within a few C of each other (each phase can lift them by about C).
    if (C * 64 >= kExactLimit)
      throw std::invalid_argument("auction: cost range times (2 n + 2 k + 1) must stay below 2^46");
    P.assign(static_cast<size_t>(k), 0.0);
    if (warm) {
      const double lo = *std::min_element(warm_P.begin(), warm_P.end());
      for (int32_t j = 0; j < k; ++j) P[j] = std::round((warm_P[j] - lo) * units);
    } else {
      cluster_of.assign(static_cast<size_t>(n), -1);
      has_dummy.assign(static_cast<size_t>(k), 0);
    }
    fill.assign(static_cast<size_t>(k), 0);
    t2ref.assign(static_cast<size_t>(n), -kInf);
    own_q.resize(static_cast<size_t>(n));
    hsize.assign(static_cast<size_t>(k), 0);
    heap.resize(static_cast<size_t>(k) * (cap + 1));
    piD = 0;
    st.warm = warm;

    if (k == 1) {
      std::fill(cluster_of.begin(), cluster_of.end(), 0);
    } else {
      const double f = static_cast<double>(std::max<int64_t>(2, o.eps_factor));
      // Cold: eps starts at C / eps_factor; warm: a few steps lower (the previous prices are
      // roughly right, and too small a start makes large corrections slow). After a quiet
      // phase (few bids: the prices were already eps-optimal for most points) the next
      // step is larger (eps_factor^2, ^3, ...), after a busy one it is eps_factor again.
      // (Measured on 100k tf-idf embeddings, k = 32, 20 Lloyd iterations: starting warm
      // solves 4 steps down and growing the step after phases with fewer than n / 256 bids
      // halve the auction time against 2 steps down and a fixed step; the result is the
      // same exact optimum either way.)
      constexpr int kWarmSteps = 4;
      constexpr int64_t kQuietBids = 256;  // a phase with fewer than n / 256 bids is quiet
      double eps = std::max(1.0, std::floor(warm ? C / std::pow(f, kWarmSteps) : C / f));
      double div = f;
      for (;;) {
        const int64_t before = st.bids;
        phase(eps, st.phases == 0, o, st);
        ++st.phases;
        const int64_t bids = st.bids - before;
        spdlog::debug("auction phase {}: eps = range / {:.3g}, {} bids", st.phases, C / eps,
                      bids);
        if (eps <= 1.0) break;
        div = bids * kQuietBids < n ? std::min(div * f, 1e15) : f;
        eps = std::max(1.0, std::floor(eps / div));
      }
    }
    const double lo = *std::min_element(P.begin(), P.end());
    const double hi = *std::max_element(P.begin(), P.end());
    if (hi - lo + C >= kExactLimit)
      throw std::runtime_error("auction: prices left the exact integer range");
    warm_P.resize(static_cast<size_t>(k));
    for (int32_t j = 0; j < k; ++j) warm_P[j] = (P[j] - lo) / units;
    warm_n = n;
    warm_k = k;
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st;
  }
};

// ---- public API ----------------------------------------------------------------------
namespace {
void check_shape(int64_t n, int32_t k) {
  if (k < 1) throw std::invalid_argument("auction: k must be >= 1, got " + std::to_string(k));
  if (n < k)
    throw std::invalid_argument("auction: k=" + std::to_string(k) +
                                " is larger than the number of points (" + std::to_string(n) +
                                ")");
}

template <class T>
BalancedAssignment finish(const std::vector<int32_t>& cluster, const T* cost, int32_t k) {
  BalancedAssignment a;
  a.cluster = cluster;
  a.sizes.assign(static_cast<size_t>(k), 0);
  for (size_t i = 0; i < cluster.size(); ++i) {
    ++a.sizes[cluster[i]];
    a.cost += static_cast<double>(cost[i * k + cluster[i]]);
  }
  return a;
}
}  // namespace

BalancedAuction::BalancedAuction(AuctionOptions options)
    : options_(options), solver_(std::make_unique<Solver>()) {
  options_.threads = std::max(1, options_.threads);
}
BalancedAuction::~BalancedAuction() = default;
BalancedAuction::BalancedAuction(BalancedAuction&&) noexcept = default;
BalancedAuction& BalancedAuction::operator=(BalancedAuction&&) noexcept = default;

void BalancedAuction::reset() { solver_ = std::make_unique<Solver>(); }

std::vector<double> BalancedAuction::cluster_prices() const {
  std::vector<double> p(solver_->P.size());
  for (size_t j = 0; j < p.size(); ++j) p[j] = solver_->P[j] / solver_->units;
  return p;
}

BalancedAssignment BalancedAuction::solve(const float* cost, int64_t n, int32_t k) {
  check_shape(n, k);
  // Quantise every row relative to its minimum (a per-row constant does not change which
  // assignment is optimal).
  std::vector<float> lo(static_cast<size_t>(n));
  double range = 0;
  int64_t bad_row = n;
#pragma omp parallel for num_threads(options_.threads) schedule(dynamic, 1024) \
    reduction(max : range) reduction(min : bad_row) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float* c = cost + i * k;
    float mn = c[0], mx = c[0];
    bool finite = true;
    for (int32_t j = 0; j < k; ++j) {
      finite = finite && std::isfinite(c[j]);
      mn = std::min(mn, c[j]);
      mx = std::max(mx, c[j]);
    }
    if (!finite) bad_row = std::min(bad_row, i);
    lo[i] = mn;
    range = std::max(range, static_cast<double>(mx) - mn);
  }
  if (bad_row < n)
    throw std::invalid_argument("auction: non-finite cost in row " + std::to_string(bad_row));
  // Levels, capped so that levels * (2 units + 1) stays in the exact range (n < 2^25 keeps
  // the default 2^20).
  const double units_max = 2.0 * (static_cast<double>(n) + k) + 1;
  const double levels =
      std::min(static_cast<double>(options_.levels), std::floor(0x1p45 / units_max));
  const double scale = range > 0 ? levels / range : 1.0;
  q_.resize(static_cast<size_t>(n * k));
  int32_t* q = q_.data();
#pragma omp parallel for num_threads(options_.threads) schedule(dynamic, 1024) \
    if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    for (int32_t j = 0; j < k; ++j)
      q[i * k + j] = static_cast<int32_t>(
          (static_cast<double>(cost[i * k + j]) - lo[i]) * scale + 0.5);

  AuctionStats st = solver_->run(q, n, k, range > 0 ? levels : 0.0, scale, options_);
  BalancedAssignment a = finish(solver_->cluster_of, cost, k);
  a.max_gap = range > 0 ? static_cast<double>(n) / scale : 0.0;
  a.stats = st;
  return a;
}

BalancedAssignment BalancedAuction::solve_integer(const int32_t* cost, int64_t n, int32_t k) {
  check_shape(n, k);
  q_.resize(static_cast<size_t>(n * k));
  int64_t range = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* c = cost + i * k;
    const int64_t mn = *std::min_element(c, c + k), mx = *std::max_element(c, c + k);
    if (mx - mn > INT32_MAX)
      throw std::invalid_argument("auction: integer costs of row " + std::to_string(i) +
                                  " span more than 2^31");
    range = std::max(range, mx - mn);
    for (int32_t j = 0; j < k; ++j) q_[i * k + j] = static_cast<int32_t>(c[j] - mn);
  }
  AuctionStats st = solver_->run(q_.data(), n, k, static_cast<double>(range), 1.0, options_);
  BalancedAssignment a = finish(solver_->cluster_of, cost, k);
  a.stats = st;
  return a;
}

}  // namespace cbtm::kmeans
