// The auction's row scans; see price_scan.h.
#include "price_scan.h"

#include <algorithm>
#include <cstring>

namespace cbtm::kmeans::scan {
namespace {

typedef double v8d __attribute__((vector_size(64)));
typedef int32_t v8i __attribute__((vector_size(32)));

#define CBTM_SCAN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

inline v8d costs8(const int32_t* q, const double* p, double M) {
  v8i a;
  v8d b;
  std::memcpy(&a, q, sizeof a);
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(a, v8d) * M + b;
}

}  // namespace

CBTM_SCAN_CLONES double min_cost(const int32_t* q, const double* p, double M, int32_t lo,
                                 int32_t hi) {
  v8d m = {kInf, kInf, kInf, kInf, kInf, kInf, kInf, kInf};
  int32_t c = lo;
  for (; c + 8 <= hi; c += 8) {
    const v8d t = costs8(q + c, p + c, M);
    m = t < m ? t : m;
  }
  double r = kInf;
  for (int l = 0; l < 8; ++l) r = std::min(r, m[l]);
  for (; c < hi; ++c) r = std::min(r, q[c] * M + p[c]);
  return r;
}

double min_other(const int32_t* q, const double* p, double M, int32_t k, int32_t skip) {
  return std::min(min_cost(q, p, M, 0, skip), min_cost(q, p, M, skip + 1, k));
}

CBTM_SCAN_CLONES void best_two(const int32_t* q, const double* p, double M, int32_t k,
                               double& best, double& second, int32_t& arg) {
  // Lane l holds the best and second best of the indices c = l (mod 8) seen so far, and
  // the index of its best (the first one: a later index replaces it only when smaller).
  v8d b1 = {kInf, kInf, kInf, kInf, kInf, kInf, kInf, kInf}, b2 = b1;
  v8d ix = {0, 1, 2, 3, 4, 5, 6, 7}, cur = ix;
  const v8d step = {8, 8, 8, 8, 8, 8, 8, 8};
  int32_t c = 0;
  for (; c + 8 <= k; c += 8) {
    const v8d t = costs8(q + c, p + c, M);
    const v8d lt = t < b1 ? t : b1;  // new best
    const v8d hi = t < b1 ? b1 : t;  // the other one
    b2 = hi < b2 ? hi : b2;
    ix = t < b1 ? cur : ix;
    b1 = lt;
    cur += step;
  }
  // Merge the lanes: the best value, lowest index among equals; the second best is the
  // smallest of every lane's second and every other lane's best.
  double B1 = kInf, B2 = kInf, I = -1;
  int L = -1;
  for (int l = 0; l < 8; ++l)
    if (b1[l] < B1 || (b1[l] == B1 && b1[l] < kInf && ix[l] < I)) {
      B1 = b1[l];
      I = ix[l];
      L = l;
    }
  for (int l = 0; l < 8; ++l) {
    B2 = std::min(B2, b2[l]);
    if (l != L) B2 = std::min(B2, b1[l]);
  }
  for (; c < k; ++c) {  // the tail: indices above every lane's
    const double v = q[c] * M + p[c];
    if (v < B1) {
      B2 = B1;
      B1 = v;
      I = c;
    } else if (v < B2) {
      B2 = v;
    }
  }
  best = B1;
  second = B2;
  arg = static_cast<int32_t>(I);
}

}  // namespace cbtm::kmeans::scan
