#pragma once
/// \file suite_results.h
/// A suite's results: every cell's results.json (and its assign-stage summary: cluster sizes,
/// the cluster x metadata overlap, NMI) gathered into one self-describing document, and the
/// tables made from it.
///
///   DIR/results.json   format cbtm-suite-results v1: the suite, every cell (name, labels,
///                      status, its results.json and assign summary)
///   DIR/results.csv    one row per (cell, model): the axes, model, role, ppl, bits/byte,
///                      ratio to the cell's dense baseline, experts per token, k, tokens,
///                      training FLOPs after branching and the seed's
///   DIR/results.md     one row per cell, one perplexity column per model (Markdown)
///   DIR/terms.md       the top terms of every cluster centre of every cell (paper A.1)
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/suite/suite.h"

namespace cbtm {

/// Reads DIR/cells/NAME of every cell: status "finished" (results.json present and the eval
/// stage recorded), "failed" (listed in `failed`, with its message) or "pending".
nlohmann::json collect_suite_results(const Suite& suite, const std::vector<SuiteCell>& cells,
                                     const std::string& dir,
                                     const std::vector<std::pair<std::string, std::string>>& failed = {});

/// The long table (CSV, RFC 4180 quoting) of the finished cells.
std::string suite_csv(const nlohmann::json& collected);
/// The wide table (Markdown): one row per cell, ppl per model, then the pending/failed cells.
std::string suite_markdown(const nlohmann::json& collected);

/// The top `terms` terms of every cluster of every finished cell (Markdown), with the cluster's
/// training documents.
std::string suite_terms_markdown(const nlohmann::json& collected, int terms = 10);

/// Training FLOPs (paper A.2) of `model` in a collected cell: the k experts together for an
/// ensemble or the oracle, the baseline's own run for a baseline, the dense_from reference's
/// experts for "dense" where the cell has none; plus the seed's pretraining when
/// `include_seed`. NaN when unknown (a cell not finished, or records made before FLOPs were
/// recorded).
double cell_flops(const nlohmann::json& cell, const std::string& model, bool include_seed = false);

/// Perplexity of `model` in a collected cell (NaN when the cell did not finish or has no
/// such model). `model` "dense" also matches the role, as does "oracle".
double cell_ppl(const nlohmann::json& cell, const std::string& model);

}  // namespace cbtm
