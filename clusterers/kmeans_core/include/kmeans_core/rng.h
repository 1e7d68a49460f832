#pragma once
/// \file rng.h
/// A seeded random generator whose streams are identical on every platform and standard
/// library (std::mt19937_64 is specified exactly; the std distributions are not, so the
/// integer and real draws are written here).
#include <cstdint>
#include <random>

namespace cbtm::kmeans {

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  /// Uniform integer in [0, n) (n > 0), unbiased (rejection sampling).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = gen_(); while (v >= limit);
    return v % n;
  }
  /// Uniform real in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 gen_;
};

}  // namespace cbtm::kmeans
