#pragma once
/// \file figures.h
/// A suite's figures, drawn from its collected results (suite_results.h) with gnuplot (SVG).
/// Each figure writes DIR/figures/NAME.dat (the numbers, tab-separated, one block per
/// series), NAME.gp (the gnuplot script, to restyle by hand) and NAME.svg.
///
/// \code
///   figures:
///     # perplexity vs a numeric axis, one line per value of another axis (or per model)
///     - {name: ppl-vs-tokens, type: line, x: tokens, series: k, models: [c-btm all], logx: true}
///     # the value of axis `of` with the lowest y at each x, one line per model (Fig. 6)
///     - {name: best-k, type: best, x: tokens, of: k, models: [c-btm all, c-btm top1]}
///     # per cell: the expert specialisation matrix (Fig. 15) or the cluster x metadata
///     # overlap (Fig. 16); `cell` picks one cell (default: one figure per finished cell)
///     - {name: specialisation, type: heatmap, data: specialisation, cell: "k=4,tokens=4000000"}
///     # cluster sizes, largest first, one line per cell (Fig. 18)
///     - {name: sizes, type: sizes, where: {tokens: "4000000"}}
/// \endcode
///
/// Common keys: name (required), type (line | best | heatmap | sizes), title, y (ppl |
/// vs_dense | bits_per_byte; line and best), logx, logy, where ({axis: label}: only those
/// cells). `models` names rows of the cells' results ("dense", "c-btm top1", "seed",
/// "oracle", ...); line's default is every model that is not a single expert.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "cbtm/suite/suite.h"

namespace cbtm {

/// What drawing one figure produced.
struct FigureOutput {
  std::string name;                ///< NAME (or NAME-CELL for per-cell figures)
  std::string data, script, svg;   ///< paths (svg empty when gnuplot failed or is missing)
  std::string note;                ///< why there is no svg, when there is none
};

/// Validates the `figures:` list against the suite's axes (Error naming the suite file and
/// the figure's key) without drawing anything.
void check_figures(const Suite& suite);

/// Writes every figure of the suite under `dir`/figures from `collected`; figures with no
/// data yet (no finished cell) are skipped with a note. `gnuplot` is the program to run
/// ("" skips rendering: only .dat and .gp are written).
std::vector<FigureOutput> draw_figures(const Suite& suite, const nlohmann::json& collected,
                                       const std::string& dir, const std::string& gnuplot = "gnuplot");

}  // namespace cbtm
