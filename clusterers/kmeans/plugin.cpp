// Registers the k-means clusterers (implemented in clusterers/kmeans_core).
#include "cbtm/plugin.h"
#include "kmeans_core/lloyd_clusterer.h"

CBTM_PLUGIN_LIBRARY(registry) {
  using namespace cbtm::kmeans;
  registry.add(cbtm::make_plugin<BalancedKMeans>(
      "balanced_kmeans",
      "k-means whose E-step is an exact balanced assignment (auction), full batch or "
      "mini-batch; greedy inference"));
  registry.add(cbtm::make_plugin<PlainKMeans>(
      "kmeans",
      "plain (unbalanced) k-means, full batch or mini-batch; empty clusters re-seeded with "
      "the farthest point"));
}
