// Gathering a suite's cells and rendering its tables; see suite_results.h.
#include "cbtm/suite/suite_results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/pipeline/run_dir.h"
#include "cbtm/version.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

std::string num(double v, const char* f = "%.4f") {
  if (!std::isfinite(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

double dense_ppl(const nlohmann::json& results) {
  for (const auto& m : results.at("models"))
    if (m.value("role", "") == "dense") return m["ppl"].get<double>();
  return std::numeric_limits<double>::quiet_NaN();
}

// Tokens and FLOPs (paper A.2) of a stage's record; flops null when the record predates them.
nlohmann::json stage_cost(const nlohmann::json& rec) {
  const nlohmann::json& s = rec.is_null() ? rec : rec["summary"];
  nlohmann::json out = {{"tokens", nullptr}, {"flops", nullptr}};
  if (s.is_object()) {
    if (s.contains("tokens")) out["tokens"] = s["tokens"];
    if (s.contains("flops")) out["flops"] = s["flops"];
  }
  return out;
}

// What training a cell's models cost: the seed, the k experts together, each baseline.
nlohmann::json training_cost(const RunDir& run, int k, const nlohmann::json& results) {
  nlohmann::json t;
  t["seed"] = stage_cost(run.record("seed"));
  double tokens = 0, flops = 0;
  bool known = k > 0;
  for (int j = 0; j < k; ++j) {
    const nlohmann::json c = stage_cost(run.record(expert_stage(j)));
    if (!c["flops"].is_number() || !c["tokens"].is_number()) known = false;
    else {
      tokens += c["tokens"].get<double>();
      flops += c["flops"].get<double>();
    }
  }
  t["experts"] = known ? nlohmann::json{{"tokens", tokens}, {"flops", flops}} : nlohmann::json{{"tokens", nullptr}, {"flops", nullptr}};
  t["baselines"] = nlohmann::json::object();
  for (const auto& m : results["models"])
    if (m.value("role", "") == "dense" || m.value("role", "") == "baseline") {
      const std::string name = m["name"].get<std::string>();
      t["baselines"][name] = stage_cost(run.record("baseline-" + name));
    }
  return t;
}

double flops_of(const nlohmann::json& cost) {
  return cost.is_object() && cost["flops"].is_number() ? cost["flops"].get<double>() : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

double cell_flops(const nlohmann::json& cell, const std::string& model, bool include_seed) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (cell.value("status", "") != "finished" || !cell.contains("train")) return nan;
  const auto& t = cell["train"];
  const double seed = include_seed ? flops_of(t["seed"]) : 0.0;
  std::string role;
  for (const auto& m : cell["results"]["models"])
    if (m["name"] == model || ((model == "dense" || model == "oracle") && m.value("role", "") == model)) role = m.value("role", "");
  if (role == "ensemble" || role == "oracle" || role == "expert") return flops_of(t["experts"]) + seed;
  if (role == "seed") return include_seed ? seed : 0.0;
  if (role == "dense" || role == "baseline") {
    for (const auto& m : cell["results"]["models"])
      if (m["name"] == model || (model == "dense" && m.value("role", "") == "dense"))
        return flops_of(t["baselines"].value(m["name"].get<std::string>(), nlohmann::json())) + seed;
  }
  if (model == "dense" && cell.contains("dense") && cell["dense"].contains("flops") && cell["dense"]["flops"].is_number())
    return cell["dense"]["flops"].get<double>() + seed;
  return nan;
}

nlohmann::json collect_suite_results(const Suite& suite, const std::vector<SuiteCell>& cells, const std::string& dir,
                                     const std::vector<std::pair<std::string, std::string>>& failed) {
  nlohmann::json out;
  out["format"] = "cbtm-suite-results";
  out["format_version"] = 1;
  out["cbtm_version"] = kVersion;
  out["suite"] = suite.file;
  out["base"] = suite.base;
  out["suite_yaml"] = YAML::Dump(suite.tree);
  out["axes"] = nlohmann::json::array();
  for (const auto& a : suite.axes) out["axes"].push_back({{"name", a.name}, {"key", a.key}, {"labels", a.labels}});
  if (suite.ensemble_grid.IsMap()) {  // the grid's ensembles: their own tables, not the wide one
    out["grid_models"] = nlohmann::json::array();
    const YAML::Node grid = suite.grid_ensembles(YAML::Node(), 0);
    for (auto it = grid.begin(); it != grid.end(); ++it) out["grid_models"].push_back("c-btm " + it->first.as<std::string>());
  }
  out["cells"] = nlohmann::json::array();
  for (const auto& c : cells) {
    nlohmann::json cell;
    cell["name"] = c.name;
    cell["dir"] = "cells/" + c.name;
    cell["labels"] = nlohmann::json::object();
    for (size_t a = 0; a < suite.axes.size(); ++a) cell["labels"][suite.axes[a].name] = c.labels[a];
    cell["overrides"] = c.overrides;
    const RunDir run((fs::path(dir) / "cells" / c.name).string());
    cell["status"] = "pending";
    for (const auto& [name, why] : failed)
      if (name == c.name) {
        cell["status"] = "failed";
        cell["error"] = why;
      }
    if (cell["status"] == "pending" && fs::exists(run.results()) && !run.record("eval").is_null()) {
      nlohmann::json r;
      try {
        r = nlohmann::json::parse(read_file(run.results()));
      } catch (const nlohmann::json::exception& e) {
        throw Error(run.results() + ": not valid JSON (" + e.what() + "); delete it and rerun the suite to redo the cell's eval");
      }
      if (r.value("format", "") != "cbtm-results")
        throw Error(run.results() + ": not a cbtm results file (format '" + r.value("format", "") + "')");
      r.erase("config");  // the cell's resolved config stays in its own directory
      cell["status"] = "finished";
      cell["results"] = r;
      const nlohmann::json assign = run.record("assign");
      if (!assign.is_null() && assign.contains("summary")) cell["assign"] = assign["summary"];
      cell["train"] = training_cost(run, r.value("k", 0), r);
      const nlohmann::json cluster = run.record("cluster");
      if (!cluster.is_null() && cluster.contains("summary") && cluster["summary"].contains("top_terms"))
        cell["top_terms"] = cluster["summary"]["top_terms"];
    }
    out["cells"].push_back(cell);
  }
  // dense_from: a cell without a dense model compares against its reference cell's c-btm all.
  if (!suite.dense_from.empty()) {
    out["dense_from"] = suite.dense_from;
    for (auto& cell : out["cells"]) {
      if (cell["status"] != "finished" || std::isfinite(dense_ppl(cell["results"]))) continue;
      nlohmann::json want = cell["labels"];
      for (const auto& [axis, label] : suite.dense_from) want[axis] = label;
      for (const auto& ref : out["cells"])
        if (ref["labels"] == want && ref["status"] == "finished") {
          // Its "c-btm all"; a one-expert reference without that ensemble (e.g. only an
          // ensemble_grid's names) is its single expert, the oracle.
          std::string model = "c-btm all";
          if (!std::isfinite(cell_ppl(ref, model)) && ref["results"].value("k", 0) == 1) model = "oracle";
          const double ppl = cell_ppl(ref, model);
          if (!std::isfinite(ppl)) continue;
          cell["dense"] = {{"from", ref["name"]}, {"model", model}, {"ppl", ppl}};
          const double flops = cell_flops(ref, model, false);
          if (std::isfinite(flops)) cell["dense"]["flops"] = flops;
        }
    }
  }
  return out;
}

double cell_ppl(const nlohmann::json& cell, const std::string& model) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (cell.value("status", "") != "finished") return nan;
  for (const auto& m : cell["results"]["models"])
    if (m["name"] == model || ((model == "dense" || model == "oracle") && m.value("role", "") == model))
      return m["ppl"].get<double>();
  if (model == "dense" && cell.contains("dense")) return cell["dense"]["ppl"].get<double>();
  return nan;
}

std::string suite_csv(const nlohmann::json& c) {
  std::string out = "cell";
  for (const auto& a : c["axes"]) out += "," + csv_field(a["name"].get<std::string>());
  out += ",model,role,ppl,bits_per_byte,vs_dense,experts_per_token,expert_token_fraction,k,branch_tokens,tokens_per_expert,"
         "train_flops,seed_flops\n";
  for (const auto& cell : c["cells"]) {
    if (cell["status"] != "finished") continue;
    const auto& r = cell["results"];
    const double dense = cell_ppl(cell, "dense");
    for (const auto& m : r["models"]) {
      std::string line = csv_field(cell["name"].get<std::string>());
      for (const auto& a : c["axes"]) line += "," + csv_field(cell["labels"][a["name"].get<std::string>()].get<std::string>());
      const double ppl = m["ppl"].get<double>();
      line += "," + csv_field(m["name"].get<std::string>()) + "," + m.value("role", "") + "," + num(ppl) + "," +
              num(m.value("bits_per_byte", std::nan(""))) + "," + num(ppl / dense) + "," +
              num(m.value("mean_token_experts", 1.0), "%.3f") + "," +
              num(m.contains("expert_token_fraction") ? m["expert_token_fraction"].get<double>() : std::nan(""), "%.3f") + "," +
              std::to_string(r.value("k", 0)) + "," +
              std::to_string(r.value("branch_tokens", 0)) + "," + std::to_string(r.value("tokens_per_expert", 0)) + "," +
              num(cell_flops(cell, m["name"].get<std::string>(), false), "%.6g") + "," +
              num(cell.contains("train") ? flops_of(cell["train"]["seed"]) : std::nan(""), "%.6g");
      out += line + "\n";
    }
  }
  return out;
}

std::string suite_markdown(const nlohmann::json& c) {
  std::vector<std::string> models;
  const nlohmann::json grid = c.value("grid_models", nlohmann::json::array());
  for (const auto& cell : c["cells"]) {
    if (cell["status"] != "finished") continue;
    for (const auto& m : cell["results"]["models"]) {
      if (m.value("role", "") == "expert") continue;
      const std::string n = m["name"].get<std::string>();
      if (std::find(grid.begin(), grid.end(), n) != grid.end()) continue;
      if (std::find(models.begin(), models.end(), n) == models.end()) models.push_back(n);
    }
  }
  std::string head = "|", rule = "|";
  for (const auto& a : c["axes"]) {
    head += " " + a["name"].get<std::string>() + " |";
    rule += "---|";
  }
  if (c["axes"].empty()) {
    head += " cell |";
    rule += "---|";
  }
  for (const auto& m : models) {
    head += " " + m + " |";
    rule += "---:|";
  }
  std::string out = "Held-out perplexity per cell (lower is better; `vs dense` ratios and each ensemble's compute, `expert_token_fraction`, are in results.csv).\n\n" + head + "\n" + rule + "\n";
  std::vector<std::string> other;
  for (const auto& cell : c["cells"]) {
    if (cell["status"] != "finished") {
      other.push_back("- `" + cell["name"].get<std::string>() + "`: " + cell["status"].get<std::string>() +
                      (cell.contains("error") ? " (" + cell["error"].get<std::string>().substr(0, 200) + ")" : ""));
      continue;
    }
    std::string line = "|";
    for (const auto& a : c["axes"]) line += " " + cell["labels"][a["name"].get<std::string>()].get<std::string>() + " |";
    if (c["axes"].empty()) line += " " + cell["name"].get<std::string>() + " |";
    for (const auto& m : models) line += " " + num(cell_ppl(cell, m), "%.2f") + " |";
    out += line + "\n";
  }
  if (!grid.empty())
    out += "\nThe ensemble_grid's " + std::to_string(grid.size()) +
           " ensembles are in the tables below and in results.csv, not in this table.\n";
  if (c.contains("dense_from")) {
    std::string ref;
    for (const auto& [axis, label] : c["dense_from"].items()) ref += (ref.empty() ? "" : ",") + axis + "=" + label.get<std::string>();
    out += "\nCells without a dense model take the `c-btm all` of the cell with " + ref +
           " (its single expert when it has one expert and no such ensemble) and their own labels on the other"
           " axes as their dense model in `vs_dense`.\n";
  }
  if (!other.empty()) {
    out += "\nNot finished:\n";
    for (const auto& o : other) out += o + "\n";
  }
  return out;
}

std::string suite_terms_markdown(const nlohmann::json& c, int terms) {
  std::string out = "Top terms of every cluster centre, per cell (the embedder's vocabulary through the SVD; paper A.1).\n";
  for (const auto& cell : c["cells"]) {
    if (cell["status"] != "finished" || !cell.contains("top_terms")) continue;
    out += "\n## " + cell["name"].get<std::string>() + "\n\n| cluster | documents | top terms |\n|---:|---:|---|\n";
    const nlohmann::json sizes = cell.contains("assign") && cell["assign"].contains("clusters") ? cell["assign"]["clusters"]
                                                                                                : nlohmann::json::array();
    for (size_t j = 0; j < cell["top_terms"].size(); ++j) {
      std::string docs;
      for (const auto& row : sizes)
        if (row.value("cluster", -1) == static_cast<int>(j)) docs = std::to_string(row.value("docs", 0));
      std::string list;
      const auto& row = cell["top_terms"][j];
      for (size_t t = 0; t < row.size() && static_cast<int>(t) < terms; ++t)
        list += (t ? ", " : "") + row[t][0].get<std::string>();
      out += "| " + std::to_string(j) + " | " + docs + " | " + (list.empty() ? "(no terms: the embedder has no vocabulary)" : list) + " |\n";
    }
  }
  return out;
}

}  // namespace cbtm
