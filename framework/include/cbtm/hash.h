#pragma once
/// \file hash.h
/// Small portable hashes and a seeded random stream, bit-identical on every platform. Every
/// stage that must be reproducible from a seed draws from these: uniform document samples,
/// random windows, random clusters and routers, the trainer's shuffles and dropout masks.
///
/// \code
///   uint64_t state = cbtm::splitmix64(seed);      // a stream seeded by `seed`
///   uint64_t r = cbtm::splitmix64_next(state);    // the next 64 random bits
///   uint64_t h = cbtm::fnv1a(doc.id);             // a stable hash of an id
///   cbtm::shuffle(items, state);                  // Fisher-Yates from that stream
/// \endcode
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace cbtm {

/// The splitmix64 finaliser: a bijective 64-bit mix with full avalanche (Steele et al. 2014).
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// splitmix64 of one value: mix64(x + golden gamma). Use it to derive a seed from a seed.
inline uint64_t splitmix64(uint64_t x) { return mix64(x + 0x9E3779B97F4A7C15ull); }

/// The splitmix64 generator: advances `state` by the golden gamma and returns the next 64
/// random bits.
inline uint64_t splitmix64_next(uint64_t& state) { return mix64(state += 0x9E3779B97F4A7C15ull); }

/// 64-bit FNV-1a of `s`, continuing from `h` (the FNV offset basis by default).
inline uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

/// Uniform in [0, n) (n >= 1) from the stream `state`, without modulo bias.
inline uint64_t uniform_below(uint64_t& state, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: draws below it would favour small values
  for (;;) {
    const uint64_t r = splitmix64_next(state);
    if (r >= threshold) return r % n;
  }
}

/// Shuffles `v` uniformly (Fisher-Yates) from the stream `state`: the same order on every
/// platform, unlike std::shuffle, whose use of the generator differs between standard libraries.
template <class T>
void shuffle(std::vector<T>& v, uint64_t& state) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(uniform_below(state, i))]);
}

}  // namespace cbtm
