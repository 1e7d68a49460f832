// Router "cluster_distance": the paper's eq. 3,
//   w_j  ∝  top-k[ exp(-||h(x_<t) - c_j||^2 / T) ],
// recomputed after every context token with the embedder's incremental context embedding.
// session() (generation) carries that embedding from token to token: a new token costs the
// same however long the text is.
//
// The empty context (before the first word, or while every word so far is a stop word) is
// embedded like any other text: as the embedding of no terms (the zero vector, after the
// embedder's normaliser), so it is routed by its distance to each centre.
//
// freeze_after f < 1: the weights of position ceil(f n) - 1 (of a document's n positions) are
// kept for the rest of the document, and the rest is never embedded (the paper: routing on the
// first half and fixing it for the second loses nothing).
//
// fix_experts_after N > 0 (with 0 < top_k < K): after N context tokens (the beginning-of-
// document piece not counted) the top_k experts of that position become the document's active
// set; that position and every later one are routed by eq. 3 over that set only (renormalised). Causal -- the set depends only on the first N tokens --
// and it is what makes top-k save compute: an expert outside the set runs on the first N
// tokens at most (ensemble.h), so a document costs ~k full expert passes instead of one for
// every expert some position ever preferred.
#include <algorithm>
#include <cmath>
#include <memory>
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
        "context tokens (the beginning-of-document token not counted) after which the top_k experts of "
        "that position become the document's only experts (it and later positions re-weight within them); "
        "experts outside run on the first N positions only, so top-k saves compute (0: every position "
        "picks its own top_k)");
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
    const int64_t k = ctx_.clusterer->centers().rows;
    Matrix w(static_cast<int64_t>(pieces.size()), k);
    const size_t n = pieces.size();
    const size_t live = live_positions(n);
    Walk walk(*this);
    for (size_t t = 0; t < live; ++t) walk.next(pieces[t], w.row(static_cast<int64_t>(t)));
    for (size_t t = live; t < n; ++t)  // frozen
      std::copy(w.row(static_cast<int64_t>(live - 1)), w.row(static_cast<int64_t>(live - 1)) + k, w.row(static_cast<int64_t>(t)));
    keep_top_k(w, opt_.top_k);  // also normalises each row
    return w;
  }

  std::unique_ptr<RoutingSession> session(const Document&) const override { return std::make_unique<Session>(*this); }

 private:
  // Positions of an n-position text that are routed from their context (the rest frozen).
  size_t live_positions(size_t n) const {
    if (opt_.freeze_after >= 1.0) return n;
    return std::min(n, std::max<size_t>(1, static_cast<size_t>(std::ceil(opt_.freeze_after * static_cast<double>(n)))));
  }

  // Eq. 3 position by position: the weights (before top-k) after each context piece, with the
  // active set fixed at row fix_experts_after. Row t depends on pieces 0..t only.
  class Walk {
   public:
    explicit Walk(const ClusterDistanceRouter& r)
        : r_(r), context_(r.ctx_.embedder->context()), h_(static_cast<size_t>(r.ctx_.clusterer->centers().cols)),
          logit_(static_cast<size_t>(r.ctx_.clusterer->centers().rows)), in_set_(logit_.size(), 1) {
      const int64_t k = r.ctx_.clusterer->centers().rows;
      fixing_ = r.opt_.fix_experts_after > 0 && r.opt_.top_k > 0 && r.opt_.top_k < k;
    }
    void next(const std::string& piece, float* row) {
      const Matrix& c = r_.ctx_.clusterer->centers();
      const int64_t k = c.rows;
      context_->append(piece);
      context_->current(h_.data());
      for (int64_t j = 0; j < k; ++j)
        logit_[j] = -static_cast<double>(squared_distance(h_.data(), c.row(j), c.cols)) / r_.opt_.temperature;
      // Row N (N context tokens seen, the beginning-of-document piece not counted) fixes the
      // set from its own context and is the first row weighted within it -- as cached_prior,
      // so both fix after the same tokens and run an expert outside the set on rows 0..N-1.
      if (fixing_ && row_++ == static_cast<size_t>(r_.opt_.fix_experts_after)) {
        // the set: this position's top_k (ties keep the lower index)
        std::vector<int64_t> idx(static_cast<size_t>(k));
        for (int64_t j = 0; j < k; ++j) idx[j] = j;
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return logit_[a] > logit_[b]; });
        std::fill(in_set_.begin(), in_set_.end(), 0);
        for (int j = 0; j < r_.opt_.top_k; ++j) in_set_[idx[j]] = 1;
      }
      double mx = -INFINITY;
      for (int64_t j = 0; j < k; ++j)
        if (in_set_[j]) mx = std::max(mx, logit_[j]);
      for (int64_t j = 0; j < k; ++j) row[j] = in_set_[j] ? static_cast<float>(std::exp(logit_[j] - mx)) : 0.f;
    }

   private:
    const ClusterDistanceRouter& r_;
    std::unique_ptr<ContextEmbedder> context_;
    std::vector<float> h_;
    std::vector<double> logit_;
    std::vector<char> in_set_;
    bool fixing_ = false;
    size_t row_ = 0;  // rows walked so far
  };

  // Generation: one context piece per push, the embedder's incremental context carried over.
  // Rows of every position are kept (k floats each) so that freeze_after < 1, whose frozen
  // position moves with the text's length, reads an earlier row instead of re-embedding.
  class Session : public RoutingSession {
   public:
    explicit Session(const ClusterDistanceRouter& r) : r_(r), walk_(r), k_(r.ctx_.clusterer->centers().rows) {}
    std::vector<float> push(const std::string& piece) override {
      rows_.resize(rows_.size() + static_cast<size_t>(k_));
      walk_.next(piece, rows_.data() + rows_.size() - static_cast<size_t>(k_));
      const size_t n = rows_.size() / static_cast<size_t>(k_);
      Matrix w(1, k_);
      const float* row = rows_.data() + (r_.live_positions(n) - 1) * static_cast<size_t>(k_);
      std::copy(row, row + k_, w.row(0));
      keep_top_k(w, r_.opt_.top_k);
      return w.data;
    }

   private:
    const ClusterDistanceRouter& r_;
    Walk walk_;
    int64_t k_;
    std::vector<float> rows_;
  };

  Options opt_;
  RoutingContext ctx_;
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::ClusterDistanceRouter>(
      "cluster_distance", "paper eq. 3: softmax of -squared distance to each cluster centre / T, top-k"));
}
