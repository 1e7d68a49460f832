#pragma once
/// \file run_dir.h
/// The layout of a run's output directory and its finished-stage records.
///
///   config.yaml                resolved config of the latest invocation
///   stages/<stage>.json        one record per finished stage: fingerprint + summary
///   tokenizer.safetensors      tokenizer artifact
///   clusterer.safetensors      embedder + clusterer artifact (+ analysis metadata)
///   clusters/cluster-NNN/      token shards of each cluster; clusters/assignments.tsv
///   seed/                      seed LM (final checkpoint: seed/final)
///   experts/expert-NNN/        expert NNN, trained on cluster NNN (final: .../final)
///   baselines/<name>/          each baseline
///   manifest.json              experts by cluster id, baselines, artifacts
///   results.json               evaluation figures
///
/// A stage is skipped when its record exists with the same fingerprint: a hash of the
/// resolved config sections it reads and of the run ids of the stage records it consumes.
/// A record made from the same config but other inputs (an input stage was recomputed) is
/// recomputed; one made from a different config is an Error naming the changed keys.
#include <cstdint>
#include <map>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

namespace cbtm {

class RunDir {
 public:
  explicit RunDir(std::string root);
  const std::string& root() const { return root_; }
  std::string path(const std::string& rel) const;  ///< root/rel

  std::string tokenizer() const { return path("tokenizer.safetensors"); }
  std::string clusterer() const { return path("clusterer.safetensors"); }
  std::string clusters() const { return path("clusters"); }
  std::string cluster_data(int32_t cluster) const;  ///< clusters/cluster-NNN
  std::string seed_dir() const { return path("seed"); }
  std::string expert_dir(int32_t cluster) const;    ///< experts/expert-NNN
  std::string baseline_dir(const std::string& name) const { return path("baselines/" + name); }
  std::string manifest() const { return path("manifest.json"); }
  std::string results() const { return path("results.json"); }

  /// The record of a finished stage, or null json if it has not finished.
  nlohmann::json record(const std::string& stage) const;
  /// Whether `stage` finished with this fingerprint. False if it has no record or was made
  /// from the same config_text with other inputs; Error if made from another config (the
  /// message lists the lines of config_text that differ and how to redo the stage).
  bool finished(const std::string& stage, const std::string& fingerprint,
                const std::string& config_text) const;
  /// Marks a stage finished (atomically), with a fresh unique `run_id`. `user_config`: the
  /// same sections as the user wrote them, before defaults (kept as "user_config"; see
  /// Pipeline::done).
  void finish(const std::string& stage, const std::string& fingerprint,
              const std::string& config_text, const nlohmann::json& summary,
              const std::string& user_config = "") const;
  /// The assign stage's training documents per (metadata value, cluster) -- the overlap
  /// table metadata routers read (RoutingContext::domain_counts); empty when the run has no
  /// metadata field or has not been assigned.
  std::map<std::string, std::vector<int64_t>> domain_counts() const;
  /// Forgets a stage's record (its outputs are overwritten when it runs again).
  void forget(const std::string& stage) const;

 private:
  std::string root_;
};

/// A short stable hash (hex) of a text, for fingerprints.
std::string fingerprint(const std::string& text);

/// Whether two stage config texts (lines "key: <YAML flow value>") hold the same settings,
/// spelled alike or not: numbers are compared as numbers (a build that writes 1e-06 as
/// 1.0e-06, or 30 as 30.0, changes no setting).
bool same_settings(const std::string& a, const std::string& b);

}  // namespace cbtm
