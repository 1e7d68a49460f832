#pragma once
// cluster_bench's part 2: the balanced auction and Lloyd fit on synthetic embeddings (unit-length
// points around 300 Zipf-weighted topics), on 1 thread and on `threads` threads.
#include <cstdint>

#include <nlohmann/json.hpp>

namespace cbtm::bench {

/// Prints the table (one cold E-step = distances + auction, and a full `iters`-iteration fit,
/// per thread count) and returns {synthetic: {n, dim, k, runs}, auction_50k_128_s (the cold
/// E-step on `threads` threads), balance_spread (largest - smallest cluster of it)}.
nlohmann::json synthetic_auction(int64_t n, int64_t dim, int32_t k, int iters, int threads);

}  // namespace cbtm::bench
