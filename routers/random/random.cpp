// Router "random" (ablation): each document goes to top_k experts drawn uniformly at random
// without replacement, with equal weights, at every position. The draw is a hash of (seed,
// document id), so the same document always gets the same experts, in any order of scoring.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "cbtm/error.h"
#include "cbtm/hash.h"
#include "cbtm/plugin.h"
#include "cbtm/router.h"

namespace cbtm {

class RandomRouter : public Router {
 public:
  struct Options {
    int top_k = 1;
    uint64_t seed = 0;
    template <class V> void visit(V& v) {
      v("top_k", top_k, "experts per document, drawn without replacement (>= 1; more than K: all)");
      v("seed", seed, "seed of the draw (with the document id)");
    }
    void validate() const { require(top_k >= 1, "top_k", "must be >= 1"); }
  };
  explicit RandomRouter(const Options& o) : opt_(o) {}

  void bind(const RoutingContext& ctx) override {
    if (ctx.experts < 1) throw Error("router random: no experts");
    k_ = ctx.experts;
  }

  Matrix route(const Document& doc, const std::vector<std::string>& pieces) const override {
    // FNV-1a of the id, mixed with the seed (splitmix64 steps) -> a partial Fisher-Yates shuffle
    uint64_t h = fnv1a(doc.id, 1469598103934665603ull ^ opt_.seed);
    auto next = [&h] { return splitmix64_next(h); };
    std::vector<int32_t> order(static_cast<size_t>(k_));
    std::iota(order.begin(), order.end(), 0);
    const int32_t n = std::min<int32_t>(opt_.top_k, k_);
    for (int32_t i = 0; i < n; ++i) {
      const int32_t j = i + static_cast<int32_t>(next() % static_cast<uint64_t>(k_ - i));
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
    Matrix w(static_cast<int64_t>(pieces.size()), k_, 0.f);
    for (int64_t r = 0; r < w.rows; ++r)
      for (int32_t i = 0; i < n; ++i) w.row(r)[order[static_cast<size_t>(i)]] = 1.f / static_cast<float>(n);
    return w;
  }

 private:
  Options opt_;
  int32_t k_ = 1;
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::RandomRouter>(
      "random", "top_k experts per document drawn at random (seeded by the document id), equal weights (ablation)"));
}
