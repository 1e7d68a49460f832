// balanced_kmeans / kmeans clusterers; see lloyd_clusterer.h.
#include "kmeans_core/lloyd_clusterer.h"

#include <utility>

#include "cbtm/runtime.h"
#include "kmeans_core/checks.h"

namespace cbtm::kmeans {
namespace {
double final_objective(const LloydResult& r) { return r.history.empty() ? 0.0 : r.history.back().objective; }
}  // namespace

LloydClusterer::LloydClusterer(std::string plugin, bool balanced, const Options& options)
    : CentroidClusterer(std::move(plugin), options.k), balanced_(balanced), options_(options) {}

void LloydClusterer::fit(const Matrix& x) {
  check_fit_input(x, options_.k, owner());
  last_ = {};
  last_minibatch_ = {};
  if (options_.batch_size > 0) {
    MiniBatchOptions o;
    o.k = options_.k;
    o.balanced = balanced_;
    o.init = options_.init;
    o.batch_size = options_.batch_size;
    o.max_epochs = options_.max_iters;
    o.tol = options_.tol;
    o.seed = options_.seed;
    o.threads = runtime().resolved_threads();
    o.label = plugin();
    last_minibatch_ = minibatch_kmeans(x, o);
    set_centers(last_minibatch_.centers);
    return;
  }
  LloydOptions o;
  o.k = options_.k;
  o.balanced = balanced_;
  o.init = options_.init;
  o.max_iters = options_.max_iters;
  o.tol = options_.tol;
  o.seed = options_.seed;
  o.threads = runtime().resolved_threads();
  o.label = plugin();
  for (int run = 0; run < options_.n_init; ++run) {
    o.seed = options_.seed + static_cast<uint64_t>(run);
    if (options_.n_init > 1) o.label = plugin() + " init " + std::to_string(run + 1) + "/" + std::to_string(options_.n_init);
    LloydResult r = lloyd(x, o);
    if (run == 0 || final_objective(r) < final_objective(last_)) last_ = std::move(r);
  }
  set_centers(last_.centers);
}

}  // namespace cbtm::kmeans
