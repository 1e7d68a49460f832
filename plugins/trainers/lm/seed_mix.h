#pragma once
/// \file seed_mix.h
/// Derived random seeds: independent streams (document order, each epoch's block order,
/// each step's dropout) from one job seed, identical on every platform.
#include <cstdint>

#include "cbtm/hash.h"

namespace cbtm::lm {

/// splitmix64: advances `state` and returns the next 64 random bits.
inline uint64_t splitmix64(uint64_t& state) { return splitmix64_next(state); }

/// The seed of stream `stream` of job seed `seed`.
inline uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t s = stream;
  uint64_t state = seed ^ splitmix64(s);
  return splitmix64(state);
}

}  // namespace cbtm::lm
