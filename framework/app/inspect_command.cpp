// `cbtm inspect RUN`: what the clustering of a run looks like -- sizes (fit set and the whole
// assigned corpus, as box-plot figures; optionally beside another run's, e.g. unbalanced
// k-means: the paper's Fig. 18), the top terms of every centre, and the cluster x domain
// overlap with NMI and purity (Fig. 16).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/artifact.h"
#include "cbtm/cluster_analysis.h"
#include "cbtm/clusterer.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/pipeline/run_dir.h"
#include "cbtm/plugin_host.h"
#include "commands.h"

namespace fs = std::filesystem;

namespace cbtm::app {
namespace {

Contingency table_of(const nlohmann::json& overlap, int32_t k) {
  Contingency t;
  t.k = k;
  for (const auto& [label, row] : overlap.items()) {
    t.labels.push_back(label);
    auto v = row.get<std::vector<int64_t>>();
    v.resize(static_cast<size_t>(k), 0);
    t.counts.insert(t.counts.end(), v.begin(), v.end());
  }
  return t;
}

nlohmann::json sizes_json(const std::vector<int64_t>& sizes) {
  const SizeSummary s = size_summary(sizes);
  return {{"sizes", sizes}, {"min", s.min},   {"q1", s.q1}, {"median", s.median}, {"q3", s.q3},
          {"max", s.max},   {"mean", s.mean}, {"cv", s.cv}, {"empty", s.empty}};
}

// The analysis of one run directory, as JSON.
nlohmann::json analyse(const std::string& run, int terms, PluginHost& host) {
  RunDir dir(run);
  const nlohmann::json cl = dir.record("cluster");
  if (cl.is_null())
    throw Error(run + ": no finished cluster stage (stages/cluster.json); run `cbtm cluster CONFIG --out " + run + "` first");
  const nlohmann::json& cs = cl["summary"];
  const int32_t k = cs.at("k").get<int32_t>();
  nlohmann::json out = {{"run", run}, {"k", k}, {"fit_docs", cs.value("fit_docs", int64_t{0})}};

  ArtifactReader art(dir.clusterer(), "clusterer");
  out["embedder"] = art.component_config("embedder", Embedder::kKind).node["type"].as<std::string>();
  out["clusterer"] = art.component_config("clusterer", Clusterer::kKind).node["type"].as<std::string>();
  if (terms > 0) {
    auto emb = art.load<Embedder>(host.registry(), "embedder");
    auto c = art.load<Clusterer>(host.registry(), "clusterer");
    nlohmann::json all = nlohmann::json::array();
    for (int32_t j = 0; j < k; ++j) {
      nlohmann::json row = nlohmann::json::array();
      for (const auto& tw : emb->top_terms(c->centers().row(j), terms)) row.push_back({{"term", tw.term}, {"weight", tw.weight}});
      all.push_back(row);
    }
    out["top_terms"] = all;
  }
  out["fit"] = sizes_json(cs.at("sizes").get<std::vector<int64_t>>());
  if (cs.contains("domain_overlap")) {
    const Contingency t = table_of(cs["domain_overlap"], k);
    out["fit"]["nmi"] = nmi(t);
    out["fit"]["purity"] = purity(t);
    out["fit"]["overlap"] = cs["domain_overlap"];
  }
  const nlohmann::json as = dir.record("assign");
  if (!as.is_null()) {
    const nlohmann::json& s = as["summary"];
    std::vector<int64_t> docs, tokens;
    for (const auto& c : s["clusters"]) {
      docs.push_back(c["docs"].get<int64_t>());
      tokens.push_back(c["tokens"].get<int64_t>());
    }
    out["assigned"] = sizes_json(docs);
    out["assigned"]["tokens"] = tokens;
    out["assigned"]["no_terms"] = s.value("no_terms", int64_t{0});
    if (s.contains("domain_overlap")) {
      const Contingency t = table_of(s["domain_overlap"], k);
      out["assigned"]["nmi"] = nmi(t);
      out["assigned"]["purity"] = purity(t);
      out["assigned"]["overlap"] = s["domain_overlap"];
    }
  }
  return out;
}

void print_sizes_row(const char* what, const nlohmann::json& s, int width) {
  std::printf("  %-*s %8lld %9.1f %9.1f %9.1f %8lld %6.3f %5d\n", width, what, (long long)s["min"].get<int64_t>(),
              s["q1"].get<double>(), s["median"].get<double>(), s["q3"].get<double>(), (long long)s["max"].get<int64_t>(),
              s["cv"].get<double>(), s["empty"].get<int>());
}

void print_overlap(const nlohmann::json& part, int32_t k) {
  if (!part.contains("overlap")) return;
  std::printf("\n  %% of each label's documents per cluster (NMI %.3f, purity %.3f):\n", part["nmi"].get<double>(),
              part["purity"].get<double>());
  std::printf("  %-22s %8s", "label", "docs");
  for (int32_t j = 0; j < k; ++j) std::printf(" %4d", j);
  std::printf("\n");
  for (const auto& [label, row] : part["overlap"].items()) {
    int64_t n = 0;
    for (const auto& v : row) n += v.get<int64_t>();
    std::printf("  %-22.22s %8lld", label.c_str(), (long long)n);
    for (int32_t j = 0; j < k; ++j) {
      const int64_t v = j < static_cast<int32_t>(row.size()) ? row[j].get<int64_t>() : 0;
      if (v == 0) std::printf("    .");
      else std::printf(" %4.0f", 100.0 * v / std::max<int64_t>(1, n));
    }
    std::printf("\n");
  }
}

}  // namespace

int inspect_run(const InspectArgs& a, PluginHost& host) {
  nlohmann::json r = analyse(a.run, a.terms, host);
  nlohmann::json other;
  if (!a.compare.empty()) other = analyse(a.compare, 0, host);
  if (a.json) {
    if (!other.is_null()) r["compare"] = other;
    std::printf("%s\n", r.dump(1).c_str());
    return 0;
  }
  const int32_t k = r["k"].get<int32_t>();
  std::printf("%s: %s clusterer, k = %d, on %s embeddings of %lld documents\n", a.run.c_str(),
              r["clusterer"].get<std::string>().c_str(), k, r["embedder"].get<std::string>().c_str(),
              (long long)r["fit_docs"].get<int64_t>());

  std::vector<std::pair<std::string, nlohmann::json>> rows = {{"fit set, nearest centre", r["fit"]}};
  if (r.contains("assigned")) rows.push_back({"whole corpus (assign)", r["assigned"]});
  if (!other.is_null()) {
    const std::string tag = other["clusterer"].get<std::string>() + " (--compare)";
    rows.push_back({"fit set, " + tag, other["fit"]});
    if (other.contains("assigned")) rows.push_back({"corpus, " + tag, other["assigned"]});
  }
  int width = 28;  // the labels' column: as wide as the longest
  for (const auto& row : rows) width = std::max(width, static_cast<int>(row.first.size()));
  std::printf("\n%-*s %8s %9s %9s %9s %8s %6s %5s\n", width + 2, "cluster sizes (documents)", "min", "q1", "median", "q3",
              "max", "cv", "empty");
  for (const auto& [what, s] : rows) print_sizes_row(what.c_str(), s, width);

  std::printf("\n  %7s %8s %8s %12s  %s\n", "cluster", "fit", "assigned", "tokens", "top terms");
  for (int32_t j = 0; j < k; ++j) {
    std::string terms;
    if (r.contains("top_terms"))
      for (const auto& t : r["top_terms"][j]) terms += (terms.empty() ? "" : " ") + t["term"].get<std::string>();
    if (terms.empty()) terms = "(the embedder has no term view)";
    std::string assigned = "-", tokens = "-";
    if (r.contains("assigned")) {
      assigned = std::to_string(r["assigned"]["sizes"][j].get<int64_t>());
      tokens = std::to_string(r["assigned"]["tokens"][j].get<int64_t>());
    }
    std::printf("  %7d %8lld %8s %12s  %s\n", j, (long long)r["fit"]["sizes"][j].get<int64_t>(), assigned.c_str(),
                tokens.c_str(), terms.c_str());
  }
  if (r.contains("assigned")) {
    if (r["assigned"]["no_terms"].get<int64_t>() > 0)
      std::printf("\n  %lld document(s) had no in-vocabulary term: zero embedding, assigned to the centre nearest the origin\n",
                  (long long)r["assigned"]["no_terms"].get<int64_t>());
    std::printf("\nwhole corpus:");
    print_overlap(r["assigned"], k);
  } else {
    std::printf("\nfit set:");
    print_overlap(r["fit"], k);
  }
  return 0;
}

}  // namespace cbtm::app
