// Router "oracle" (metadata routing, an upper-bound ablation): the weights come from the
// document's metadata value (data.domain_field), not from its text. With the assign stage's
// table of training documents per (value, cluster):
//   distribution  w_j = n(value, j) / n(value)   -- where the value's training data went
//   argmax        all weight on the cluster with most of the value's documents (ties: lower j)
// then top_k (0: all) and renormalisation. A value never seen in training (or a document
// without the field) gets equal weights -- there is nothing to route by.
#include <algorithm>
#include <string>
#include <vector>

#include "cbtm/error.h"
#include "cbtm/options.h"
#include "cbtm/plugin.h"
#include "cbtm/router.h"

namespace cbtm {

class OracleRouter : public Router {
 public:
  struct Options {
    std::string mode = "distribution";
    int top_k = 0;
    template <class V> void visit(V& v) {
      v("mode", mode, "distribution (P(cluster | value) of the training data) | argmax (its largest cluster)");
      v("top_k", top_k, "keep the k largest weights per document, renormalised (0: all)");
    }
    void validate() const {
      require_one_of(mode, {"distribution", "argmax"}, "mode");
      require(top_k >= 0, "top_k", "must be >= 0 (0 keeps every expert)");
    }
  };
  explicit OracleRouter(const Options& o) : opt_(o) {}

  void bind(const RoutingContext& ctx) override {
    if (!ctx.domain_counts || ctx.domain_counts->empty())
      throw Error("router oracle needs the documents' metadata: the run has no '" + ctx.domain_field +
                  "' overlap table (set data.domain_field to a field the corpus has)");
    for (const auto& [value, counts] : *ctx.domain_counts)
      if (static_cast<int32_t>(counts.size()) != ctx.experts)
        throw Error("router oracle: the overlap table of '" + value + "' has " + std::to_string(counts.size()) +
                    " clusters for " + std::to_string(ctx.experts) + " experts");
    ctx_ = ctx;
  }

  Matrix route(const Document& doc, const std::vector<std::string>& pieces) const override {
    const int32_t k = ctx_.experts;
    std::vector<float> w(static_cast<size_t>(k), 1.f / static_cast<float>(k));
    const auto it = ctx_.domain_counts->find(doc.field(ctx_.domain_field));
    if (it != ctx_.domain_counts->end()) {
      const std::vector<int64_t>& n = it->second;
      int64_t total = 0;
      for (int64_t c : n) total += c;
      if (total > 0) {
        if (opt_.mode == "argmax") {
          const auto best = std::max_element(n.begin(), n.end()) - n.begin();
          std::fill(w.begin(), w.end(), 0.f);
          w[static_cast<size_t>(best)] = 1.f;
        } else {
          for (int32_t j = 0; j < k; ++j)
            w[static_cast<size_t>(j)] = static_cast<float>(static_cast<double>(n[static_cast<size_t>(j)]) / static_cast<double>(total));
        }
      }
    }
    Matrix m(static_cast<int64_t>(pieces.size()), k);
    for (int64_t r = 0; r < m.rows; ++r) std::copy(w.begin(), w.end(), m.row(r));
    keep_top_k(m, opt_.top_k);
    return m;
  }

 private:
  Options opt_;
  RoutingContext ctx_;
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::OracleRouter>(
      "oracle", "weights from the document's metadata value: where that value's training documents were assigned "
                "(upper-bound ablation; needs data.domain_field)"));
}
