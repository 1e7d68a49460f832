// Registers the "tfidf" embedder (the algorithm lives in cbtm_tfidf_core).
#include "cbtm/plugin.h"
#include "tfidf_embedder.h"

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::tfidf::TfidfEmbedder>(
      "tfidf",
      "tf-idf -> randomized truncated SVD -> row normaliser (C-BTM's document embedding)"));
}
