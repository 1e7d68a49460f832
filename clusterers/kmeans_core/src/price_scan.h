#pragma once
// The two scans of the auction over one cost row (internal to auction.cpp): values
// q[c] * M + p[c] (integer cost times multiplier plus price, exact in double). Eight at a
// time with GCC/Clang vector extensions, compiled for AVX-512, AVX2 and the x86-64 baseline
// and chosen at run time (target_clones); every clone returns the same values (a minimum of
// exact values does not depend on the order it is taken in).
#include <cstdint>
#include <limits>

namespace cbtm::kmeans::scan {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// min over c in [lo, hi) of q[c] * M + p[c] (+inf for an empty range).
double min_cost(const int32_t* q, const double* p, double M, int32_t lo, int32_t hi);

/// min over c in [0, k), c != skip, of q[c] * M + p[c]: the best other cluster of a point in
/// cluster `skip`.
double min_other(const int32_t* q, const double* p, double M, int32_t k, int32_t skip);

/// Smallest and second smallest of q[c] * M + p[c] over c in [0, k), and the index of the
/// smallest (the lowest index among equal values).
void best_two(const int32_t* q, const double* p, double M, int32_t k, double& best,
              double& second, int32_t& arg);

}  // namespace cbtm::kmeans::scan
