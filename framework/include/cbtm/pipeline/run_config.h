#pragma once
/// \file run_config.h
/// The run config: one YAML file (plus `--set key.path=value` overrides) that selects every
/// component by `type:` and sets the pipeline's own sections. RunConfig::load validates the
/// whole tree (framework sections and every plugin's options) and fills in defaults; the
/// resolved tree is what `cbtm config` prints and what is written beside every artifact.
///
/// Top-level keys: plugins, seed, runtime, data, tokenizer, embedder, clusterer, model,
/// seed_lm, branch, baselines, eval, launch (see docs/config.md).
#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "cbtm/config_node.h"
#include "cbtm/pipeline/launch.h"
#include "cbtm/runtime.h"

namespace cbtm {

class PluginHost;

/// `data:` -- the corpora and how much of them each stage reads.
struct DataOptions {
  std::string train;                      ///< required
  std::string eval;                       ///< required
  std::string text_field = "text";
  std::string id_field = "id";
  std::string domain_field = "domain";
  std::string on_bad_document = "skip";
  int64_t max_train_docs = 0;
  int64_t tokenizer_docs = 20000;
  std::string tokenizer_from;
  int64_t cluster_docs = 0;
  std::string sample = "uniform";
  std::string cluster_text = "document";
  int64_t cluster_text_chars = 512;
  int64_t assign_part_docs = 100000;
  int64_t assign_batch_docs = 8192;

  template <class V> void visit(V& v) {
    v("train", train,
      "required: the training corpus, a JSONL file (plain or .zst), a glob pattern or a directory of "
      "them; each file is one input shard of `cbtm assign --shard I` (relative paths: to the config file)");
    v("eval", eval, "required: the held-out corpus, never used for clustering or training (relative paths: to the config file)");
    v("text_field", text_field, "JSON field holding the document text");
    v("id_field", id_field, "JSON field with a stable document id (else <file stem>:<line>)");
    v("domain_field", domain_field, "metadata field for per-domain results ('' to disable)");
    v("on_bad_document", on_bad_document,
      "a line that is not valid JSON/UTF-8 or has no text: skip (count and warn) | fail");
    v("max_train_docs", max_train_docs, "use only the first N documents of each training file (0: all)");
    v("tokenizer_docs", tokenizer_docs, "training documents the tokenizer learns from (0: all)");
    v("tokenizer_from", tokenizer_from,
      "load this tokenizer artifact (e.g. another run's tokenizer.safetensors) instead of "
      "training the `tokenizer` section");
    v("cluster_docs", cluster_docs,
      "training documents the embedder and clusterer are fitted on, 'one shard' (0: all)");
    v("sample", sample,
      "how tokenizer_docs and cluster_docs pick their N documents when the corpus holds more: "
      "uniform (a uniform sample over every training file, seeded by `seed`; one pass over the "
      "corpus) | first (the first N: the corpus order decides, and a corpus grouped by source "
      "gives a skewed fit set)");
    v("cluster_text", cluster_text,
      "what of each training document the embedder sees when clustering fits and assign places it "
      "(routing-aware clustering; the experts still train on whole documents): document | prefix "
      "(its first cluster_text_chars bytes, what the router sees at inference) | window (that many "
      "bytes at a random offset, seeded by `seed` and the document id)");
    v("cluster_text_chars", cluster_text_chars,
      "length of a cluster_text prefix or window in bytes of text (~4 per token of English; cut at "
      "a character and, where possible, a word boundary)");
    v("assign_part_docs", assign_part_docs,
      "assign commits its output every this many documents of a shard; a killed assign resumes "
      "after the last committed part");
    v("assign_batch_docs", assign_batch_docs,
      "documents embedded, assigned and tokenized together (memory ~ batch x document size)");
  }
  void validate() const;
};

/// `{type: NAME}`.
YAML::Node component_node(const char* type);
/// The default eval.ensembles: all / top1 / top2 with the cluster_distance router at T=0.1.
YAML::Node default_ensembles();

/// `seed_lm:` -- the seed LM every expert is branched from.
struct SeedLmOptions {
  int64_t tokens = 0;
  std::string init;
  YAML::Node trainer = component_node("lm");

  template <class V> void visit(V& v) {
    v("tokens", tokens, "pretraining budget in tokens on the whole training mix (0: none)");
    v("init", init, "start from this checkpoint directory instead of a random initialisation");
    v("trainer", trainer, "trainer component for pretraining ({type: lm, ...})");
  }
  void validate() const;
};

/// `branch:` -- training the experts (and baselines) after branching.
struct BranchOptions {
  int64_t tokens = 0;
  std::string expert_batch = "split";
  YAML::Node trainer = component_node("lm");

  template <class V> void visit(V& v) {
    v("tokens", tokens,
      "required (> 0): total training tokens after branching: each of the k experts gets tokens/k, "
      "each baseline gets all of them (compute matching, paper A.2)");
    v("expert_batch", expert_batch,
      "split: an expert's batch is batch_size/k sequences, same number of steps as dense "
      "(the paper: n/k GPUs per expert) | full: whole batch, k times fewer steps");
    v("trainer", trainer, "trainer component for experts and baselines ({type: lm, ...})");
  }
  void validate() const;
};

/// `eval:` -- held-out perplexity.
struct EvalOptions {
  int64_t docs = 200;
  int64_t max_length = 0;
  bool seed_model = true;
  YAML::Node ensembles = default_ensembles();

  template <class V> void visit(V& v) {
    v("docs", docs, "held-out documents scored (the first N of data.eval; 0: all)");
    v("max_length", max_length, "truncate documents to this many tokens (0: the model's limit)");
    v("seed_model", seed_model, "also score the seed LM alone");
    v("ensembles", ensembles,
      "name -> router component; each is one C-BTM evaluation (e.g. top1: {type: "
      "cluster_distance, temperature: 0.1, top_k: 1})");
  }
  void validate() const;
};

class RunConfig {
 public:
  /// Reads `file`, applies overrides ("a.b.c=value", value parsed as YAML), validates every
  /// section and plugin option against the plugins loaded in `host` (loading the config's
  /// `plugins:` first), and resolves defaults. Error names file, line and key on any problem.
  static RunConfig load(const std::string& file, const std::vector<std::string>& overrides,
                        PluginHost& host);
  /// Same, from YAML text (file is used in messages only).
  static RunConfig parse(const std::string& yaml, const std::string& file,
                         const std::vector<std::string>& overrides, PluginHost& host);

  /// The resolved tree (every default filled in).
  const YAML::Node& resolved() const { return resolved_; }
  /// A resolved sub-tree as a ConfigNode, e.g. node("clusterer"), node("seed_lm.trainer").
  ConfigNode node(const std::string& path) const;
  /// The resolved tree as YAML text.
  std::string yaml() const;
  /// Resolved YAML text of some top-level sections (for stage fingerprints).
  std::string section_text(const std::vector<std::string>& keys) const;
  /// The same keys as the user wrote them (the config file with --set applied, paths made
  /// absolute, no defaults filled in; "~" where absent): what a stage's settings were before
  /// the code resolved them.
  std::string user_section_text(const std::vector<std::string>& keys) const;

  const std::string& file() const { return file_; }
  uint64_t seed = 1;
  Runtime runtime;
  DataOptions data;
  SeedLmOptions seed_lm;
  BranchOptions branch;
  EvalOptions eval;
  LaunchOptions launch;
  SlurmOptions slurm;  ///< launch.slurm
  std::vector<std::string> plugins;
  /// Names of eval.ensembles in order.
  std::vector<std::string> ensemble_names;

 private:
  /// Everything of parse() after the YAML is read and the overrides applied.
  static void resolve_into(RunConfig& rc, YAML::Node& root, const std::string& file, PluginHost& host);
  std::string file_;
  YAML::Node resolved_;
  YAML::Node user_;  // as written, with overrides
};

/// Applies one "a.b.c=value" override to `root` (creating maps as needed; numeric path
/// parts index lists). Error naming the override if it is malformed.
void apply_override(YAML::Node& root, const std::string& assignment);

}  // namespace cbtm
