// A suite's Markdown tables: ensembles by router options (Table 9) and the FLOPs speed-up of
// the paper's A.3; see figure_spec.h and figures.h.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include <yaml-cpp/yaml.h>

#include "cbtm/suite/figures.h"
#include "cbtm/suite/suite_results.h"
#include "figure_spec.h"

namespace cbtm {

double interpolate_cost(std::vector<std::pair<double, double>> points, double t, bool extrapolate, bool* extrapolated) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (extrapolated) *extrapolated = false;
  points.erase(std::remove_if(points.begin(), points.end(),
                              [](const auto& p) { return !std::isfinite(p.first) || !(p.second > 0); }),
               points.end());
  if (!std::isfinite(t) || points.empty()) return nan;
  std::sort(points.begin(), points.end());
  for (const auto& [ppl, cost] : points)
    if (ppl == t) return cost;  // an observation at exactly t (the cheapest, sorted first)
  // The closest observed perplexities on either side of t.
  const auto above = std::upper_bound(points.begin(), points.end(), std::make_pair(t, std::numeric_limits<double>::infinity()));
  std::pair<double, double> lo, hi;
  if (above != points.begin() && above != points.end()) {
    lo = *std::prev(above);
    hi = *above;
  } else {
    if (!extrapolate) return nan;
    // The two nearest distinct perplexities on the one side t is on.
    std::vector<std::pair<double, double>> side(points.begin(), points.end());
    if (above == points.end()) std::reverse(side.begin(), side.end());
    lo = side[0];
    size_t j = 1;
    while (j < side.size() && side[j].first == lo.first) ++j;
    if (j == side.size()) return nan;
    hi = side[j];
    if (extrapolated) *extrapolated = true;
  }
  const double r = (t - lo.first) / (hi.first - lo.first);
  return std::exp(std::log(lo.second) + r * (std::log(hi.second) - std::log(lo.second)));
}

namespace suite_figures {
namespace {

bool number(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

// "all" for top_k 0 (every expert), else the value as written.
std::string shown(const std::string& key, const std::string& value) {
  return key == "top_k" && value == "0" ? "all" : value;
}

// Sorts labels numerically when all are numbers ("all" last), else keeps first-seen order.
void sort_labels(std::vector<std::string>& v) {
  std::vector<double> n;
  for (const auto& l : v) {
    double d = 0;
    if (l == "all") d = std::numeric_limits<double>::infinity();
    else if (!number(l, d)) return;
    n.push_back(d);
  }
  std::vector<size_t> idx(v.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return n[a] < n[b]; });
  std::vector<std::string> out;
  for (size_t i : idx) out.push_back(v[i]);
  v = out;
}

// The value of `key` for one model of a cell: the cell's label when `key` is an axis, else the
// option of the model's router (ensembles only); "" when it has none.
std::string coordinate(const Suite& s, const nlohmann::json& cell, const nlohmann::json& model, const std::string& key) {
  if (s.axis(key) >= 0) return label_of(cell, key);
  if (!model.contains("router") || !model["router"].is_string()) return "";
  try {
    const YAML::Node r = YAML::Load(model["router"].get<std::string>());
    if (r.IsMap() && r[key] && r[key].IsScalar()) return shown(key, r[key].as<std::string>());
  } catch (const YAML::Exception&) {
  }
  return "";
}

std::string cell2(double v, bool best) {
  if (!std::isfinite(v)) return "–";
  char b[32];
  std::snprintf(b, sizeof b, best ? "**%.2f**" : "%.2f", v);
  return b;
}

// The cell's labels on the axes a table does not use, as "a=1, b=2" (its block title).
std::string block_of(const Suite& s, const Fig& f, const nlohmann::json& cell, const std::set<std::string>& used) {
  std::string out;
  for (const auto& a : s.axes)
    if (!used.count(a.name) && !f.where.count(a.name)) out += (out.empty() ? "" : ", ") + a.name + "=" + label_of(cell, a.name);
  return out;
}

std::string sci(double v) {
  if (!std::isfinite(v)) return "–";
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

}  // namespace

Table ensemble_table(const Suite& s, const Fig& f, const nlohmann::json& collected) {
  struct Block {
    std::vector<std::string> rows, cols;
    std::map<std::pair<std::string, std::string>, double> v;
    double reference = std::numeric_limits<double>::quiet_NaN();
  };
  std::map<std::string, Block> blocks;
  std::vector<std::string> order;
  const std::set<std::string> used = {f.rows, f.cols};
  for (const auto& cell : collected["cells"]) {
    if (!selected(f, cell) || (!f.cell.empty() && cell["name"] != f.cell)) continue;
    const std::string key = block_of(s, f, cell, used);
    for (const auto& m : cell["results"]["models"]) {
      const std::string name = m["name"].get<std::string>();
      if (f.models.empty() ? m.value("role", "") != "ensemble"
                           : std::find(f.models.begin(), f.models.end(), name) == f.models.end())
        continue;
      const std::string r = coordinate(s, cell, m, f.rows), c = coordinate(s, cell, m, f.cols);
      const double y = model_value(cell, name, f.y);
      if (r.empty() || c.empty() || !std::isfinite(y)) continue;
      if (!blocks.count(key)) order.push_back(key);
      Block& b = blocks[key];
      if (std::find(b.rows.begin(), b.rows.end(), r) == b.rows.end()) b.rows.push_back(r);
      if (std::find(b.cols.begin(), b.cols.end(), c) == b.cols.end()) b.cols.push_back(c);
      b.v.emplace(std::make_pair(r, c), y);
      if (f.y != "vs_dense") b.reference = model_value(cell, "dense", f.y);
    }
  }
  Table t;
  if (order.empty()) return t;
  const std::string what = f.y == "vs_dense" ? "perplexity / dense perplexity" : f.y == "bits_per_byte" ? "bits per byte" : "held-out perplexity";
  t.markdown = what + " by " + f.rows + " (rows) and " + f.cols + " (columns); the lowest of each column in bold.\n";
  for (const auto& key : order) {
    Block& b = blocks[key];
    sort_labels(b.rows);
    sort_labels(b.cols);
    t.markdown += "\n";
    if (!key.empty() || std::isfinite(b.reference))
      t.markdown += (key.empty() ? std::string() : "**" + key + "**") +
                    (std::isfinite(b.reference) ? std::string(key.empty() ? "" : " — ") + "dense: " + cell2(b.reference, false) : "") + "\n\n";
    t.markdown += "| " + f.rows + " \\ " + f.cols + " |";
    std::string rule = "|---|";
    for (const auto& c : b.cols) {
      t.markdown += " " + c + " |";
      rule += "---:|";
    }
    t.markdown += "\n" + rule + "\n";
    std::map<std::string, double> best;
    for (const auto& c : b.cols)
      for (const auto& r : b.rows) {
        auto it = b.v.find({r, c});
        if (it != b.v.end() && (!best.count(c) || it->second < best[c])) best[c] = it->second;
      }
    for (const auto& r : b.rows) {
      t.markdown += "| " + r + " |";
      for (const auto& c : b.cols) {
        auto it = b.v.find({r, c});
        const double v = it == b.v.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
        t.markdown += " " + cell2(v, std::isfinite(v) && v == best[c]) + " |";
      }
      t.markdown += "\n";
    }
  }
  return t;
}

Table speedup_table(const Suite& s, const Fig& f, const nlohmann::json& collected) {
  const std::vector<std::string> models = f.models.empty() ? std::vector<std::string>{"c-btm all"} : f.models;
  const std::string series_axis = f.series == "model" ? "" : f.series;
  const SuiteAxis& xa = s.axes[s.axis(f.x)];
  // Reference points of a cell: every selected cell with the same labels on the axes other
  // than x and the series axis (the reference model's curve over the budgets).
  auto group = [&](const nlohmann::json& cell) {
    std::string g;
    for (const auto& a : s.axes)
      if (a.name != f.x && a.name != series_axis) g += a.name + "=" + label_of(cell, a.name) + ";";
    return g;
  };
  std::map<std::string, std::vector<std::pair<double, double>>> refs;
  for (const auto& cell : collected["cells"]) {
    if (!selected(f, cell)) continue;
    const std::pair<double, double> p{cell_ppl(cell, f.reference), cell_flops(cell, f.reference, f.include_seed)};
    if (!std::isfinite(p.first) || !std::isfinite(p.second)) continue;
    auto& v = refs[group(cell)];
    if (std::find(v.begin(), v.end(), p) == v.end()) v.push_back(p);
  }
  Table t;
  std::map<std::string, Series> by;
  std::vector<std::string> order;
  std::string rows;
  bool any_extrapolated = false;
  for (const auto& cell : collected["cells"]) {
    if (!selected(f, cell)) continue;
    for (const auto& m : models) {
      const double ppl = cell_ppl(cell, m), flops = cell_flops(cell, m, f.include_seed);
      if (!std::isfinite(ppl) || !std::isfinite(flops)) continue;
      const auto& pts = refs[group(cell)];
      bool ex = false;
      const double ref = interpolate_cost(pts, ppl, f.extrapolate, &ex);
      const double speedup = ref / flops;
      any_extrapolated = any_extrapolated || (ex && std::isfinite(speedup));
      std::string row = "|";
      for (const auto& a : s.axes) row += " " + label_of(cell, a.name) + " |";
      std::string range;
      if (!std::isfinite(ref) && !pts.empty()) {
        double lo = pts[0].first, hi = pts[0].first;
        for (const auto& p : pts) lo = std::min(lo, p.first), hi = std::max(hi, p.first);
        range = "outside " + f.reference + "'s " + cell2(lo, false) + "–" + cell2(hi, false);
      }
      char sp[48];
      std::snprintf(sp, sizeof sp, "%.2f%s", speedup, ex ? "*" : "");
      row += " " + m + " | " + cell2(ppl, false) + " | " + sci(flops) + " | " + sci(ref) + " | " +
             (std::isfinite(speedup) ? std::string(sp) : range.empty() ? "–" : "– (" + range + ")") + " |\n";
      rows += row;
      if (!std::isfinite(speedup)) continue;
      std::string title = m;
      if (!series_axis.empty()) title += " (" + series_axis + "=" + label_of(cell, series_axis) + ")";
      for (const auto& a : s.axes)
        if (a.name != f.x && a.name != series_axis && !f.where.count(a.name)) title += ", " + a.name + "=" + label_of(cell, a.name);
      if (!by.count(title)) {
        by[title].title = title;
        order.push_back(title);
      }
      const auto& labels = xa.labels;
      const size_t i = static_cast<size_t>(std::find(labels.begin(), labels.end(), label_of(cell, f.x)) - labels.begin());
      by[title].points.push_back({xa.numbers.empty() ? static_cast<double>(i) : xa.numbers[i], speedup});
    }
  }
  if (rows.empty()) return t;
  std::string head = "|", rule = "|";
  for (const auto& a : s.axes) {
    head += " " + a.name + " |";
    rule += "---|";
  }
  t.markdown = std::string("Speed-up (paper A.3): the training FLOPs ") + f.reference +
               " needs for the model's perplexity, interpolated log-linearly between the " + f.reference +
               " runs whose perplexities bracket it, divided by the model's own FLOPs" +
               (f.include_seed ? " (the seed's pretraining included in both)" : " (after branching)") +
               ". Above 1: the model reaches that perplexity with fewer FLOPs.\n\n" + head +
               " model | ppl | FLOPs | " + f.reference + " FLOPs at that ppl | speed-up |\n" + rule + "---|---:|---:|---:|---:|\n" +
               rows;
  if (any_extrapolated)
    t.markdown += "\n\\* extrapolated: the perplexity lies outside the " + f.reference +
                  " runs' range; the line through the two nearest runs is extended.\n";
  for (const auto& title : order) {
    Series se = by[title];
    std::sort(se.points.begin(), se.points.end());
    t.series.push_back(se);
  }
  return t;
}

}  // namespace suite_figures
}  // namespace cbtm
