#pragma once
/// \file run_suite.h
/// `cbtm suite SUITE.yaml --out DIR`: runs every cell of a suite (suite.h), then writes its
/// tables (suite_results.h) and figures (figures.h).
///
///   DIR/suite.yaml                 the suite as run (with --set applied) and its cells
///   DIR/shared/seed-FP/            with share_seed: the tokenizer and seed LM of every cell
///                                  whose seed-relevant sections (seed, data, tokenizer,
///                                  model, seed_lm) resolve alike (FP: their fingerprint)
///   DIR/cells/NAME/                one ordinary run directory per cell
///   DIR/results.{json,csv,md}, DIR/figures/
///
/// Every cell's config is resolved and validated before anything runs. Cells run one after
/// the other, each through `cbtm launch` (locally: experts as child processes,
/// launch.max_parallel at a time; on Slurm: each cell's chain of job arrays, all cells
/// submitted at once after the shared seeds, then waited for). A finished cell is skipped;
/// a killed suite resumes (each cell from its stages' checkpoints); a failed cell does not
/// stop the others -- the suite fails at the end naming it, after writing the tables of
/// what finished. A cell whose shared seed was retrained since it ran is redone from its
/// seed stage. `--seed-from OTHER` borrows the finished shared seeds of another suite's
/// directory (OTHER/shared/seed-FP with the same fingerprint): its cells branch from them and
/// nothing of the seed is trained again.
#include <string>
#include <vector>

namespace cbtm {

class PluginHost;

struct SuiteRequest {
  std::string suite;                     ///< the suite file
  std::string out;                       ///< the suite's directory
  std::vector<std::string> overrides;    ///< --set on the suite file's tree
  std::vector<std::string> cells;        ///< --cell NAME: only these (default: all)
  std::string scheduler;                 ///< local | slurm ("" : the base config's launch.scheduler)
  bool wait = true;                      ///< slurm: wait for the cells, then tabulate
  bool tables_only = false;              ///< --tables: run nothing, only (re)write tables and figures
  bool list_only = false;                ///< --list: print the cells and their status, run nothing
  std::string gnuplot = "gnuplot";       ///< "" : write figure data and scripts only
  std::string cbtm_exe;                  ///< the cbtm executable (absolute), for launch's jobs
  std::vector<std::string> seed_from;    ///< other suites' directories whose finished shared seeds to reuse
  /// --redo STAGE: recompute this stage and what depends on it in every selected cell, finished
  /// or changed (e.g. `eval` after adding an ensemble to a finished sweep: nothing is retrained)
  std::vector<std::string> redo;
};

/// Returns 0 when every selected cell finished; throws Error naming the failed cells.
int run_suite(const SuiteRequest& req, PluginHost& host);

}  // namespace cbtm
