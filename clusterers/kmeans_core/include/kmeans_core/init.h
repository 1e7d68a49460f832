#pragma once
/// \file init.h
/// Initial centres for Lloyd's algorithm.
///
/// - "random": k distinct rows of x drawn uniformly (what the reference implementation does);
/// - "kmeans++": the first centre uniform, each next one drawn with probability proportional
///   to the squared distance to the nearest centre chosen so far (Arthur & Vassilvitskii 2007).
/// Both are deterministic functions of (x, k, seed).
#include <cstdint>
#include <string>

#include "cbtm/matrix.h"

namespace cbtm::kmeans {

/// k distinct rows of x (requires x.rows >= k).
Matrix init_random(const Matrix& x, int32_t k, uint64_t seed);
/// k-means++ seeding (requires x.rows >= k).
Matrix init_kmeans_pp(const Matrix& x, int32_t k, uint64_t seed, int threads);
/// Dispatches on `method` ("random" | "kmeans++"); std::invalid_argument otherwise.
Matrix init_centers(const Matrix& x, int32_t k, const std::string& method, uint64_t seed,
                    int threads);

}  // namespace cbtm::kmeans
