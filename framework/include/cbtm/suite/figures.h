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
///     # perplexity vs training FLOPs (paper A.2): x: flops, where no axis has that name
///     - {name: flops, type: line, x: flops, series: model, models: [dense, moe, c-btm all]}
///     # a Markdown table of the ensembles by two router options or axes (Table 9)
///     - {name: t9, type: table, rows: temperature, cols: top_k}
///     # FLOPs speed-up over dense at equal perplexity (paper A.3), a table and a figure
///     - {name: speedup, type: speedup, x: tokens, series: k, models: [c-btm all]}
/// \endcode
///
/// Common keys: name (required), type (line | best | heatmap | sizes | table | speedup),
/// title, y (ppl | vs_dense | bits_per_byte; line, best, table), logx, logy, where ({axis:
/// label}: only those cells); speedup: reference (default dense), include_seed, extrapolate. `models` names rows of the cells' results ("dense", "c-btm top1", "seed",
/// "oracle", ...); line's default is every model that is not a single expert.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "cbtm/suite/suite.h"

namespace cbtm {

/// The paper's A.3 interpolation (after Artetxe et al. 2021): the training cost needed to reach
/// perplexity `t`, from observed (perplexity, cost) points: c(t) = exp(log c_lo + r (log c_hi -
/// log c_lo)), r = (t - t_lo) / (t_hi - t_lo), where t_lo <= t <= t_hi are the observed
/// perplexities closest to t. Outside the observed range: NaN, or with `extrapolate` the same
/// line through the two nearest points (and `*extrapolated` set). Fewer than two distinct
/// perplexities: NaN.
double interpolate_cost(std::vector<std::pair<double, double>> points, double t, bool extrapolate = false,
                        bool* extrapolated = nullptr);

/// What drawing one figure produced.
struct FigureOutput {
  std::string name;                ///< NAME (or NAME-CELL for per-cell figures)
  std::string data, script, svg;   ///< paths (svg empty when gnuplot failed or is missing)
  std::string note;                ///< why there is no svg, when there is none
  std::string markdown;            ///< a table figure's Markdown (also in NAME.md), else empty
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
