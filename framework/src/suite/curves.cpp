// A suite's training curves: a metric of each model's metrics.jsonl per cell; see figure_spec.h.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cbtm/pipeline/run_dir.h"
#include "figure_spec.h"

namespace fs = std::filesystem;

namespace cbtm::suite_figures {
namespace {

constexpr size_t kMaxPoints = 100;  // per-step losses are noisy: bucket means read better

// The directory whose metrics.jsonl holds `model`'s training log: a baseline's, or expert j's.
std::string log_dir(const RunDir& run, const std::string& model) {
  int j = -1;
  char tail = 0;
  if (std::sscanf(model.c_str(), "expert %d%c", &j, &tail) == 1 && j >= 0) return run.expert_dir(j);
  return run.baseline_dir(model);
}

// (x, metric) of every line of a metrics.jsonl that has both; lines that do not parse are
// skipped (a log being appended to may end in a partial line).
std::vector<std::pair<double, double>> read_log(const std::string& path, const std::string& x, const std::string& metric) {
  std::vector<std::pair<double, double>> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json r = nlohmann::json::parse(line, nullptr, false);
    if (r.is_discarded() || !r.is_object() || !r.contains(x) || !r.contains(metric)) continue;
    if (!r[x].is_number() || !r[metric].is_number()) continue;
    out.push_back({r[x].get<double>(), r[metric].get<double>()});
  }
  return out;
}

// At most kMaxPoints points: the means of consecutive equal-sized buckets.
std::vector<std::pair<double, double>> bucket(const std::vector<std::pair<double, double>>& v) {
  if (v.size() <= kMaxPoints) return v;
  std::vector<std::pair<double, double>> out;
  for (size_t b = 0; b < kMaxPoints; ++b) {
    const size_t lo = b * v.size() / kMaxPoints, hi = (b + 1) * v.size() / kMaxPoints;
    double x = 0, y = 0;
    for (size_t i = lo; i < hi; ++i) x += v[i].first, y += v[i].second;
    out.push_back({x / static_cast<double>(hi - lo), y / static_cast<double>(hi - lo)});
  }
  return out;
}

}  // namespace

std::vector<Series> curve_series(const Suite& s, const Fig& f, const nlohmann::json& collected, const std::string& dir) {
  const std::vector<std::string> models = f.models.empty() ? std::vector<std::string>{"dense"} : f.models;
  std::vector<Series> out;
  for (const auto& cell : collected["cells"]) {
    if (!selected(f, cell) || (!f.cell.empty() && cell["name"] != f.cell)) continue;
    const RunDir run((fs::path(dir) / cell["dir"].get<std::string>()).string());
    std::string labels;
    for (const auto& a : s.axes)
      if (!f.where.count(a.name)) labels += (labels.empty() ? "" : ", ") + a.name + "=" + label_of(cell, a.name);
    for (const auto& m : models) {
      const auto points = bucket(read_log((fs::path(log_dir(run, m)) / "metrics.jsonl").string(), f.x, f.metric));
      if (points.empty()) continue;
      out.push_back({m + (labels.empty() ? "" : " (" + labels + ")"), points});
    }
  }
  return out;
}

}  // namespace cbtm::suite_figures
