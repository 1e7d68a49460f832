#pragma once
// The two scans of the auction over one cost row (internal to auction.cpp): values
// q[c] * M + p[c] (integer cost times multiplier plus price, exact in double), two at a
// time with GCC/Clang vector extensions (SSE2 on x86-64).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

namespace cbtm::kmeans::scan {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Two doubles, two int32.
typedef double v2d __attribute__((vector_size(16)));
typedef int32_t v2i __attribute__((vector_size(8)));

inline v2d costs2(const int32_t* q, const double* p, double M) {
  v2i a;
  v2d b;
  std::memcpy(&a, q, sizeof a);
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(a, v2d) * M + b;
}

// min over c in [lo, hi) of q[c] * M + p[c].
inline double min_cost(const int32_t* q, const double* p, double M, int32_t lo, int32_t hi) {
  v2d m0 = {kInf, kInf}, m1 = m0;
  int32_t c = lo;
  for (; c + 4 <= hi; c += 4) {
    const v2d a = costs2(q + c, p + c, M), b = costs2(q + c + 2, p + c + 2, M);
    m0 = a < m0 ? a : m0;
    m1 = b < m1 ? b : m1;
  }
  double m = std::min(std::min(m0[0], m0[1]), std::min(m1[0], m1[1]));
  for (; c < hi; ++c) m = std::min(m, q[c] * M + p[c]);
  return m;
}

// Smallest and second smallest of q[c] * M + p[c] over c in [0, k), and the index of the
// smallest (the lowest index among equal values).
inline void best_two(const int32_t* q, const double* p, double M, int32_t k, double& best,
                     double& second, int32_t& arg) {
  v2d b1 = {kInf, kInf}, b2 = b1, ix = {-1, -1};
  const v2d step = {2, 2};
  v2d cur = {0, 1};
  int32_t c = 0;
  for (; c + 2 <= k; c += 2) {
    const v2d t = costs2(q + c, p + c, M);
    const v2d lt = t < b1 ? t : b1;           // new best
    const v2d hi = t < b1 ? b1 : t;           // the other one
    b2 = hi < b2 ? hi : b2;
    ix = t < b1 ? cur : ix;
    b1 = lt;
    cur += step;
  }
  // Merge the two lanes (lane 0 holds even indices, lane 1 odd ones).
  double B1 = b1[0], B2 = b2[0];
  double I = ix[0];
  auto take = [&](double v, double i) {
    if (v < B1 || (v == B1 && i < I)) {
      B2 = B1;
      B1 = v;
      I = i;
    } else if (v < B2) {
      B2 = v;
    }
  };
  take(b1[1], ix[1]);
  B2 = std::min(B2, b2[1]);
  for (; c < k; ++c) take(q[c] * M + p[c], c);
  best = B1;
  second = B2;
  arg = static_cast<int32_t>(I);
}

}  // namespace cbtm::kmeans::scan
