// cluster_bench's seed study (see cluster_seed_study.h).
#include "cluster_seed_study.h"

#include <algorithm>
#include <cstdio>

#include "cbtm/cluster_analysis.h"

namespace cbtm::bench {
namespace {

nlohmann::json nmi_mi(const std::vector<std::string>& domains, const std::vector<int32_t>& cluster, int32_t k) {
  const Contingency t = contingency(domains, cluster, k);
  return {{"nmi", nmi(t)}, {"mi", mutual_information(t)}};
}

nlohmann::json series(const nlohmann::json& rows, const char* key) {
  nlohmann::json s = {{"nmi", nlohmann::json::array()}, {"mi", nlohmann::json::array()}};
  double sum_nmi = 0, sum_mi = 0, lo = 1e9, hi = -1e9;
  for (const auto& r : rows) {
    const nlohmann::json& v = key ? r[key] : r;
    const double n = v["nmi"], m = v["mi"];
    s["nmi"].push_back(n);
    s["mi"].push_back(m);
    sum_nmi += n;
    sum_mi += m;
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  if (!rows.empty()) {
    s["nmi_mean"] = sum_nmi / double(rows.size());
    s["mi_mean"] = sum_mi / double(rows.size());
    s["nmi_min"] = lo;
    s["nmi_max"] = hi;
  }
  return s;
}

}  // namespace

nlohmann::json seed_study_ours(const Matrix& y, const std::vector<std::string>& domains,
                               kmeans::KMeansOptions options, int seeds) {
  nlohmann::json out = nlohmann::json::array();
  for (int s = 0; s < seeds; ++s) {
    options.seed = static_cast<uint64_t>(s);
    kmeans::BalancedKMeans balanced(options);
    balanced.fit(y);
    kmeans::PlainKMeans plain(options);
    plain.fit(y);
    out.push_back({{"seed", s},
                   {"balanced", nmi_mi(domains, balanced.assign(y).cluster, options.k)},
                   {"kmeans", nmi_mi(domains, plain.assign(y).cluster, options.k)}});
  }
  return out;
}

nlohmann::json summarise_seed_study(const nlohmann::json& ours, const nlohmann::json& peer) {
  const bool have_peer = peer.is_array() && peer.size() == ours.size();
  std::printf("\nseed study: the clustering's seed alone, embeddings fixed (NMI / mutual information in nats vs domain)\n");
  std::printf("%6s %20s %20s %20s\n", "seed", "ours balanced", "ours kmeans", "peer KMeans");
  for (size_t i = 0; i < ours.size(); ++i) {
    const auto& o = ours[i];
    std::printf("%6d %10.4f / %6.4f %10.4f / %6.4f", o["seed"].get<int>(), o["balanced"]["nmi"].get<double>(),
                o["balanced"]["mi"].get<double>(), o["kmeans"]["nmi"].get<double>(), o["kmeans"]["mi"].get<double>());
    if (have_peer)
      std::printf(" %10.4f / %6.4f", peer[i]["nmi"].get<double>(), peer[i]["mi"].get<double>());
    std::printf("\n");
  }
  nlohmann::json s = {{"seeds", ours.size()}, {"ours_balanced", series(ours, "balanced")}, {"ours_kmeans", series(ours, "kmeans")}};
  if (have_peer) s["peer"] = series(peer, nullptr);
  auto mean_row = [&](const char* name, const nlohmann::json& x) {
    std::printf("  %-14s NMI mean %.4f (%.4f..%.4f), MI mean %.4f\n", name, x["nmi_mean"].get<double>(),
                x["nmi_min"].get<double>(), x["nmi_max"].get<double>(), x["mi_mean"].get<double>());
  };
  if (!ours.empty()) {
    mean_row("ours balanced", s["ours_balanced"]);
    mean_row("ours kmeans", s["ours_kmeans"]);
    if (have_peer) mean_row("peer KMeans", s["peer"]);
  }
  std::fflush(stdout);
  return s;
}

}  // namespace cbtm::bench
