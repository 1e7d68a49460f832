#pragma once
/// \file seed_mix.h
/// Derived random seeds: independent streams (document order, each epoch's block order,
/// each step's dropout) from one job seed, identical on every platform.
#include <cstdint>

namespace cbtm::lm {

/// splitmix64: advances `state` and returns the next 64 random bits.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The seed of stream `stream` of job seed `seed`.
inline uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t s = stream;
  uint64_t state = seed ^ splitmix64(s);
  return splitmix64(state);
}

}  // namespace cbtm::lm
