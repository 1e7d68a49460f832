// Registers the "hashing" embedder (the algorithm lives in cbtm_hashing_core).
#include "cbtm/plugin.h"

#include "hashing_embedder.h"

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::hashing::HashingEmbedder>(
      "hashing",
      "hashed terms (no vocabulary; scikit-learn's HashingVectorizer) -> tf-idf -> randomized "
      "truncated SVD -> row normaliser"));
}
