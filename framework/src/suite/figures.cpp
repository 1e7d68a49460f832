// A suite's figures with gnuplot; see figures.h.
#include "cbtm/suite/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "../pipeline/child_process.h"
#include "cbtm/config_node.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/suite/suite_results.h"
#include "figure_spec.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace suite_figures {
namespace {
const std::set<std::string> kKeys = {"name", "type", "title", "y", "logx", "logy", "where", "x", "series", "of", "models",
                                     "data", "cell", "rows", "cols", "reference", "include_seed", "extrapolate",
                                     "metric"};
const std::set<std::string> kTypes = {"line", "best", "heatmap", "sizes", "table", "speedup", "curve"};
}  // namespace

Fig parse_fig(const Suite& s, size_t i) {
  const ConfigNode n{s.figures[i], "figures." + std::to_string(i), s.file};
  const std::string at = n.where() + ": " + n.path;
  if (!n.node.IsMap()) throw Error(at + ": expected a map (name, type, ...)");
  for (auto it = n.node.begin(); it != n.node.end(); ++it)
    if (!kKeys.count(it->first.as<std::string>()))
      throw Error(n.where(it->first) + ": " + n.path + ": unknown key '" + it->first.as<std::string>() + "'");
  Fig f;
  auto str = [&](const char* k, std::string& out) {
    if (n.node[k]) out = n.node[k].as<std::string>();
  };
  str("name", f.name);
  str("type", f.type);
  str("title", f.title);
  str("y", f.y);
  str("x", f.x);
  str("series", f.series);
  str("of", f.of);
  str("data", f.data);
  str("cell", f.cell);
  str("rows", f.rows);
  str("cols", f.cols);
  str("reference", f.reference);
  str("metric", f.metric);
  try {
    if (n.node["logx"]) f.logx = n.node["logx"].as<bool>();
    if (n.node["logy"]) f.logy = n.node["logy"].as<bool>();
    if (n.node["include_seed"]) f.include_seed = n.node["include_seed"].as<bool>();
    if (n.node["extrapolate"]) f.extrapolate = n.node["extrapolate"].as<bool>();
    if (n.node["models"]) f.models = n.node["models"].as<std::vector<std::string>>();
    if (n.node["where"]) f.where = n.node["where"].as<std::map<std::string, std::string>>();
  } catch (const YAML::Exception& e) {
    throw Error(at + ": " + e.msg +
                " (logx/logy/include_seed/extrapolate: true|false, models: a list of names, where: {axis: label})");
  }
  if (f.name.empty()) throw Error(at + ": name: required");
  for (char c : f.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      throw Error(at + ".name: '" + f.name + "' may hold only letters, digits and - _ .");
  if (f.type.empty()) f.type = "line";
  if (!kTypes.count(f.type))
    throw Error(at + ".type: '" + f.type + "' is not one of line, best, heatmap, sizes, table, speedup, curve");
  if (f.y != "ppl" && f.y != "vs_dense" && f.y != "bits_per_byte")
    throw Error(at + ".y: '" + f.y + "' is not one of ppl, vs_dense, bits_per_byte");
  auto need_axis = [&](const std::string& key, const std::string& name, bool numeric) {
    if (name.empty()) throw Error(at + "." + key + ": required for a " + f.type + " figure (an axis name)");
    const int a = s.axis(name);
    if (a < 0) throw Error(at + "." + key + ": '" + name + "' is not an axis of the suite");
    if (numeric && s.axes[a].numbers.empty())
      throw Error(at + "." + key + ": axis '" + name + "' has labels that are not numbers");
  };
  // x: flops (no axis of that name) plots against each model's training FLOPs (paper A.2).
  const bool x_flops = f.x == "flops" && s.axis("flops") < 0;
  if (f.type == "line" && !x_flops) need_axis("x", f.x, false);
  if (f.type == "best" || f.type == "speedup") need_axis("x", f.x, false);
  if ((f.type == "line" || f.type == "speedup") && f.series != "model") need_axis("series", f.series, false);
  if (f.type == "table") {
    if (f.rows.empty() || f.cols.empty())
      throw Error(at + ": a table needs rows and cols (each an axis or a router option such as temperature, top_k)");
    if (f.rows == f.cols) throw Error(at + ".cols: must differ from rows");
  }
  if (f.type == "curve") {
    if (f.x.empty()) f.x = "tokens";
    if (f.x != "tokens" && f.x != "step") throw Error(at + ".x: a curve's x is tokens or step, not '" + f.x + "'");
    if (f.metric.empty()) throw Error(at + ".metric: required (a metrics.jsonl key: loss, grad_norm, lr, moe_dropped, ...)");
  }
  if (f.type == "speedup" && f.reference.empty()) throw Error(at + ".reference: must name a model (default dense)");
  if (f.type == "best") {
    need_axis("of", f.of, true);
    if (f.of == f.x) throw Error(at + ".of: must differ from x");
  }
  if (f.type == "heatmap" && f.data != "specialisation" && f.data != "overlap")
    throw Error(at + ".data: '" + f.data + "' is not one of specialisation, overlap");
  for (const auto& [axis, label] : f.where) {
    const int a = s.axis(axis);
    if (a < 0) throw Error(at + ".where: '" + axis + "' is not an axis of the suite");
    const auto& ls = s.axes[a].labels;
    if (std::find(ls.begin(), ls.end(), label) == ls.end())
      throw Error(at + ".where." + axis + ": '" + label + "' is not one of the axis' labels");
  }
  if (f.title.empty()) f.title = f.name;
  return f;
}

std::string label_of(const nlohmann::json& cell, const std::string& axis) {
  return cell["labels"][axis].get<std::string>();
}

bool selected(const Fig& f, const nlohmann::json& cell) {
  if (cell.value("status", "") != "finished") return false;
  for (const auto& [axis, label] : f.where)
    if (label_of(cell, axis) != label) return false;
  return true;
}

double model_value(const nlohmann::json& cell, const std::string& model, const std::string& y) {
  const double kNaN = std::numeric_limits<double>::quiet_NaN();
  const double ppl = cell_ppl(cell, model);
  if (y == "ppl" || !std::isfinite(ppl)) return ppl;
  if (y == "vs_dense") return ppl / cell_ppl(cell, "dense");
  for (const auto& m : cell["results"]["models"])
    if (m["name"] == model || m.value("role", "") == model) return m.value("bits_per_byte", kNaN);
  return kNaN;
}

std::string fmt(double v) {
  if (!std::isfinite(v)) return "NaN";
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string> default_models(const nlohmann::json& collected) {
  std::vector<std::string> out;
  for (const auto& cell : collected["cells"])
    if (cell.value("status", "") == "finished")
      for (const auto& m : cell["results"]["models"]) {
        const std::string n = m["name"].get<std::string>();
        if (m.value("role", "") != "expert" && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
      }
  return out;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? '\'' : c;
  return out + "\"";
}


/// x position of a label on an axis: its number, or its index (categorical axes).
double x_of(const SuiteAxis& a, const std::string& label) {
  const size_t i = static_cast<size_t>(std::find(a.labels.begin(), a.labels.end(), label) - a.labels.begin());
  return a.numbers.empty() ? static_cast<double>(i) : a.numbers[i];
}

/// A tick label: numbers of 1000 and more in SI form (500k, 1M, 2.5G), others as written.
std::string tick_label(const std::string& label, double v) {
  const double a = std::fabs(v);
  const char* unit = a >= 1e9 ? "G" : a >= 1e6 ? "M" : a >= 1e3 ? "k" : "";
  if (!*unit) return label;
  char b[32];
  std::snprintf(b, sizeof b, "%g%s", v / (a >= 1e9 ? 1e9 : a >= 1e6 ? 1e6 : 1e3), unit);
  return b;
}

std::string xtics(const SuiteAxis& a) {
  if (!a.numbers.empty()) {
    std::string t = "set xtics (";
    for (size_t i = 0; i < a.labels.size(); ++i)
      t += (i ? ", " : "") + quote(tick_label(a.labels[i], a.numbers[i])) + " " + fmt(a.numbers[i]);
    return t + ")\n";
  }
  std::string t = "set xtics (";
  for (size_t i = 0; i < a.labels.size(); ++i) t += (i ? ", " : "") + quote(a.labels[i]) + " " + std::to_string(i);
  return t + ")\nset xrange [-0.5:" + std::to_string(a.labels.size() - 0.5) + "]\n";
}

std::string ylabel(const std::string& y) {
  if (y == "vs_dense") return "perplexity / dense perplexity";
  if (y == "bits_per_byte") return "bits per byte";
  return "held-out perplexity";
}

/// Axes that vary freely in a figure (not x, not `also`, not fixed by where).
std::vector<std::string> free_axes(const Suite& s, const Fig& f, const std::string& also) {
  std::vector<std::string> out;
  for (const auto& a : s.axes)
    if (a.name != f.x && a.name != also && !f.where.count(a.name)) out.push_back(a.name);
  return out;
}

std::vector<Series> line_series(const Suite& s, const Fig& f, const nlohmann::json& collected, bool best) {
  const std::vector<std::string> models = f.models.empty() ? default_models(collected) : f.models;
  const bool x_flops = f.x == "flops" && s.axis("flops") < 0;
  const SuiteAxis* xa = x_flops ? nullptr : &s.axes[s.axis(f.x)];
  const std::string group_axis = best ? f.of : (f.series == "model" ? "" : f.series);
  // x: flops -- the cells of a series differ along the other axes (e.g. tokens): one line
  // through them all, not one line per label.
  const auto others = x_flops ? std::vector<std::string>{} : free_axes(s, f, group_axis);
  std::map<std::string, Series> by;
  std::vector<std::string> order;
  // best: (series title, x) -> (lowest y, label of `of`)
  std::map<std::pair<std::string, double>, std::pair<double, double>> lowest;
  for (const auto& cell : collected["cells"]) {
    if (!selected(f, cell)) continue;
    for (const auto& m : models) {
      const double y = model_value(cell, m, f.y);
      if (!std::isfinite(y)) continue;
      std::string title;
      if (!best && !group_axis.empty()) title = group_axis + "=" + label_of(cell, group_axis);
      for (const auto& o : others) title += (title.empty() ? "" : ", ") + o + "=" + label_of(cell, o);
      if (models.size() > 1 || f.series == "model" || best) title = m + (title.empty() ? "" : " (" + title + ")");
      if (!by.count(title)) {
        by[title].title = title;
        order.push_back(title);
      }
      const double x = x_flops ? cell_flops(cell, m, f.include_seed) : x_of(*xa, label_of(cell, f.x));
      if (!std::isfinite(x)) continue;
      if (best) {
        const SuiteAxis& oa = s.axes[s.axis(f.of)];
        const double of = x_of(oa, label_of(cell, f.of));
        auto it = lowest.find({title, x});
        if (it == lowest.end() || y < it->second.first) lowest[{title, x}] = {y, of};
      } else {
        by[title].points.push_back({x, y});
      }
    }
  }
  if (best)
    for (const auto& [key, v] : lowest) by[key.first].points.push_back({key.second, v.second});
  std::vector<Series> out;
  for (const auto& t : order) {
    Series se = by[t];
    std::sort(se.points.begin(), se.points.end());
    if (!se.points.empty()) out.push_back(se);
  }
  return out;
}

struct Matrix2 {
  std::vector<std::string> rows, cols;
  std::vector<std::vector<double>> v;
};

bool heatmap_data(const Fig& f, const nlohmann::json& cell, Matrix2& m) {
  if (f.data == "specialisation") {
    if (!cell["results"].contains("specialisation")) return false;
    const auto& sp = cell["results"]["specialisation"];
    const size_t K = sp["ratio"].size();
    for (size_t c = 0; c < K; ++c) {
      m.rows.push_back("cluster " + std::to_string(c));
      m.cols.push_back("expert " + std::to_string(c));
      std::vector<double> row;
      for (size_t j = 0; j < K; ++j) row.push_back(sp["ratio"][c][j].is_null() ? kNaN : sp["ratio"][c][j].get<double>());
      m.v.push_back(row);
    }
    return true;
  }
  if (!cell.contains("assign") || !cell["assign"].contains("domain_overlap")) return false;
  const auto& ov = cell["assign"]["domain_overlap"];
  size_t K = 0;
  for (auto it = ov.begin(); it != ov.end(); ++it) {
    const auto counts = it.value().get<std::vector<int64_t>>();
    K = std::max(K, counts.size());
    double total = 0;
    for (auto c : counts) total += static_cast<double>(c);
    std::vector<double> row;
    for (auto c : counts) row.push_back(total > 0 ? static_cast<double>(c) / total : kNaN);
    m.rows.push_back(it.key());
    m.v.push_back(row);
  }
  for (size_t j = 0; j < K; ++j) m.cols.push_back("cluster " + std::to_string(j));
  return !m.rows.empty();
}

FigureOutput render(const std::string& dir, const std::string& name, const std::string& data,
                    const std::string& body, const std::string& gnuplot) {
  FigureOutput out;
  out.name = name;
  out.data = (fs::path(dir) / (name + ".dat")).string();
  out.script = (fs::path(dir) / (name + ".gp")).string();
  const std::string svg = (fs::path(dir) / (name + ".svg")).string();
  const std::string script =
      "# written by cbtm suite; render with: gnuplot " + name + ".gp (in this directory)\n"
      "set terminal svg size 760,480 dynamic noenhanced font 'sans,12' background rgb 'white'\n"
      "set output " + quote(name + ".svg.tmp") + "\nset datafile separator '\\t'\n" + body;
  write_file_atomic(out.data, data);
  write_file_atomic(out.script, script);
  if (gnuplot.empty()) {
    out.note = "rendering skipped";
    return out;
  }
  const detail::CommandResult r = detail::run_command({"sh", "-c", "cd " + detail::shell_quote(dir) + " && " +
                                                                        detail::shell_quote(gnuplot) + " " +
                                                                        detail::shell_quote(name + ".gp")});
  const std::string tmp = svg + ".tmp";
  if (r.status != 0 || !fs::exists(tmp)) {
    std::error_code ec;
    fs::remove(tmp, ec);
    out.note = r.status == 127 ? gnuplot + " not found (Debian: apt install gnuplot-nox); the .dat and .gp files are written"
                               : gnuplot + " failed (exit status " + std::to_string(r.status) + "): " + r.output.substr(0, 400);
    return out;
  }
  fs::rename(tmp, svg);
  out.svg = svg;
  return out;
}

// gnuplot's plot command: one `style` line per series, from block i of NAME.dat.
std::string plot_command(const std::string& name, const std::vector<Series>& series, const std::string& style) {
  std::string gp = "plot ";
  for (size_t i = 0; i < series.size(); ++i)
    gp += std::string(i ? ", \\\n     " : "") + quote(name + ".dat") + " index " + std::to_string(i) + " using 1:2 with " +
          style + " title " + quote(series[i].title);
  return gp + "\n";
}

// xa null: x is training FLOPs.
std::string lines_script(const Fig& f, const std::vector<Series>& series, const SuiteAxis* xa, const std::string& ylab,
                         const std::string& name, const std::string& extra = "") {
  const std::string xlab = xa ? xa->name : std::string(f.include_seed ? "training FLOPs, seed included (paper A.2)"
                                                                      : "training FLOPs after branching (paper A.2)");
  std::string gp = "set title " + quote(f.title) + "\nset xlabel " + quote(xlab) + "\nset ylabel " + quote(ylab) +
                   "\nset key outside right top\nset grid\n" + (xa ? xtics(*xa) : "set format x '%.1te%T'\n");
  if (f.logx && (!xa || !xa->numbers.empty())) gp += "set logscale x\n";
  if (f.logy) gp += "set logscale y\n";
  return gp + extra + plot_command(name, series, "linespoints lw 2 pt 7");
}

std::string series_data(const std::vector<Series>& series) {
  std::string d;
  for (size_t i = 0; i < series.size(); ++i) {
    d += (i ? "\n\n" : "") + std::string("# ") + series[i].title + "\n";
    for (const auto& [x, y] : series[i].points) d += fmt(x) + "\t" + fmt(y) + "\n";
  }
  return d;
}

}  // namespace
}  // namespace suite_figures

using namespace suite_figures;

void check_figures(const Suite& suite) {
  std::set<std::string> names;
  for (size_t i = 0; i < suite.figures.size(); ++i) {
    const Fig f = parse_fig(suite, i);
    if (!names.insert(f.name).second)
      throw Error(suite.file + ": figures." + std::to_string(i) + ": a second figure named '" + f.name + "'");
  }
}

std::vector<FigureOutput> draw_figures(const Suite& suite, const nlohmann::json& collected, const std::string& dir,
                                       const std::string& gnuplot) {
  check_figures(suite);
  const std::string figdir = (fs::path(dir) / "figures").string();
  make_dirs(figdir);
  std::vector<FigureOutput> out;
  for (size_t i = 0; i < suite.figures.size(); ++i) {
    const Fig f = parse_fig(suite, i);
    if (f.type == "line" || f.type == "best") {
      const auto series = line_series(suite, f, collected, f.type == "best");
      if (series.empty()) {
        out.push_back({f.name, "", "", "", "no finished cell has data for it yet", ""});
        continue;
      }
      const SuiteAxis* xa = f.x == "flops" && suite.axis("flops") < 0 ? nullptr : &suite.axes[suite.axis(f.x)];
      const std::string ylab = f.type == "best" ? f.of + " with the lowest " + ylabel(f.y) : ylabel(f.y);
      out.push_back(render(figdir, f.name, series_data(series), lines_script(f, series, xa, ylab, f.name), gnuplot));
    } else if (f.type == "table" || f.type == "speedup") {
      const Table t = f.type == "table" ? ensemble_table(suite, f, collected) : speedup_table(suite, f, collected);
      if (t.markdown.empty()) {
        out.push_back({f.name, "", "", "", "no finished cell has data for it yet", ""});
        continue;
      }
      const std::string md = "### " + f.title + "\n\n" + t.markdown;
      write_file_atomic((fs::path(figdir) / (f.name + ".md")).string(), md);
      FigureOutput o;
      if (!t.series.empty()) {
        const SuiteAxis& xa = suite.axes[suite.axis(f.x)];
        o = render(figdir, f.name, series_data(t.series),
                   lines_script(f, t.series, &xa, "speed-up: " + f.reference + " FLOPs / model FLOPs at equal perplexity",
                                f.name, "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2\n"),
                   gnuplot);
      } else {
        o.name = f.name;
      }
      o.markdown = md;
      out.push_back(o);
    } else if (f.type == "curve") {
      const auto series = curve_series(suite, f, collected, dir);
      if (series.empty()) {
        out.push_back({f.name, "", "", "", "no finished cell has a training log for it", ""});
        continue;
      }
      std::string gp = "set title " + quote(f.title) + "\nset xlabel " + quote(f.x == "step" ? "step" : "training tokens") +
                       "\nset ylabel " + quote(f.metric) + "\nset key outside right top\nset grid\n" +
                       (f.x == "step" ? "" : "set format x '%.1s%c'\n");
      if (f.logx) gp += "set logscale x\n";
      if (f.logy) gp += "set logscale y\n";
      out.push_back(render(figdir, f.name, series_data(series), gp + plot_command(f.name, series, "lines lw 2"), gnuplot));
    } else if (f.type == "sizes") {
      std::vector<Series> series;
      for (const auto& cell : collected["cells"]) {
        if (!selected(f, cell) || !cell.contains("assign") || !cell["assign"].contains("clusters")) continue;
        std::vector<double> sizes;
        for (const auto& c : cell["assign"]["clusters"]) sizes.push_back(c["docs"].get<double>());
        std::sort(sizes.rbegin(), sizes.rend());
        Series se{cell["name"].get<std::string>(), {}};
        for (size_t j = 0; j < sizes.size(); ++j) se.points.push_back({static_cast<double>(j + 1), sizes[j]});
        series.push_back(se);
      }
      if (series.empty()) {
        out.push_back({f.name, "", "", "", "no finished cell has cluster sizes yet", ""});
        continue;
      }
      std::string gp = "set title " + quote(f.title) +
                       "\nset xlabel 'cluster rank (largest first)'\nset ylabel 'training documents'\n"
                       "set key outside right top\nset grid\n";
      if (f.logy) gp += "set logscale y\n";
      out.push_back(render(figdir, f.name, series_data(series), gp + plot_command(f.name, series, "linespoints lw 2 pt 7"),
                           gnuplot));
    } else {  // heatmap
      bool any = false;
      for (const auto& cell : collected["cells"]) {
        if (!selected(f, cell) || (!f.cell.empty() && cell["name"] != f.cell)) continue;
        Matrix2 m;
        if (!heatmap_data(f, cell, m)) continue;
        any = true;
        const std::string name = f.cell.empty() ? f.name + "-" + cell["name"].get<std::string>() : f.name;
        std::string d;
        for (size_t r = 0; r < m.rows.size(); ++r)
          for (size_t c = 0; c < m.v[r].size(); ++c) d += std::to_string(c) + "\t" + std::to_string(r) + "\t" + fmt(m.v[r][c]) + "\n";
        std::string gp = "set title " + quote(f.title + " (" + cell["name"].get<std::string>() + ")") + "\n";
        gp += "set xtics (";
        for (size_t c = 0; c < m.cols.size(); ++c) gp += (c ? ", " : "") + quote(m.cols[c]) + " " + std::to_string(c);
        gp += ") rotate by 45 right\nset ytics (";
        for (size_t r = 0; r < m.rows.size(); ++r) gp += (r ? ", " : "") + quote(m.rows[r]) + " " + std::to_string(r);
        gp += ")\nset yrange [" + std::to_string(m.rows.size() - 0.5) + ":-0.5]\nset xrange [-0.5:" +
              std::to_string(m.cols.size() - 0.5) + "]\nset palette defined (0 'white', 1 '#2166ac')\n"
              "set cblabel " + quote(f.data == "specialisation" ? "ppl / ppl of the cluster's own expert" : "fraction of the domain's documents") +
              "\nunset key\nplot " + quote(name + ".dat") + " using 1:2:3 with image, '' using 1:2:(sprintf('%.2f', $3)) with labels\n";
        out.push_back(render(figdir, name, d, gp, gnuplot));
      }
      if (!any) out.push_back({f.name, "", "", "", "no finished cell has " + f.data + " data", ""});
    }
  }
  for (const auto& o : out) {
    if (!o.svg.empty()) spdlog::info("[suite] figure {} -> {}", o.name, o.svg);
    else if (!o.markdown.empty()) spdlog::info("[suite] table {} -> {}/{}.md", o.name, figdir, o.name);
    else spdlog::warn("[suite] figure {}: {}", o.name, o.note);
  }
  return out;
}

}  // namespace cbtm
