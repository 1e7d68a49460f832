// Registers the random-partition clusterer (implemented in clusterers/kmeans_core).
#include "cbtm/plugin.h"
#include "kmeans_core/random_clusterer.h"

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::kmeans::RandomClusterer>(
      "random", "seeded random balanced partition; assign() hashes each row (baseline)"));
}
