#pragma once
/// \file pipeline.h
/// The C-BTM pipeline over one output directory. Each stage is resumable and skipped when
/// already finished with the same config (see run_dir.h):
///
///   tokenizer   train the tokenizer (on `data.tokenizer_docs` documents)
///   cluster     fit embedder + clusterer on `data.cluster_docs` documents (Step 0)
///   assign      embed + tokenize every training document into its nearest cluster's token
///               shards (per input file, in committed parts; see stage_assign.cpp)
///   seed        the seed LM (pretrained on all clusters' data for seed_lm.tokens)
///   expert-NNN  branch: expert NNN from the seed, trained on cluster NNN (Steps 1-2)
///   baseline-X  each baseline, from the seed, on tokens/all, same total tokens
///   eval        held-out perplexity of the baselines and the expert ensembles (Step 3);
///               unlike the others, re-run by itself when its settings change
///
/// \code
///   Pipeline p(host, RunConfig::load("configs/quickstart.yaml", {}, host), "out");
///   p.run();                       // everything; or p.cluster(), p.assign(), ...
/// \endcode
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/fs.h"
#include "cbtm/pipeline/cluster_text.h"
#include "cbtm/pipeline/run_config.h"
#include "cbtm/pipeline/run_dir.h"

namespace cbtm {

class PluginHost;
class Tokenizer;

class Pipeline {
 public:
  /// Applies cfg.runtime process-wide and writes out/config.yaml.
  Pipeline(PluginHost& host, RunConfig cfg, const std::string& out_dir);
  ~Pipeline();

  /// Stages to recompute even if finished ("cluster", "expert-002", "experts", "baselines",
  /// "all", ...); everything that depends on them is recomputed too.
  void redo(const std::set<std::string>& stages);

  void tokenize();
  void cluster();
  void assign();   ///< runs tokenize() if needed; requires cluster(); every shard + merge
  /// Input files of data.train (one assign shard each).
  std::vector<std::string> assign_inputs() const;
  /// Assigns input file `shard` only (resumes after its last committed part); requires the
  /// tokenizer and cluster stages. Safe to run concurrently for different shards.
  void assign_shard(int64_t shard);
  /// Merges every shard's output into clusters/ and finishes the assign stage (Error listing
  /// the shards not yet assigned).
  void merge_assign();
  void train_seed();
  /// Trains the listed experts (all when empty); requires assign() and the seed.
  void train_experts(const std::vector<int32_t>& which = {});
  /// Trains the named baselines (all when empty); requires the seed.
  void train_baselines(const std::vector<std::string>& which = {});
  void eval();     ///< requires every expert and baseline
  void run();      ///< every stage in order

  /// Number of experts (clusterer k).
  int32_t experts() const;
  const RunDir& dir() const { return dir_; }
  const RunConfig& config() const { return cfg_; }
  /// True when `stage` finished with the current config and inputs (then it is skipped).
  bool finished(const std::string& stage) const { return done(stage); }
  /// The `type` of every configured baseline, in config order.
  std::vector<std::string> baseline_types() const;
  /// Regenerates manifest.json from the stage records.
  void write_manifest() const;

 private:
  // fingerprints (hash of the config sections a stage reads + its inputs' fingerprints)
  /// The config sections `stage` reads, resolved (or, with `user`, as the user wrote them).
  std::string config_text(const std::string& stage, bool user = false) const;
  std::string fp(const std::string& stage) const;
  /// The fingerprint of `stage` with config text `text` and the current inputs.
  std::string fp_with(const std::string& stage, std::string text) const;
  /// Finished with this config and inputs. Also true (with a warning) when only the resolved
  /// config differs and the user's settings and the inputs are those of the record: a build
  /// that added an option at its default must not refuse a finished run.
  bool done(const std::string& stage) const;
  /// Whether --redo names this stage (itself, its group -- experts, baselines -- or all).
  bool redo_requested(const std::string& stage) const;
  /// The main output of a finished stage (its record) when it is gone from disk, else "".
  std::string missing_output(const std::string& stage, const nlohmann::json& record) const;
  void require_done(const std::string& stage, const std::string& how) const;
  std::string seed_checkpoint() const;
  /// Directories a training stage writes (its trainer's out_dir).
  std::vector<std::string> outputs(const std::string& stage) const;
  /// Before a stage runs: takes the stage's lock (Error if another process runs it), then
  /// outputs stamped by another attempt (other config or inputs) are discarded; outputs of this
  /// attempt are kept, so a killed job resumes from them.
  void begin_stage(const std::string& stage) const;
  /// After a stage's outputs are complete: writes config.yaml (this config) and the stage's
  /// record (fingerprint, config text, `summary`).
  void finish_stage(const std::string& stage, const nlohmann::json& summary) const;
  std::unique_ptr<Tokenizer> load_tokenizer() const;
  /// data.cluster_text / cluster_text_chars and the run seed.
  ClusterTextSpec cluster_text_spec() const { return {cfg_.data.cluster_text, cfg_.data.cluster_text_chars, cfg_.seed}; }
  std::string assign_shard_dir(int64_t shard) const;
  void require_assign_inputs() const;
  bool redo_assign() const;  ///< --redo assign (or all) was asked for
  /// "seed_lm.init checkpoint: <fingerprint of its config.json, trainer_state.json and weight
  /// file size>\n" (empty without seed_lm.init): part of the seed stage's config text.
  std::string seed_init_identity() const;
  /// Error if data.train's files (names, sizes) differ from those the finished assign stage
  /// recorded; nothing if the files cannot be listed (the finished stage stands).
  void check_assign_inputs_unchanged() const;
  /// The token-shard directories of every cluster (the whole training mix).
  std::vector<std::string> all_data() const;

  PluginHost& host_;
  RunConfig cfg_;
  RunDir dir_;
  mutable std::set<std::string> redo_;  // "done:<stage>" marks a stage already redone
  /// Takes OUT/locks/NAME.lock for this process (until release_lock or the end of the
  /// Pipeline), or throws an Error naming the process that holds it: two processes never run
  /// the same stage (or assign shard) of one run directory at once.
  void take_lock(const std::string& name, const std::string& what) const;
  void release_lock(const std::string& name) const;
  mutable std::map<std::string, std::unique_ptr<FileLock>> locks_;
};

/// Stage name of expert j: "expert-007".
std::string expert_stage(int32_t j);

}  // namespace cbtm
