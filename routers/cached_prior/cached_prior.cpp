// Router "cached_prior" (BTM's inference, Li et al. 2022): the experts' posterior given the
// document so far,
//   w_j(t)  ∝  prior_j · Π_{s<t} p_j(x_s | x_<s)        (update: true)
//   w_j(t)  ∝  prior_j                                  (update: false: the prior alone)
// then top_k (0: all) and renormalisation; computed in log space.
//
// The prior is estimated once on `calibration_docs` held-out documents (taken from the
// evaluation file after the evaluated ones) and then frozen: starting from uniform, for each
// batch B of `ema_batch` calibration documents in file order,
//   post_j(d) ∝ prior_j · p_j(d),   prior ← (1 − ema) · prior + ema · mean_{d in B} post(d).
// A document's posterior is close to one-hot, so one EMA step per document (ema_batch 1) left
// the prior to its last few documents (at ema 0.3 the last 5 weigh 83%: order-dependent and
// noisy); averaging a batch first keeps the moving average over sequences of posteriors. A
// remainder shorter than ema_batch joins the last batch, and the final prior is floored at 1e-9
// (renormalised) so that no expert is shut out of every document.
// With calibration_docs 0 the prior stays uniform. Needs every expert's scores on the whole
// document, so it saves no compute -- it is the BTM baseline, not a sparse router.
//
// fix_experts_after N > 0 (with 0 < top_k < K) makes it one: every expert runs on the first N
// context tokens and they are weighted by the full posterior there (all of them are being run
// anyway); the top_k experts of the posterior after N tokens become the document's only experts,
// and every later position is weighted by the posterior over that set alone (it keeps updating:
// those experts are running). An expert outside the set runs on the first N tokens only, so a
// document of n positions costs K * min(N, n) + top_k * (n - N) expert-tokens instead of K * n.
// Causal: the set depends on the first N tokens only.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cbtm/error.h"
#include "cbtm/plugin.h"
#include "cbtm/router.h"

namespace cbtm {

class CachedPriorRouter : public Router {
 public:
  struct Options {
    int64_t calibration_docs = 100;
    double ema = 0.3;
    int64_t ema_batch = 16;
    bool update = true;
    int top_k = 0;
    int fix_experts_after = 0;
    template <class V> void visit(V& v) {
      v("calibration_docs", calibration_docs,
        "held-out documents (after the evaluated ones in data.eval) the prior is estimated on (0: uniform prior)");
      v("ema", ema, "weight of each batch's mean posterior in the prior's moving average");
      v("ema_batch", ema_batch,
        "calibration documents whose posteriors are averaged per moving-average step (1: one step per document; "
        "a shorter remainder joins the last step)");
      v("update", update, "multiply the prior by each expert's likelihood of the document so far (false: prior only)");
      v("top_k", top_k, "keep the k largest weights per token, renormalised (0: all)");
      v("fix_experts_after", fix_experts_after,
        "context tokens every expert runs on (weighted by the full posterior); then the top_k experts of "
        "the posterior become the document's only experts and the others stop, so top-k saves compute "
        "(0: every position picks its own top_k from every expert's scores)");
    }
    void validate() const {
      require(calibration_docs >= 0, "calibration_docs", "must be >= 0");
      require(ema > 0 && ema <= 1, "ema", "must be in (0, 1]");
      require(ema_batch >= 1, "ema_batch", "must be >= 1");
      require(top_k >= 0, "top_k", "must be >= 0 (0 keeps every expert)");
      require(fix_experts_after >= 0, "fix_experts_after", "must be >= 0 (0: off)");
      require(fix_experts_after == 0 || top_k > 0, "fix_experts_after",
              "needs top_k > 0 (the number of experts kept after the prefix)");
    }
  };
  explicit CachedPriorRouter(const Options& o) : opt_(o) {}

  void bind(const RoutingContext& ctx) override {
    if (ctx.experts < 1) throw Error("router cached_prior: no experts");
    k_ = ctx.experts;
    prior_.assign(static_cast<size_t>(k_), 1.0 / k_);
  }

  bool needs_expert_scores() const override { return true; }
  int64_t calibration_docs() const override { return opt_.calibration_docs; }

  void calibrate(const std::vector<std::vector<std::vector<float>>>& docs) override {
    std::vector<double> logpost(static_cast<size_t>(k_));
    const size_t batch = static_cast<size_t>(opt_.ema_batch);
    for (size_t b = 0; b < docs.size();) {
      // A remainder shorter than ema_batch joins the batch before it: a last batch of 4
      // documents would otherwise weigh as much as 16 (7.5% of the prior each, with the defaults).
      size_t end = std::min(docs.size(), b + batch);
      if (docs.size() - end < batch) end = docs.size();
      std::vector<double> mean(static_cast<size_t>(k_), 0.0);
      for (size_t d = b; d < end; ++d) {  // each with the prior as it stands before this batch
        check_scores(docs[d], 0, "calibration document " + std::to_string(d));
        for (int32_t j = 0; j < k_; ++j) {
          double ll = 0;
          for (float v : docs[d][static_cast<size_t>(j)]) ll += v;
          logpost[j] = std::log(prior_[j]) + ll;
        }
        const auto post = softmax(logpost);
        for (int32_t j = 0; j < k_; ++j) mean[j] += post[j] / static_cast<double>(end - b);
      }
      for (int32_t j = 0; j < k_; ++j) prior_[j] = (1 - opt_.ema) * prior_[j] + opt_.ema * mean[j];
      b = end;
    }
    // Posteriors of long documents are often exactly 0 for all but one expert; a prior of 0
    // (ema 1) would shut an expert out of every document whatever its likelihood. Floor it.
    double s = 0;
    for (auto& p : prior_) s += (p = std::max(p, kPriorFloor));
    for (auto& p : prior_) p /= s;
  }

  // Row r reads tokens 0..r-1 of every expert still updating: with fix_experts_after N, every
  // expert's first N (the set kept after N is weighted to the end anyway); otherwise every
  // expert's first rows - 1; with update: false, none (the prior alone).
  std::vector<int64_t> scores_read(const Matrix& w) const override {
    int64_t read = 0;
    if (opt_.update) {
      read = std::max<int64_t>(w.rows - 1, 0);
      if (fixes_set()) read = std::min<int64_t>(opt_.fix_experts_after, read);
    }
    return std::vector<int64_t>(static_cast<size_t>(k_), read);
  }

  Matrix route(const Document&, const std::vector<std::string>&) const override {
    throw Error("router cached_prior weighs experts by their predictions of the document so far; it routes only "
                "where every expert's scores are available (cbtm eval), not from text alone");
  }

  Matrix route_scored(const Document&, const std::vector<std::string>& pieces,
                      const std::vector<std::vector<float>>& logp) const override {
    const int64_t n = static_cast<int64_t>(pieces.size());
    check_scores(logp, n, "document");
    const bool fixing = fixes_set();
    // Rows at or after fix_at are weighted over the set chosen at row fix_at only.
    const int64_t fix_at = fixing ? std::min<int64_t>(opt_.fix_experts_after, n) : n;
    Matrix w(n, k_);
    std::vector<double> acc(static_cast<size_t>(k_));
    std::vector<char> keep(static_cast<size_t>(k_), 1);
    for (int32_t j = 0; j < k_; ++j) acc[j] = std::log(prior_[j]);
    for (int64_t r = 0; r < n; ++r) {  // row r has seen scored tokens 0..r-1
      if (opt_.update && r > 0)
        for (int32_t j = 0; j < k_; ++j)
          if (keep[j]) acc[j] += logp[static_cast<size_t>(j)][static_cast<size_t>(r - 1)];
      if (fixing && r == fix_at) {
        std::vector<int32_t> order(static_cast<size_t>(k_));
        for (int32_t j = 0; j < k_; ++j) order[j] = j;
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return acc[a] > acc[b]; });
        for (int32_t i = 0; i < k_; ++i) keep[order[i]] = i < opt_.top_k;
      }
      std::vector<double> a = acc;
      for (int32_t j = 0; j < k_; ++j)
        if (!keep[j]) a[j] = -std::numeric_limits<double>::infinity();
      const auto p = softmax(a);
      for (int32_t j = 0; j < k_; ++j) w.at(r, j) = static_cast<float>(p[j]);
    }
    if (!fixing) keep_top_k(w, opt_.top_k);
    return w;
  }

 private:
  static constexpr double kPriorFloor = 1e-9;  ///< smallest prior after calibration (then renormalised)
  // fix_experts_after applies: a prefix, then a set smaller than every expert.
  bool fixes_set() const { return opt_.fix_experts_after > 0 && opt_.top_k > 0 && opt_.top_k < k_; }
  void check_scores(const std::vector<std::vector<float>>& logp, int64_t min_len, const std::string& what) const {
    if (static_cast<int32_t>(logp.size()) != k_)
      throw Error("router cached_prior: " + what + " has scores of " + std::to_string(logp.size()) + " experts, not " +
                  std::to_string(k_));
    for (size_t j = 0; j < logp.size(); ++j)
      if (static_cast<int64_t>(logp[j].size()) < min_len || logp[j].size() != logp[0].size())
        throw Error("router cached_prior: " + what + ": expert " + std::to_string(j) + " scored " +
                    std::to_string(logp[j].size()) + " tokens, expected " + std::to_string(std::max<size_t>(min_len, logp[0].size())));
  }
  static std::vector<double> softmax(const std::vector<double>& x) {
    const double m = *std::max_element(x.begin(), x.end());
    std::vector<double> p(x.size());
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += (p[i] = std::exp(x[i] - m));
    for (auto& v : p) v /= s;
    return p;
  }

  Options opt_;
  int32_t k_ = 0;
  std::vector<double> prior_;
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::CachedPriorRouter>(
      "cached_prior", "BTM: prior (EMA of posteriors on held-out documents, then frozen) x each expert's likelihood of "
                      "the document so far; runs every expert (or, with fix_experts_after, every expert on a prefix "
                      "and then the top_k)"));
}
