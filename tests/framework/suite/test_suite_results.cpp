// A suite's tables from fixture cells (results.json + stage records written by hand), and
// its figures' data: the line and best-of series checked against the fixture's numbers.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/suite/figures.h"
#include "cbtm/suite/suite.h"
#include "cbtm/suite/suite_results.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// A finished cell: results.json with dense, two ensembles and one expert alone; an eval and
/// an assign record (cluster sizes, overlap).
/// dense NaN: no dense model (a cell of a suite with dense_from).
void write_cell(const cbtm::test::TempDir& t, const std::string& name, int k, double dense, double all, double top1) {
  const std::string d = t / ("out/cells/" + name);
  json models = json::array();
  if (!std::isnan(dense))
    models.push_back({{"name", "dense"}, {"role", "dense"}, {"ppl", dense}, {"bits_per_byte", dense / 100}});
  models.push_back({{"name", "c-btm all"}, {"role", "ensemble"}, {"ppl", all}, {"bits_per_byte", all / 100},
                    {"mean_token_experts", static_cast<double>(k)}});
  models.push_back({{"name", "c-btm top1"}, {"role", "ensemble"}, {"ppl", top1}, {"bits_per_byte", top1 / 100},
                    {"mean_token_experts", 1.0}, {"expert_token_fraction", 0.625}});
  models.push_back({{"name", "expert 0 alone"}, {"role", "expert"}, {"ppl", 99.0}, {"bits_per_byte", 0.99}});
  json spec = {{"docs", json::array()}, {"ratio", json::array()}};
  for (int c = 0; c < k; ++c) {
    spec["docs"].push_back(10);
    json row = json::array();
    for (int j = 0; j < k; ++j) row.push_back(c == j ? 1.0 : 1.5 + c);
    spec["ratio"].push_back(row);
  }
  const json results = {{"format", "cbtm-results"}, {"format_version", 1}, {"k", k}, {"branch_tokens", 1000},
                        {"tokens_per_expert", 1000 / k}, {"models", models}, {"specialisation", spec},
                        {"config", "a: 1\n"}};
  cbtm::write_file_atomic(d + "/results.json", results.dump());
  cbtm::write_file_atomic(d + "/stages/eval.json", json{{"fingerprint", "x"}, {"run_id", "r"}}.dump());
  json clusters = json::array();
  for (int j = 0; j < k; ++j) clusters.push_back({{"cluster", j}, {"docs", 100 + 10 * j}});
  json overlap = {{"web", json::array()}, {"code", json::array()}};
  for (int j = 0; j < k; ++j) {
    overlap["web"].push_back(j == 0 ? 30 : 10);
    overlap["code"].push_back(j == 0 ? 0 : 5);
  }
  json terms = json::array();
  for (int j = 0; j < k; ++j) terms.push_back(json::array({json::array({"term" + std::to_string(j), 0.5}), json::array({"common", 0.25})}));
  cbtm::write_file_atomic(d + "/stages/cluster.json", json{{"summary", {{"top_terms", terms}}}}.dump());
  cbtm::write_file_atomic(d + "/stages/assign.json",
                          json{{"summary", {{"k", k}, {"clusters", clusters}, {"domain_overlap", overlap}}}}.dump());
}

cbtm::Suite suite(const cbtm::test::TempDir& t, const std::string& figures = "") {
  cbtm::test::write_text(t / "base.yaml", "seed: 1\n");
  return cbtm::Suite::parse(
      "base: base.yaml\naxes:\n  - {name: tokens, key: branch.tokens, values: [1000, 2000]}\n"
      "  - {name: k, key: clusterer.k, values: [2, 4]}\n" + figures,
      t / "suite.yaml");
}

/// "x\ty" lines of block `index` of a gnuplot data file.
std::vector<std::pair<double, double>> block(const std::string& dat, int index) {
  std::vector<std::pair<double, double>> out;
  int b = 0;
  size_t pos = 0;
  std::string prev = "x";
  while (pos < dat.size()) {
    const size_t nl = dat.find('\n', pos);
    const std::string line = dat.substr(pos, nl - pos);
    pos = nl == std::string::npos ? dat.size() : nl + 1;
    if (line.empty() && prev.empty()) ++b;
    prev = line;
    if (line.empty() || line[0] == '#' || b != index) continue;
    const size_t tab = line.find('\t');
    out.push_back({std::stod(line.substr(0, tab)), std::stod(line.substr(tab + 1))});
  }
  return out;
}

}  // namespace

TEST_CASE("suite results: finished, failed and pending cells - CSV and Markdown tables") {
  cbtm::test::TempDir t("suite-results");
  const cbtm::Suite s = suite(t);
  write_cell(t, "tokens=1000,k=2", 2, 50.0, 48.0, 52.0);
  write_cell(t, "tokens=2000,k=2", 2, 40.0, 37.0, 39.0);
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out", {{"tokens=2000,k=4", "expert-001 FAILED"}});
  CHECK(c["format"] == "cbtm-suite-results");
  REQUIRE(c["cells"].size() == 4);
  CHECK(c["cells"][0]["status"] == "finished");
  CHECK(c["cells"][1]["status"] == "pending");  // tokens=1000,k=4: nothing written
  CHECK(c["cells"][3]["status"] == "failed");
  CHECK(c["cells"][3]["error"] == "expert-001 FAILED");
  CHECK_FALSE(c["cells"][0]["results"].contains("config"));
  CHECK(c["cells"][0]["labels"]["k"] == "2");
  CHECK(cbtm::cell_ppl(c["cells"][2], "c-btm top1") == 39.0);
  CHECK(cbtm::cell_ppl(c["cells"][2], "dense") == 40.0);
  CHECK(std::isnan(cbtm::cell_ppl(c["cells"][2], "nope")));
  CHECK(std::isnan(cbtm::cell_ppl(c["cells"][1], "dense")));

  const std::string csv = cbtm::suite_csv(c);
  CHECK(csv.substr(0, csv.find('\n')) ==
        "cell,tokens,k,model,role,ppl,bits_per_byte,vs_dense,experts_per_token,expert_token_fraction,k,branch_tokens,"
        "tokens_per_expert,train_flops,seed_flops");
  // 2 finished cells x 4 models, plus the header; the cell name holds commas, so it is quoted.
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 9);
  // (no stage records with FLOPs in these cells: the FLOPs columns are empty)
  CHECK(csv.find("\"tokens=2000,k=2\",2000,2,c-btm all,ensemble,37.0000,0.3700,0.9250,2.000,,2,1000,500,,\n") !=
        std::string::npos);
  // the compute an ensemble used: expert-token fraction of running every expert everywhere
  CHECK(csv.find("\"tokens=2000,k=2\",2000,2,c-btm top1,ensemble,39.0000,0.3900,0.9750,1.000,0.625,2,1000,500,,\n") !=
        std::string::npos);
  CHECK(csv.find("\"tokens=1000,k=2\",1000,2,dense,dense,50.0000,0.5000,1.0000,1.000,,2,1000,500,,\n") != std::string::npos);

  const std::string md = cbtm::suite_markdown(c);
  CHECK(md.find("| tokens | k | dense | c-btm all | c-btm top1 |") != std::string::npos);
  CHECK(md.find("| 2000 | 2 | 40.00 | 37.00 | 39.00 |") != std::string::npos);
  CHECK(md.find("expert 0 alone") == std::string::npos);  // single experts stay in the CSV
  CHECK(md.find("- `tokens=2000,k=4`: failed (expert-001 FAILED)") != std::string::npos);
  CHECK(md.find("- `tokens=1000,k=4`: pending") != std::string::npos);

  // terms.md: each finished cell's clusters with their documents (from the assign record)
  const std::string one = cbtm::suite_terms_markdown(c, 1);
  CHECK(one.find("## tokens=1000,k=2\n") != std::string::npos);
  CHECK(one.find("## tokens=1000,k=4") == std::string::npos);  // pending
  CHECK(one.find("| 1 | 110 | term1 |\n") != std::string::npos);
  CHECK(one.find("common") == std::string::npos);
  CHECK(cbtm::suite_terms_markdown(c).find("| 0 | 100 | term0, common |\n") != std::string::npos);
}

TEST_CASE("suite results: dense_from takes the reference cell's c-btm all as the dense model") {
  cbtm::test::TempDir t("suite-dense-from");
  cbtm::test::write_text(t / "base.yaml", "seed: 1\n");
  const std::string axes =
      "base: base.yaml\naxes:\n  - {name: tokens, key: branch.tokens, values: [1000, 2000]}\n"
      "  - {name: k, key: clusterer.k, values: [1, 2, 4]}\n";
  const cbtm::Suite s = cbtm::Suite::parse(axes + "dense_from: {k: \"1\"}\n", t / "suite.yaml");
  CHECK(s.dense_from == std::map<std::string, std::string>{{"k", "1"}});
  const double none = std::nan("");
  write_cell(t, "tokens=1000,k=1", 1, none, 60.0, 60.0);
  write_cell(t, "tokens=1000,k=2", 2, none, 45.0, 50.0);
  write_cell(t, "tokens=1000,k=4", 4, 70.0, 42.0, 48.0);  // its own dense model wins
  write_cell(t, "tokens=2000,k=2", 2, none, 30.0, 33.0);  // its reference did not finish
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out");
  CHECK(c["cells"][1]["dense"]["from"] == "tokens=1000,k=1");
  CHECK(cbtm::cell_ppl(c["cells"][0], "dense") == 60.0);
  CHECK(cbtm::cell_ppl(c["cells"][1], "dense") == 60.0);
  CHECK(cbtm::cell_ppl(c["cells"][2], "dense") == 70.0);
  CHECK(std::isnan(cbtm::cell_ppl(c["cells"][4], "dense")));
  const std::string csv = cbtm::suite_csv(c);
  CHECK(csv.find("\"tokens=1000,k=2\",1000,2,c-btm all,ensemble,45.0000,0.4500,0.7500,") != std::string::npos);
  CHECK(csv.find("\"tokens=1000,k=4\",1000,4,c-btm all,ensemble,42.0000,0.4200,0.6000,") != std::string::npos);
  CHECK(csv.find("\"tokens=2000,k=2\",2000,2,c-btm all,ensemble,30.0000,0.3000,,") != std::string::npos);
  CHECK(cbtm::suite_markdown(c).find("the cell with k=1") != std::string::npos);

  auto error_of = [&](const std::string& df) {
    try {
      cbtm::Suite::parse(axes + "dense_from: " + df + "\n", t / "suite.yaml");
    } catch (const cbtm::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error_of("{q: 1}").find("dense_from.q: no axis named 'q'") != std::string::npos);
  CHECK(error_of("{k: 3}").find("dense_from.k: '3' is not one of the axis's labels") != std::string::npos);
  CHECK(error_of("[k]").find("dense_from: expected a map") != std::string::npos);
}

TEST_CASE("suite figures: line and best-of series are the cells' numbers - heatmaps and sizes per cell") {
  cbtm::test::TempDir t("suite-figures-data");
  const cbtm::Suite s = suite(t, R"(figures:
  - {name: ppl, x: tokens, series: k, models: [c-btm all]}
  - {name: best, type: best, x: tokens, of: k, models: [c-btm top1]}
  - {name: ratio, x: tokens, series: model, models: [c-btm top1], y: vs_dense, where: {k: "4"}}
  - {name: spec, type: heatmap, data: specialisation, cell: "tokens=2000,k=4"}
  - {name: overlap, type: heatmap, data: overlap}
  - {name: sizes, type: sizes, where: {tokens: "1000"}}
)");
  write_cell(t, "tokens=1000,k=2", 2, 50.0, 48.0, 52.0);
  write_cell(t, "tokens=1000,k=4", 4, 50.0, 47.0, 53.0);
  write_cell(t, "tokens=2000,k=2", 2, 40.0, 37.0, 36.0);
  write_cell(t, "tokens=2000,k=4", 4, 40.0, 35.0, 38.0);
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out");
  const auto figs = cbtm::draw_figures(s, c, t / "out", "");  // data and scripts only
  std::map<std::string, cbtm::FigureOutput> by;
  for (const auto& f : figs) by[f.name] = f;
  // one overlap heatmap per finished cell, one specialisation heatmap for the named cell
  CHECK(figs.size() == 4 + 1 + 4);
  REQUIRE(by.count("ppl"));
  const std::string ppl = cbtm::read_file(by["ppl"].data);
  CHECK(ppl.find("# k=2") != std::string::npos);
  CHECK(block(ppl, 0) == std::vector<std::pair<double, double>>{{1000, 48}, {2000, 37}});
  CHECK(block(ppl, 1) == std::vector<std::pair<double, double>>{{1000, 47}, {2000, 35}});
  // best k for top-1: at 1000 tokens k=2 (52 < 53), at 2000 tokens k=2 (36 < 38)
  CHECK(block(cbtm::read_file(by["best"].data), 0) == std::vector<std::pair<double, double>>{{1000, 2}, {2000, 2}});
  CHECK(block(cbtm::read_file(by["ratio"].data), 0) ==
        std::vector<std::pair<double, double>>{{1000, 53.0 / 50.0}, {2000, 38.0 / 40.0}});
  // specialisation of the k=4 cell: 4 x 4 entries, row c off-diagonal 1.5 + c
  const std::string spec = cbtm::read_file(by["spec"].data);
  CHECK(std::count(spec.begin(), spec.end(), '\n') == 16);
  CHECK(spec.find("1\t3\t4.5\n") != std::string::npos);  // expert 1 on cluster 3
  CHECK(spec.find("3\t3\t1\n") != std::string::npos);
  // overlap rows are fractions of each domain's documents: web = 30/60, 10/60, ...
  const std::string ov = cbtm::read_file(by["overlap-tokens=1000,k=4"].data);
  CHECK(ov.find("0\t1\t0.5\n") != std::string::npos);  // rows sorted: code 0, web 1
  CHECK(ov.find("1\t1\t0.166667\n") != std::string::npos);
  // sizes, largest first, for the two 1000-token cells
  const std::string sizes = cbtm::read_file(by["sizes"].data);
  CHECK(block(sizes, 1) == std::vector<std::pair<double, double>>{{1, 130}, {2, 120}, {3, 110}, {4, 100}});
  CHECK(cbtm::read_file(by["ppl"].script).find("index 1 using 1:2") != std::string::npos);
  for (const auto& f : figs) CHECK(f.svg.empty());
}

TEST_CASE("suite figures: gnuplot renders SVG, or a missing gnuplot leaves data, script and a note") {
  cbtm::test::TempDir t("suite-figures-svg");
  const cbtm::Suite s = suite(t, "figures:\n  - {name: ppl, x: tokens, series: k, logx: true}\n");
  write_cell(t, "tokens=1000,k=2", 2, 50.0, 48.0, 52.0);
  write_cell(t, "tokens=2000,k=2", 2, 40.0, 37.0, 36.0);
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out");
  auto figs = cbtm::draw_figures(s, c, t / "out", "/nonexistent/gnuplot");
  REQUIRE(figs.size() == 1);
  CHECK(figs[0].svg.empty());
  CHECK_THAT(figs[0].note, ContainsText("not found"));
  CHECK(fs::exists(figs[0].script));
  CHECK_FALSE(fs::exists(t / "out/figures/ppl.svg"));
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    WARN("gnuplot is not installed (apt install gnuplot-nox): SVG rendering not checked");
    return;
  }
  figs = cbtm::draw_figures(s, c, t / "out");
  REQUIRE(figs[0].svg == t / "out/figures/ppl.svg");
  const std::string svg = cbtm::read_file(figs[0].svg);
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("c-btm top1 (k=2)") != std::string::npos);  // a legend entry
  CHECK_FALSE(fs::exists(t / "out/figures/ppl.svg.tmp"));
}
