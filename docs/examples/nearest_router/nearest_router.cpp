// docs/examples/nearest_router/nearest_router.cpp -- all weight on the expert nearest to the context
#include "cbtm/clusterer.h"
#include "cbtm/embedder.h"
#include "cbtm/plugin.h"
#include "cbtm/router.h"

class NearestRouter : public cbtm::Router {
 public:
  struct Options {
    int warmup_tokens = 0;
    template <class V> void visit(V& v) {
      v("warmup_tokens", warmup_tokens, "uniform weights for the first N positions");
    }
    void validate() const { cbtm::require(warmup_tokens >= 0, "warmup_tokens", "must be >= 0"); }
  };
  explicit NearestRouter(const Options& o) : opt_(o) {}
  void bind(const cbtm::RoutingContext& ctx) override { ctx_ = ctx; }
  cbtm::Matrix route(const cbtm::Document&, const std::vector<std::string>& pieces) const override {
    const int32_t k = ctx_.experts;
    cbtm::Matrix w(static_cast<int64_t>(pieces.size()), k);
    auto context = ctx_.embedder->context();           // incremental h(x_<t)
    cbtm::Matrix h(1, ctx_.embedder->dim());
    for (size_t t = 0; t < pieces.size(); ++t) {
      context->append(pieces[t]);
      context->current(h.row(0));
      const int32_t j = cbtm::nearest_centers(h, ctx_.clusterer->centers()).cluster[0];
      for (int32_t e = 0; e < k; ++e)
        w.at(t, e) = static_cast<int>(t) < opt_.warmup_tokens ? 1.f / k : (e == j ? 1.f : 0.f);
    }
    return w;
  }
 private:
  Options opt_;
  cbtm::RoutingContext ctx_;
};

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<NearestRouter>("nearest", "all weight on the nearest centre"));
}
