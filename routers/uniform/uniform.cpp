// Router "uniform": every expert gets the same weight at every position (an ablation:
// the plain average of the experts).
#include "cbtm/plugin.h"
#include "cbtm/router.h"

namespace cbtm {

class UniformRouter : public Router {
 public:
  struct Options {
    template <class V> void visit(V&) {}
  };
  explicit UniformRouter(const Options&) {}
  void bind(const RoutingContext& ctx) override { k_ = ctx.experts; }
  Matrix route(const Document&, const std::vector<std::string>& pieces) const override {
    return Matrix(static_cast<int64_t>(pieces.size()), k_, 1.f / static_cast<float>(k_));
  }

 private:
  int32_t k_ = 1;
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::UniformRouter>("uniform", "equal weight for every expert (ablation)"));
}
