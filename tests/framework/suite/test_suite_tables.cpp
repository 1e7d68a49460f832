// A suite's training costs (FLOPs per paper A.2 from the stage records), the A.3 speed-up
// interpolation against hand computations, the flops x-axis, the Markdown tables (ensembles
// by router option: Table 9; the speed-up table) and training curves from metrics.jsonl.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/suite/figures.h"
#include "cbtm/suite/suite.h"
#include "cbtm/suite/suite_results.h"
#include "support/test_support.h"

using nlohmann::json;

namespace {

const double kFpt = 1e6;  // FLOPs per training token in the fixtures

json model(const std::string& name, const std::string& role, double ppl, const std::string& router = "") {
  json m = {{"name", name}, {"role", role}, {"ppl", ppl}, {"bits_per_byte", ppl / 100}};
  if (!router.empty()) m["router"] = router;
  return m;
}

void record(const std::string& dir, const std::string& stage, double tokens, double flops) {
  json summary = {{"tokens", tokens}};
  if (std::isfinite(flops)) summary["flops"] = flops;
  cbtm::write_file_atomic(dir + "/stages/" + stage + ".json", json{{"stage", stage}, {"summary", summary}}.dump());
}

/// A finished cell of `tokens` tokens after branching and k experts: its models, and stage
/// records for the seed (1000 tokens), each expert (tokens / k) and every baseline (tokens),
/// all at kFpt FLOPs per token (the MoE baseline at 1.5x: its extra expert FFNs).
void cell(const cbtm::test::TempDir& t, const std::string& name, int k, double tokens, const json& models) {
  const std::string d = t / ("out/cells/" + name);
  cbtm::write_file_atomic(d + "/results.json", json{{"format", "cbtm-results"}, {"format_version", 1}, {"k", k},
                                                    {"branch_tokens", tokens}, {"models", models}}
                                                   .dump());
  record(d, "eval", 0, NAN);
  record(d, "seed", 1000, 1000 * kFpt);
  for (int j = 0; j < k; ++j) {
    char stage[32];
    std::snprintf(stage, sizeof stage, "expert-%03d", j);
    record(d, stage, tokens / k, tokens / k * kFpt);
  }
  for (const auto& m : models)
    if (m["role"] == "dense" || m["role"] == "baseline")
      record(d, "baseline-" + m["name"].get<std::string>(), tokens, tokens * kFpt * (m["name"] == "moe" ? 1.5 : 1.0));
}

std::map<std::string, cbtm::FigureOutput> draw(const cbtm::Suite& s, const json& c, const cbtm::test::TempDir& t) {
  std::map<std::string, cbtm::FigureOutput> by;
  for (const auto& f : cbtm::draw_figures(s, c, t / "out", "")) by[f.name] = f;
  return by;
}

}  // namespace

TEST_CASE("suite tables: A.3 interpolation of training cost at a perplexity") {
  using cbtm::interpolate_cost;
  // Reference runs: ppl 10 at 1e15 FLOPs, 8 at 4e15, 7 at 1.6e16.
  const std::vector<std::pair<double, double>> ref = {{10, 1e15}, {8, 4e15}, {7, 1.6e16}};
  // t = 9: r = (9 - 8) / (10 - 8) = 0.5 -> exp(log 4e15 + 0.5 (log 1e15 - log 4e15)) = 2e15
  CHECK(interpolate_cost(ref, 9) == Approx(2e15));
  // t = 7.25: between 7 and 8, r = 0.25 -> 1.6e16^0.75 * 4e15^0.25
  CHECK(interpolate_cost(ref, 7.25) == Approx(std::pow(1.6e16, 0.75) * std::pow(4e15, 0.25)));
  CHECK(interpolate_cost(ref, 8) == Approx(4e15));  // an observation
  // Outside the observed range: NaN, or the line through the two nearest runs.
  CHECK(std::isnan(interpolate_cost(ref, 6)));
  CHECK(std::isnan(interpolate_cost(ref, 11)));
  bool ex = false;
  // t = 6: through (7, 1.6e16) and (8, 4e15): r = (6 - 7) / (8 - 7) = -1 -> 1.6e16 * 4 = 6.4e16
  CHECK(interpolate_cost(ref, 6, true, &ex) == Approx(6.4e16));
  CHECK(ex);
  CHECK(interpolate_cost(ref, 9, true, &ex) == Approx(2e15));
  CHECK_FALSE(ex);
  // Too few distinct points, or no finite ones.
  CHECK(std::isnan(interpolate_cost({{10, 1e15}}, 9, true)));
  CHECK(std::isnan(interpolate_cost({{10, 1e15}, {10, 2e15}}, 9, true)));
  CHECK(std::isnan(interpolate_cost({{NAN, 1e15}, {8, 4e15}}, 9)));
}

TEST_CASE("suite tables: FLOPs per cell from the stage records - CSV columns and a flops x-axis") {
  cbtm::test::TempDir t("suite-flops");
  cbtm::test::write_text(t / "base.yaml", "seed: 1\n");
  const cbtm::Suite s = cbtm::Suite::parse(
      "base: base.yaml\naxes:\n  - {name: tokens, key: branch.tokens, values: [1000, 2000]}\n"
      "figures:\n  - {name: f, x: flops, series: model, models: [dense, moe, c-btm all]}\n"
      "  - {name: fs, x: flops, series: model, models: [dense], include_seed: true}\n",
      t / "suite.yaml");
  for (double tokens : {1000.0, 2000.0})
    cell(t, "tokens=" + std::to_string(static_cast<int>(tokens)), 4, tokens,
         json::array({model("dense", "dense", 3e4 / tokens), model("moe", "baseline", 3.2e4 / tokens),
                      model("c-btm all", "ensemble", 2.9e4 / tokens), model("best expert (oracle)", "oracle", 20),
                      model("seed", "seed", 40)}));
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out");
  const json& c2 = c["cells"][1];
  CHECK(c2["train"]["experts"]["flops"].get<double>() == Approx(2000 * kFpt));
  CHECK(c2["train"]["experts"]["tokens"].get<double>() == Approx(2000));
  CHECK(cbtm::cell_flops(c2, "c-btm all") == Approx(2000 * kFpt));
  CHECK(cbtm::cell_flops(c2, "oracle") == Approx(2000 * kFpt));
  CHECK(cbtm::cell_flops(c2, "dense") == Approx(2000 * kFpt));
  CHECK(cbtm::cell_flops(c2, "moe") == Approx(3000 * kFpt));
  CHECK(cbtm::cell_flops(c2, "seed") == 0);
  CHECK(cbtm::cell_flops(c2, "dense", true) == Approx(3000 * kFpt));
  CHECK(cbtm::cell_flops(c2, "seed", true) == Approx(1000 * kFpt));
  CHECK(std::isnan(cbtm::cell_flops(c2, "nope")));
  const std::string csv = cbtm::suite_csv(c);
  CHECK(csv.find("tokens=2000,2000,moe,baseline,16.0000,0.1600,1.0667,1.000,,4,2000,0,3e+09,1e+09\n") != std::string::npos);

  auto by = draw(s, c, t);
  // one line per model: x = its FLOPs, y = its perplexity
  const std::string f = cbtm::read_file(by["f"].data);
  INFO(f);
  CHECK(f.find("# dense\n1e+09\t30\n2e+09\t15\n") != std::string::npos);
  CHECK(f.find("# moe\n1.5e+09\t32\n3e+09\t16\n") != std::string::npos);
  CHECK(cbtm::read_file(by["f"].script).find("training FLOPs after branching") != std::string::npos);
  CHECK(cbtm::read_file(by["fs"].data).find("2e+09\t30\n3e+09\t15\n") != std::string::npos);

  // A record without FLOPs (made before they were recorded): unknown, not zero.
  record(t / "out/cells/tokens=1000", "expert-002", 250, NAN);
  const json old = cbtm::collect_suite_results(s, s.cells(), t / "out");
  CHECK(std::isnan(cbtm::cell_flops(old["cells"][0], "c-btm all")));
  CHECK(cbtm::cell_flops(old["cells"][0], "dense") == Approx(1000 * kFpt));
}

TEST_CASE("suite tables: speed-up of C-BTM over dense per A.3, with dense_from and out-of-range cells") {
  cbtm::test::TempDir t("suite-speedup");
  cbtm::test::write_text(t / "base.yaml", "seed: 1\n");
  const cbtm::Suite s = cbtm::Suite::parse(
      "base: base.yaml\ndense_from: {k: \"1\"}\naxes:\n"
      "  - {name: tokens, key: branch.tokens, values: [1000, 2000, 4000]}\n"
      "  - {name: k, key: clusterer.k, values: [1, 2]}\n"
      "figures:\n  - {name: sp, type: speedup, x: tokens, series: k, where: {k: \"2\"}}\n"
      "  - {name: spx, type: speedup, x: tokens, series: k, where: {k: \"2\"}, extrapolate: true}\n",
      t / "suite.yaml");
  // dense (the k=1 cells): ppl 10, 8, 7 at 1e9, 2e9, 4e9 FLOPs
  cell(t, "tokens=1000,k=1", 1, 1000, json::array({model("c-btm all", "ensemble", 10)}));
  cell(t, "tokens=2000,k=1", 1, 2000, json::array({model("c-btm all", "ensemble", 8)}));
  cell(t, "tokens=4000,k=1", 1, 4000, json::array({model("c-btm all", "ensemble", 7)}));
  cell(t, "tokens=1000,k=2", 2, 1000, json::array({model("c-btm all", "ensemble", 9)}));    // dense needs 1.41e9
  cell(t, "tokens=2000,k=2", 2, 2000, json::array({model("c-btm all", "ensemble", 7.5)}));  // dense needs 2.83e9
  cell(t, "tokens=4000,k=2", 2, 4000, json::array({model("c-btm all", "ensemble", 6.5)}));  // better than any dense
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out");
  CHECK(c["cells"][1]["dense"]["flops"].get<double>() == Approx(1000 * kFpt));  // tokens=1000,k=2
  auto by = draw(s, c, t);
  REQUIRE(by.count("sp"));
  const std::string md = by["sp"].markdown;
  // t = 9 between dense 10 (1e9) and 8 (2e9): r = 0.5 -> sqrt(2) e9; / 1e9
  const double s1 = std::sqrt(2.0), s2 = std::sqrt(2e9 * 4e9) / 2e9;
  char want[64];
  std::snprintf(want, sizeof want, "| 1000 | 2 | c-btm all | 9.00 | 1e+09 | 1.41e+09 | %.2f |", s1);
  CHECK(md.find(want) != std::string::npos);
  std::snprintf(want, sizeof want, "| 2000 | 2 | c-btm all | 7.50 | 2e+09 | 2.83e+09 | %.2f |", s2);
  CHECK(md.find(want) != std::string::npos);
  CHECK(md.find("| 4000 | 2 | c-btm all | 6.50 | 4e+09 | – | – (outside dense's 7.00–10.00) |") != std::string::npos);
  const std::string dat = cbtm::read_file(by["sp"].data);
  CHECK(dat.find("# c-btm all (k=2)\n1000\t1.41421\n2000\t1.41421\n") != std::string::npos);
  CHECK(cbtm::read_file(by["sp"].script).find("set arrow") < cbtm::read_file(by["sp"].script).find("\nplot "));
  CHECK(cbtm::read_file(t / "out/figures/sp.md").find(md.substr(md.find("| tokens"))) != std::string::npos);
  // extrapolated: t = 6.5 on the line through (7, 4e9) and (8, 2e9): r = -0.5 -> 4e9 * 2^0.5
  std::snprintf(want, sizeof want, "| 6.50 | 4e+09 | 5.66e+09 | %.2f* |", std::sqrt(2.0));
  CHECK(by["spx"].markdown.find(want) != std::string::npos);
  CHECK(by["spx"].markdown.find("extrapolated") != std::string::npos);
}

TEST_CASE("suite tables: ensembles by router option - temperature x top_k per cell (Table 9)") {
  cbtm::test::TempDir t("suite-table9");
  cbtm::test::write_text(t / "base.yaml", "seed: 1\n");
  const cbtm::Suite s = cbtm::Suite::parse(
      "base: base.yaml\naxes:\n  - {name: k, key: clusterer.k, values: [2, 4]}\n"
      "figures:\n  - {name: t9, type: table, rows: temperature, cols: top_k}\n"
      "  - {name: byk, type: table, rows: k, cols: top_k, where: {}, models: [c-btm T0_1-top1, c-btm T0_1-topall]}\n",
      t / "suite.yaml");
  auto router = [](double temp, int top_k) {
    char b[96];
    std::snprintf(b, sizeof b, "type: cluster_distance\ntemperature: %g\ntop_k: %d\n", temp, top_k);
    return std::string(b);
  };
  for (int k : {2, 4}) {
    json models = json::array({model("dense", "dense", 50)});
    for (double temp : {0.1, 1.0})
      for (int top_k : {1, 0}) {
        char name[48];
        std::snprintf(name, sizeof name, "c-btm T%s-top%s", temp == 0.1 ? "0_1" : "1", top_k ? "1" : "all");
        models.push_back(model(name, "ensemble", 40 + k + temp * 10 + (top_k ? 1 : 0), router(temp, top_k)));
      }
    models.push_back(model("expert 0 alone", "expert", 99));
    cell(t, "k=" + std::to_string(k), k, 1000, models);
  }
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out");
  auto by = draw(s, c, t);
  const std::string md = by["t9"].markdown;
  CHECK(md.find("**k=2** — dense: 50.00\n\n| temperature \\ top_k | 1 | all |\n|---|---:|---:|\n"
                "| 0.1 | **44.00** | **43.00** |\n| 1 | 53.00 | 52.00 |\n") != std::string::npos);
  CHECK(md.find("**k=4** — dense: 50.00") != std::string::npos);
  CHECK(md.find("| 0.1 | **46.00** | **45.00** |") != std::string::npos);
  CHECK(md.find("99") == std::string::npos);  // single experts have no router
  // an axis as rows, only the named models
  const std::string byk = by["byk"].markdown;
  CHECK(byk.find("| k \\ top_k | 1 | all |\n|---|---:|---:|\n| 2 | **44.00** | **43.00** |\n| 4 | 46.00 | 45.00 |\n") !=
        std::string::npos);
  CHECK(cbtm::read_file(t / "out/figures/t9.md").find("### t9") == 0);
}

TEST_CASE("suite tables: training curves from the models' metrics.jsonl, bucketed") {
  cbtm::test::TempDir t("suite-curves");
  cbtm::test::write_text(t / "base.yaml", "seed: 1\n");
  const cbtm::Suite s = cbtm::Suite::parse(
      "base: base.yaml\naxes:\n  - {name: tokens, key: branch.tokens, values: [1000, 2000]}\n"
      "figures:\n  - {name: drop, type: curve, models: [moe], metric: moe_dropped, where: {tokens: \"2000\"}}\n"
      "  - {name: loss, type: curve, models: [dense, moe, expert 1], x: step}\n",
      t / "suite.yaml");
  for (int tokens : {1000, 2000}) {
    const std::string name = "tokens=" + std::to_string(tokens);
    cell(t, name, 2, tokens,
         json::array({model("dense", "dense", 30), model("moe", "baseline", 31), model("c-btm all", "ensemble", 29)}));
    std::string moe, dense;
    for (int step = 1; step <= 300; ++step) {  // 300 steps -> 100 buckets of 3
      moe += json{{"step", step}, {"tokens", step * 10}, {"loss", 5.0}, {"moe_dropped", step % 3 == 0 ? 0.3 : 0.0}}.dump() + "\n";
      if (step <= 20) dense += json{{"step", step}, {"tokens", step * 10}, {"loss", 6.0 - step * 0.1}}.dump() + "\n";
    }
    cbtm::test::write_text(t / ("out/cells/" + name + "/baselines/moe/metrics.jsonl"), moe + "{\"step\": 901, \"tok");
    cbtm::test::write_text(t / ("out/cells/" + name + "/baselines/dense/metrics.jsonl"), dense);
    cbtm::test::write_text(t / ("out/cells/" + name + "/experts/expert-001/metrics.jsonl"),
                           json{{"step", 1}, {"tokens", 5}, {"loss", 7.5}}.dump() + "\n");
  }
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out");
  auto by = draw(s, c, t);
  // one cell (where), 100 bucket means of (tokens, dropped): (20, 0.1), (50, 0.1), ...
  const std::string drop = cbtm::read_file(by["drop"].data);
  CHECK(drop.find("# moe\n20\t0.1\n50\t0.1\n") == 0);
  CHECK(std::count(drop.begin(), drop.end(), '\n') == 101);
  // both cells x dense, moe and expert 1, against steps; the partial last line is skipped
  const std::string loss = cbtm::read_file(by["loss"].data);
  CHECK(loss.find("# dense (tokens=1000)\n1\t5.9\n2\t5.8\n") != std::string::npos);
  CHECK(loss.find("# expert 1 (tokens=2000)\n1\t7.5\n") != std::string::npos);
  CHECK(loss.find("# moe (tokens=2000)\n2\t5\n5\t5\n") != std::string::npos);
  CHECK(cbtm::read_file(by["loss"].script).find("set xlabel \"step\"") != std::string::npos);

  auto error_of = [&](const std::string& fig) {
    try {
      cbtm::check_figures(cbtm::Suite::parse(
          "base: base.yaml\naxes:\n  - {name: tokens, key: branch.tokens, values: [1000]}\nfigures:\n  - " + fig + "\n",
          t / "suite.yaml"));
    } catch (const cbtm::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(error_of("{name: c, type: curve, x: k}"), ContainsText("a curve's x is tokens or step"));
  CHECK_THAT(error_of("{name: t, type: table, rows: k}"), ContainsText("a table needs rows and cols"));
  CHECK_THAT(error_of("{name: s, type: speedup}"), ContainsText(".x: required"));
  CHECK_THAT(error_of("{name: s, type: speedup, x: tokens, series: q}"), ContainsText("'q' is not an axis"));
  CHECK_THAT(error_of("{name: f, type: line, x: flops, logx: maybe}"), ContainsText("logx/logy/include_seed"));
  CHECK(error_of("{name: f, type: line, x: flops}").empty());
}

TEST_CASE("suite tables: a grid-only suite - dense_from takes a one-expert cell's expert, the wide table omits the grid") {
  cbtm::test::TempDir t("suite-grid-dense");
  cbtm::test::write_text(t / "base.yaml", "seed: 1\n");
  const cbtm::Suite s = cbtm::Suite::parse(
      "base: base.yaml\ndense_from: {k: \"1\"}\naxes:\n  - {name: k, key: clusterer.k, values: [1, 2]}\n"
      "ensemble_grid: {type: cluster_distance, temperature: [0.1], top_k: [1, 0], name: \"T{temperature}-top{top_k}\"}\n",
      t / "suite.yaml");
  const std::string r1 = "type: cluster_distance\ntemperature: 0.1\ntop_k: 1\n", r0 = "type: cluster_distance\ntemperature: 0.1\ntop_k: 0\n";
  cell(t, "k=1", 1, 1000,
       json::array({model("seed", "seed", 90), model("c-btm T0_1-top1", "ensemble", 80, r1),
                    model("c-btm T0_1-topall", "ensemble", 80, r0), model("best expert (oracle)", "oracle", 80)}));
  cell(t, "k=2", 2, 1000,
       json::array({model("seed", "seed", 90), model("c-btm T0_1-top1", "ensemble", 84, r1),
                    model("c-btm T0_1-topall", "ensemble", 78, r0), model("best expert (oracle)", "oracle", 75)}));
  const json c = cbtm::collect_suite_results(s, s.cells(), t / "out");
  CHECK(c["cells"][1]["dense"]["model"] == "oracle");
  CHECK(cbtm::cell_ppl(c["cells"][1], "dense") == 80);
  CHECK(cbtm::cell_flops(c["cells"][1], "dense") == Approx(1000 * kFpt));
  const std::string md = cbtm::suite_markdown(c);
  CHECK(md.find("| k | seed | best expert (oracle) |\n") != std::string::npos);
  CHECK(md.find("T0_1") == std::string::npos);
  CHECK(md.find("ensemble_grid's 2 ensembles") != std::string::npos);
  CHECK(cbtm::suite_csv(c).find("c-btm T0_1-topall,ensemble,78.0000,0.7800,0.9750,") != std::string::npos);
}
