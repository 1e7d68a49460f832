#pragma once
// cluster_bench's seed study (--seeds N): how much the NMI against `domain` moves with the
// clustering's seed alone, on fixed embeddings -- ours (balanced_kmeans and the greedy kmeans)
// and the scikit-learn peer's KMeans (bench/peers/sklearn_cluster.py --seeds), so that one
// seed's comparison is not read as a property of the method.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/matrix.h"
#include "kmeans_core/lloyd_clusterer.h"

namespace cbtm::bench {

/// For seed 0..seeds-1: balanced_kmeans and kmeans with `options` (its seed replaced) fitted on
/// `y`, each point assigned to its nearest centre; per seed {seed, balanced: {nmi, mi},
/// kmeans: {nmi, mi}}.
nlohmann::json seed_study_ours(const Matrix& y, const std::vector<std::string>& domains,
                               kmeans::KMeansOptions options, int seeds);

/// Prints the per-seed table (the peer's rows from its "seed_study" list, or null) and returns
/// {seeds, ours_balanced, ours_kmeans, peer}: each {nmi: [..], mi: [..], nmi_mean, nmi_min,
/// nmi_max, mi_mean}.
nlohmann::json summarise_seed_study(const nlohmann::json& ours, const nlohmann::json& peer);

}  // namespace cbtm::bench
