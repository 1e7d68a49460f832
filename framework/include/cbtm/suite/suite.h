#pragma once
/// \file suite.h
/// A suite: one base run config plus sweep axes. Its cells are the cartesian product of the
/// axes' values; each cell is an ordinary run directory (DIR/cells/NAME) made from the base
/// config with the cell's overrides, so everything `cbtm run` does (stage skipping, resume
/// after a kill, launch on Slurm) holds for every cell.
///
/// \code
///   base: ../quickstart.yaml        # relative to the suite file
///   set: {eval.docs: 200}           # overrides of every cell (key path -> YAML value)
///   share_seed: true                # one tokenizer + seed LM per group of cells that agree
///                                   # on everything the seed depends on
///   axes:
///     - {name: k, key: clusterer.k, values: [2, 4, 8]}
///     - {name: tokens, key: branch.tokens, values: [1000000, 2000000]}
///     - name: clusters              # a variant axis: label -> overrides
///       variants:
///         balanced: {}
///         random: {clusterer.type: random}
///   dense_from: {k: "1"}            # cells without a dense baseline compare against the
///                                   # cell with these labels (and their own on the other
///                                   # axes): its "c-btm all" plays the dense model
///   ensemble_grid:                  # more ensembles in every cell, without more training:
///     type: cluster_distance        #   the cartesian product of the list-valued keys
///     temperature: [0.05, 0.1, 0.5] #   (top_k values above a cell's k are dropped)
///     top_k: [1, 2, 0]
///     name: "T{temperature}-top{top_k}"
///   figures:                        # see figures.h
///     - {name: ppl-vs-tokens, type: line, x: tokens, series: k, models: [c-btm all]}
/// \endcode
///
/// Cell names join the axes' labels: "k=2,tokens=1000000,clusters=random" (file-system safe:
/// only [A-Za-z0-9._=,+-]).
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace cbtm {

/// One sweep axis: a key with values, or named variants (label -> overrides).
struct SuiteAxis {
  std::string name;                  ///< column name in tables, axis name in figures
  std::string key;                   ///< config key path (value axes only)
  std::vector<std::string> labels;   ///< one per value, as printed (a value axis: the value)
  /// Overrides ("a.b=value") each value applies, parallel to labels.
  std::vector<std::vector<std::string>> overrides;
  /// Numeric value of each label, when every label is a number (for plotting); else empty.
  std::vector<double> numbers;
};

/// One cell of the sweep.
struct SuiteCell {
  std::string name;                            ///< "k=2,tokens=1000000"
  std::vector<std::string> labels;             ///< its label on each axis, in axis order
  std::vector<std::string> overrides;          ///< suite `set` first, then each axis's
};

struct Suite {
  std::string file;                 ///< the suite file (absolute)
  std::string base;                 ///< the base run config (absolute)
  std::vector<std::string> set;     ///< overrides of every cell ("a.b=value")
  bool share_seed = true;
  std::vector<SuiteAxis> axes;
  /// `dense_from`: axis name -> label of the reference cell (empty: every cell's own dense).
  std::map<std::string, std::string> dense_from;
  YAML::Node ensemble_grid;         ///< `ensemble_grid:` (a map, or null: none)
  YAML::Node figures;               ///< the `figures:` list (parsed by figures.h)
  YAML::Node tree;                  ///< the whole suite file as read (+ overrides)

  /// Reads and validates a suite file; `overrides` ("a.b=value") apply to the suite tree
  /// itself (e.g. "axes.0.values=[2]"). Error naming file, line and key on any problem.
  static Suite load(const std::string& file, const std::vector<std::string>& overrides = {});
  /// Same, from YAML text; `file` names it in messages and anchors relative paths.
  static Suite parse(const std::string& yaml, const std::string& file,
                     const std::vector<std::string>& overrides = {});

  /// Every cell, first axis slowest. An axis-free suite has one cell named "base".
  std::vector<SuiteCell> cells() const;
  /// Index of the axis called `name`, or -1.
  int axis(const std::string& name) const;
  /// A cell's eval.ensembles: `ensembles` (its resolved ones) plus the ensemble_grid's for a
  /// cell with `k` experts -- every combination of the grid's list-valued keys, named by its
  /// `name` template ({key} -> the value, '.' -> '_', top_k 0 -> "all"); top_k values above k
  /// are left out (k <= 0: none are). Without a grid, `ensembles` unchanged.
  YAML::Node grid_ensembles(const YAML::Node& ensembles, int64_t k) const;
};

/// "key=value" with value rendered as one-line YAML (flow style) -- what --set takes.
std::string override_text(const std::string& key, const YAML::Node& value);

}  // namespace cbtm
