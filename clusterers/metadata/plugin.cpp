// Registers the metadata clusterer (cluster = a document field; metadata_clusterer.h).
#include "cbtm/plugin.h"
#include "metadata/metadata_clusterer.h"

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::metadata::MetadataClusterer>(
      "metadata",
      "cluster = a document field (e.g. domain: the BTM baseline); centres = mean embedding "
      "of each value, so distance routing still works"));
}
