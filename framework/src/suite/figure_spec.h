#pragma once
// Internal to the suite's figures: one parsed `figures:` entry and the helpers that every
// figure type shares (figures.cpp draws line/best/heatmap/sizes, tables.cpp the Markdown
// tables: table (Table 9) and speedup (A.3)).
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/suite/suite.h"

namespace cbtm::suite_figures {

/// One entry of a suite's `figures:` list, validated against the suite's axes.
struct Fig {
  std::string name, type, title, y = "ppl", x, series = "model", of, data = "specialisation", cell;
  std::string rows, cols, reference = "dense";   // table: rows/cols; speedup: the reference model
  std::string metric = "loss";                   // curve: a key of the models' metrics.jsonl
  bool logx = false, logy = false, include_seed = false, extrapolate = false;
  std::vector<std::string> models;
  std::map<std::string, std::string> where;
};

/// Parses and validates figures[i] (Error naming the suite file, the line and the key).
Fig parse_fig(const Suite& s, size_t i);

/// One line of a figure: its title and (x, y) points.
struct Series {
  std::string title;
  std::vector<std::pair<double, double>> points;
};

/// A Markdown table (and, for speedup, the series to plot).
struct Table {
  std::string markdown;
  std::vector<Series> series;
};

/// The cell's label on `axis`.
std::string label_of(const nlohmann::json& cell, const std::string& axis);
/// A finished cell that passes the figure's `where`.
bool selected(const Fig& f, const nlohmann::json& cell);
/// `y` (ppl | vs_dense | bits_per_byte) of `model` in `cell`; NaN when missing.
double model_value(const nlohmann::json& cell, const std::string& model, const std::string& y);
/// Number formatting: "%.6g", "NaN" when not finite.
std::string fmt(double v);

/// `type: curve` -- a metric of each model's training log (metrics.jsonl) against tokens or
/// steps, one line per (cell, model), averaged into at most 100 points; models are baselines
/// ("dense", "moe") or experts ("expert 0"). `dir` is the suite's output directory.
std::vector<Series> curve_series(const Suite& s, const Fig& f, const nlohmann::json& collected, const std::string& dir);

/// `type: table` -- the ensembles of each cell arranged by two router options or axes
/// (`rows`, `cols`), e.g. temperature x top_k (the paper's Table 9). Empty markdown: no data.
Table ensemble_table(const Suite& s, const Fig& f, const nlohmann::json& collected);
/// `type: speedup` -- the paper's A.3: for each model's perplexity t, the FLOPs the reference
/// (dense) models need to reach t, interpolated log-linearly between the two reference runs
/// whose perplexities bracket t, divided by the model's own FLOPs.
Table speedup_table(const Suite& s, const Fig& f, const nlohmann::json& collected);

}  // namespace cbtm::suite_figures
