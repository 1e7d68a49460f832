// Router "cluster_distance": the paper's eq. 3,
//   w_j  ∝  top-k[ exp(-||h(x_<t) - c_j||^2 / T) ],
// recomputed after every context token with the embedder's incremental context embedding.
//
// The empty context (before the first word, or while every word so far is a stop word) is
// embedded like any other text: as the embedding of no terms (the zero vector, after the
// embedder's normaliser), so it is routed by its distance to each centre.
//
// freeze_after f < 1: the weights of position ceil(f n) - 1 (of a document's n positions) are
// kept for the rest of the document, and the rest is never embedded (the paper: routing on the
// first half and fixing it for the second loses nothing).
//
// fix_experts_after N > 0 (with 0 < top_k < K): after N context tokens the top_k experts of
// that position become the document's active set; every later position is routed by eq. 3
// over that set only (renormalised). Causal -- the set depends only on the first N tokens --
// and it is what makes top-k save compute: an expert outside the set runs on the first N
// tokens at most (ensemble.h), so a document costs ~k full expert passes instead of one for
// every expert some position ever preferred.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cbtm/clusterer.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/plugin.h"
#include "cbtm/router.h"

namespace cbtm {

class ClusterDistanceRouter : public Router {
 public:
  struct Options {
    double temperature = 0.1;
    int top_k = 0;
    double freeze_after = 1.0;
    int fix_experts_after = 0;
    template <class V> void visit(V& v) {
      v("temperature", temperature, "T of eq. 3: lower sharpens the weights (paper: 0.1)");
      v("top_k", top_k, "keep the k most likely experts per token, renormalised (0: all)");
      v("freeze_after", freeze_after,
        "fraction of a document's positions routed from its context; the rest keep the last of those "
        "weights and are not embedded (1: re-route at every position; paper: 0.5 loses nothing)");
      v("fix_experts_after", fix_experts_after,
        "context tokens after which the top_k experts of that position become the document's only "
        "experts (later positions re-weight within them); experts outside run on that prefix only, so "
        "top-k saves compute (0: every position picks its own top_k)");
    }
    void validate() const {
      require(temperature > 0, "temperature", "must be > 0");
      require(top_k >= 0, "top_k", "must be >= 0 (0 keeps every expert)");
      require(freeze_after > 0 && freeze_after <= 1, "freeze_after", "must be in (0, 1]");
      require(fix_experts_after >= 0, "fix_experts_after", "must be >= 0 (0: off)");
    }
  };
  explicit ClusterDistanceRouter(const Options& o) : opt_(o) {}

  void bind(const RoutingContext& ctx) override {
    if (!ctx.embedder || !ctx.clusterer) throw Error("router cluster_distance needs a fitted embedder and clusterer");
    if (ctx.clusterer->centers().rows != ctx.experts)
      throw Error("router cluster_distance: " + std::to_string(ctx.clusterer->centers().rows) + " centres for " +
                  std::to_string(ctx.experts) + " experts");
    ctx_ = ctx;
  }

  Matrix route(const Document&, const std::vector<std::string>& pieces) const override {
    const Matrix& c = ctx_.clusterer->centers();
    const int64_t k = c.rows;
    Matrix w(static_cast<int64_t>(pieces.size()), k);
    auto context = ctx_.embedder->context();
    std::vector<float> h(static_cast<size_t>(c.cols));
    std::vector<double> logit(static_cast<size_t>(k));
    const size_t n = pieces.size();
    const size_t live = opt_.freeze_after >= 1.0
                            ? n
                            : std::max<size_t>(1, static_cast<size_t>(std::ceil(opt_.freeze_after * static_cast<double>(n))));
    const bool fixing = opt_.fix_experts_after > 0 && opt_.top_k > 0 && opt_.top_k < k;
    const size_t fix_at = fixing ? static_cast<size_t>(opt_.fix_experts_after) : n;
    std::vector<char> in_set(static_cast<size_t>(k), 1);
    for (size_t t = 0; t < std::min(live, n); ++t) {
      context->append(pieces[t]);
      context->current(h.data());
      double mx = -INFINITY;
      for (int64_t j = 0; j < k; ++j) {
        logit[j] = -static_cast<double>(squared_distance(h.data(), c.row(j), c.cols)) / opt_.temperature;
        if (in_set[j]) mx = std::max(mx, logit[j]);
      }
      float* row = w.row(static_cast<int64_t>(t));
      for (int64_t j = 0; j < k; ++j) row[j] = in_set[j] ? static_cast<float>(std::exp(logit[j] - mx)) : 0.f;
      if (fixing && t + 1 == fix_at) {  // the set: this position's top_k (ties keep the lower index)
        std::vector<int64_t> idx(static_cast<size_t>(k));
        for (int64_t j = 0; j < k; ++j) idx[j] = j;
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return logit[a] > logit[b]; });
        std::fill(in_set.begin(), in_set.end(), 0);
        for (int j = 0; j < opt_.top_k; ++j) in_set[idx[j]] = 1;
      }
    }
    for (size_t t = live; t < n; ++t)  // frozen
      std::copy(w.row(static_cast<int64_t>(live - 1)), w.row(static_cast<int64_t>(live - 1)) + k, w.row(static_cast<int64_t>(t)));
    keep_top_k(w, opt_.top_k);  // also normalises each row
    return w;
  }

 private:
  Options opt_;
  RoutingContext ctx_;
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::ClusterDistanceRouter>(
      "cluster_distance", "paper eq. 3: softmax of -squared distance to each cluster centre / T, top-k"));
}
