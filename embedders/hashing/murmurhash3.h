#pragma once
/// \file murmurhash3.h
/// The feature hash of scikit-learn's HashingVectorizer / FeatureHasher (1.2.1):
/// MurmurHash3_x86_32 of the UTF-8 bytes of a term, read as a signed 32-bit integer
/// (`sklearn.utils.murmurhash3_32(term, seed=0, positive=False)`), then
///   bucket = abs(h) % n_features        (abs taken in 64 bits, as scikit-learn special-cases
///                                         h = -2^31: its bucket is 2^31 % n_features)
///   sign   = +1 if h >= 0 else -1       (when alternate_sign; +1 otherwise).
///
/// \code
///   int32_t h = murmurhash3_32("kernel");             // -1856922853
///   HashedTerm t = hash_term("kernel", 64, true);     // {bucket 37, sign -1}
/// \endcode
#include <cstdint>
#include <string_view>

namespace cbtm::hashing {

/// MurmurHash3_x86_32 of `bytes` with `seed`, as a signed integer.
int32_t murmurhash3_32(std::string_view bytes, uint32_t seed = 0);

/// scikit-learn's bucket of a signed hash: abs(h) % n_features (n_features >= 1).
inline int64_t bucket_of_hash(int32_t h, int64_t n_features) {
  const int64_t a = h < 0 ? -static_cast<int64_t>(h) : static_cast<int64_t>(h);
  return a % n_features;
}

struct HashedTerm {
  int32_t bucket = 0;  ///< 0 .. n_features - 1
  int32_t sign = 1;    ///< +1 or -1
};

/// Bucket and sign of a term (n_features in 1 .. 2^31 - 1).
inline HashedTerm hash_term(std::string_view term, int64_t n_features, bool alternate_sign) {
  const int32_t h = murmurhash3_32(term, 0);
  return {static_cast<int32_t>(bucket_of_hash(h, n_features)), alternate_sign && h < 0 ? -1 : 1};
}

}  // namespace cbtm::hashing
