// Suite files: expansion into cells (names, overrides, order) and every error path.
#include "support/catch.h"

#include "cbtm/error.h"
#include "cbtm/suite/figures.h"
#include "cbtm/suite/suite.h"
#include "support/test_support.h"

using cbtm::Suite;

namespace {

/// A suite file in `t` whose base is a (dummy) run config beside it.
Suite parse(const cbtm::test::TempDir& t, const std::string& body, const std::vector<std::string>& set = {}) {
  cbtm::test::write_text(t / "base.yaml", "seed: 1\n");
  return Suite::parse("base: base.yaml\n" + body, t / "suite.yaml", set);
}

std::string error_of(const cbtm::test::TempDir& t, const std::string& body) {
  try {
    const Suite s = parse(t, body);
    cbtm::check_figures(s);
  } catch (const cbtm::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("suite: the cells are the cartesian product of the axes, first axis slowest") {
  cbtm::test::TempDir t("suite-parse");
  const Suite s = parse(t, R"(
set: {eval.docs: 50, branch.trainer.lr: 0.001}
axes:
  - {name: k, key: clusterer.k, values: [2, 4, 8]}
  - name: clusters
    variants:
      balanced: {}
      random: {clusterer.type: random, clusterer.seed: 3}
)");
  CHECK(s.base == t / "base.yaml");
  REQUIRE(s.axes.size() == 2);
  CHECK(s.axes[0].numbers == std::vector<double>{2, 4, 8});
  CHECK(s.axes[1].numbers.empty());
  const auto cells = s.cells();
  REQUIRE(cells.size() == 6);
  CHECK(cells[0].name == "k=2,clusters=balanced");
  CHECK(cells[1].name == "k=2,clusters=random");
  CHECK(cells[5].name == "k=8,clusters=random");
  CHECK(cells[3].labels == std::vector<std::string>{"4", "random"});
  // `set` first, then each axis in order: a later override wins in RunConfig.
  CHECK(cells[0].overrides == std::vector<std::string>{"eval.docs=50", "branch.trainer.lr=0.001", "clusterer.k=2"});
  CHECK(cells[5].overrides ==
        std::vector<std::string>{"eval.docs=50", "branch.trainer.lr=0.001", "clusterer.k=8", "clusterer.type=random",
                                 "clusterer.seed=3"});
  CHECK(s.axis("clusters") == 1);
  CHECK(s.axis("nope") == -1);
}

TEST_CASE("suite: map values need labels and become one-line YAML overrides") {
  cbtm::test::TempDir t("suite-labels");
  const Suite s = parse(t, R"(
axes:
  - key: eval.ensembles.top1
    name: router
    labels: [t01, t1]
    values:
      - {type: cluster_distance, temperature: 0.1, top_k: 1}
      - {type: cluster_distance, temperature: 1.0, top_k: 1}
)");
  const auto cells = s.cells();
  REQUIRE(cells.size() == 2);
  CHECK(cells[1].name == "router=t1");
  CHECK(cells[0].overrides[0] == "eval.ensembles.top1={type: cluster_distance, temperature: 0.1, top_k: 1}");
  CHECK(cbtm::override_text("a.b", YAML::Load("[1, 2]")) == "a.b=[1, 2]");
}

TEST_CASE("suite: no axes is one cell called base - --set edits the suite tree") {
  cbtm::test::TempDir t("suite-base");
  CHECK(parse(t, "").cells().at(0).name == "base");
  const Suite s = parse(t, "axes:\n  - {key: clusterer.k, values: [2, 4]}\n", {"axes.0.values=[16]", "share_seed=false"});
  REQUIRE(s.cells().size() == 1);
  CHECK(s.cells()[0].name == "k=16");
  CHECK_FALSE(s.share_seed);
}

TEST_CASE("suite: bad suites fail naming the file, line and key") {
  cbtm::test::TempDir t("suite-errors");
  CHECK_THAT(error_of(t, "colour: red\n"), ContainsText("suite.yaml:2:1: unknown key 'colour'"));
  try {
    Suite::parse("axes: []\n", t / "nobase.yaml");
    FAIL("no error");
  } catch (const cbtm::Error& e) {
    CHECK_THAT(e.what(), ContainsText("nobase.yaml: base: required"));
  }
  try {
    Suite::parse("base: missing.yaml\n", t / "s.yaml");
    FAIL("no error");
  } catch (const cbtm::Error& e) {
    CHECK_THAT(e.what(), ContainsText("missing.yaml does not exist"));
  }
  CHECK_THAT(error_of(t, "axes:\n  - {key: clusterer.k}\n"), ContainsText("axes.0: give either key + values"));
  CHECK_THAT(error_of(t, "axes:\n  - {key: a, values: [1], variants: {x: {}}}\n"), ContainsText("give either"));
  CHECK_THAT(error_of(t, "axes:\n  - {name: n, values: [1]}\n"), ContainsText("needs key"));
  CHECK_THAT(error_of(t, "axes:\n  - {key: a, values: []}\n"), ContainsText("values: expected a non-empty list"));
  CHECK_THAT(error_of(t, "axes:\n  - {key: a, values: [1, 1]}\n"), ContainsText("label '1' appears twice"));
  CHECK_THAT(error_of(t, "axes:\n  - {key: a, values: [x/y]}\n"), ContainsText("label 'x/y' may hold only"));
  CHECK_THAT(error_of(t, "axes:\n  - {key: a, values: [{b: 1}]}\n"), ContainsText("needs a label"));
  CHECK_THAT(error_of(t, "axes:\n  - {key: a, values: [1, 2], labels: [x]}\n"), ContainsText("a list of 2 labels"));
  CHECK_THAT(error_of(t, "axes:\n  - {variants: {a: {}}}\n"), ContainsText("a variant axis needs a name"));
  CHECK_THAT(error_of(t, "axes:\n  - {key: a, values: [1]}\n  - {key: b.a, values: [2]}\n"),
             ContainsText("a second axis named 'a'"));
  CHECK_THAT(error_of(t, "axes:\n  - {key: a, values: [1], colour: 2}\n"), ContainsText("unknown key 'colour'"));
  CHECK_THAT(error_of(t, "share_seed: maybe\n"), ContainsText("share_seed: expected true or false"));
  CHECK_THAT(error_of(t, "set: [1]\n"), ContainsText("set: expected a map"));
  CHECK_THAT(error_of(t, "axes: {a: 1}\n"), ContainsText("axes: expected a list"));
  CHECK_THAT(error_of(t, "base: [\n"), ContainsText("not valid YAML"));
}

TEST_CASE("suite: figures are checked against the axes before anything runs") {
  cbtm::test::TempDir t("suite-figures");
  const std::string axes = "axes:\n  - {name: k, key: clusterer.k, values: [2, 4]}\n  - name: c\n    variants: {a: {}, b: {}}\n";
  CHECK(error_of(t, axes + "figures:\n  - {name: f, x: k, series: c}\n  - {name: g, type: best, x: c, of: k}\n").empty());
  CHECK_THAT(error_of(t, axes + "figures:\n  - {x: k}\n"), ContainsText("figures.0: name: required"));
  CHECK_THAT(error_of(t, axes + "figures:\n  - {name: f, x: tokens}\n"), ContainsText("x: 'tokens' is not an axis"));
  CHECK_THAT(error_of(t, axes + "figures:\n  - {name: f, type: pie}\n"), ContainsText("'pie' is not one of"));
  CHECK_THAT(error_of(t, axes + "figures:\n  - {name: f, type: best, x: k, of: c}\n"),
             ContainsText("axis 'c' has labels that are not numbers"));
  CHECK_THAT(error_of(t, axes + "figures:\n  - {name: f, x: k, y: loss}\n"), ContainsText("y: 'loss' is not one of"));
  CHECK_THAT(error_of(t, axes + "figures:\n  - {name: f, x: k, where: {c: z}}\n"),
             ContainsText("where.c: 'z' is not one of the axis' labels"));
  CHECK_THAT(error_of(t, axes + "figures:\n  - {name: f, type: heatmap, data: loss}\n"), ContainsText("data: 'loss'"));
  CHECK_THAT(error_of(t, axes + "figures:\n  - {name: f, x: k}\n  - {name: f, x: k}\n"),
             ContainsText("a second figure named 'f'"));
  CHECK_THAT(error_of(t, axes + "figures:\n  - {name: a/b, x: k}\n"), ContainsText("may hold only"));
}

TEST_CASE("suite: ensemble_grid adds every combination of its list keys to a cell's ensembles") {
  cbtm::test::TempDir t("suite-grid");
  const Suite s = parse(t,
                        "ensemble_grid:\n  type: cluster_distance\n  temperature: [0.1, 1.0]\n  top_k: [1, 4, 0]\n"
                        "  name: \"T{temperature}-top{top_k}\"\n");
  const YAML::Node base = YAML::Load("all: {type: cluster_distance, top_k: 0}");
  const YAML::Node e = s.grid_ensembles(base, 2);
  REQUIRE(e.size() == 5);  // the cell's own + 2 temperatures x top_k {1, all} (4 > k = 2 left out)
  std::vector<std::string> names;
  for (auto it = e.begin(); it != e.end(); ++it) names.push_back(it->first.as<std::string>());
  CHECK(names == std::vector<std::string>{"all", "T0_1-top1", "T0_1-topall", "T1_0-top1", "T1_0-topall"});
  CHECK(e["T0_1-top1"]["type"].as<std::string>() == "cluster_distance");
  CHECK(e["T0_1-top1"]["temperature"].as<double>() == 0.1);
  CHECK(e["T1_0-topall"]["top_k"].as<int>() == 0);
  CHECK_FALSE(e["T0_1-top1"]["name"]);
  CHECK(s.grid_ensembles(base, 4).size() == 7);
  CHECK(s.grid_ensembles(base, 0).size() == 7);  // k unknown: nothing left out
  CHECK(base.size() == 1);                       // the cell's own map is not modified
  // the default name: key + value per list key
  const Suite d = parse(t, "ensemble_grid: {type: cluster_distance, temperature: [0.5, 2]}\n");
  const YAML::Node de = d.grid_ensembles(YAML::Node(), 3);
  CHECK(de.size() == 2);
  CHECK(de["temperature0_5"]["temperature"].as<double>() == 0.5);
  CHECK(parse(t, "axes: []\n").grid_ensembles(base, 2).size() == 1);  // no grid: unchanged

  CHECK_THAT(error_of(t, "ensemble_grid: {type: cluster_distance, temperature: 0.1}\n"), ContainsText("no list-valued key"));
  CHECK_THAT(error_of(t, "ensemble_grid: {temperature: [0.1]}\n"), ContainsText("ensemble_grid.type: required"));
  CHECK_THAT(error_of(t, "ensemble_grid: {type: c, temperature: [0.1], top_k: [1], name: \"T{temperature}\"}\n"),
             ContainsText("lacks {top_k}"));
  CHECK_THAT(error_of(t, "ensemble_grid: {type: c, top_k: [1], name: \"a.{top_k}\"}\n"), ContainsText("holds a '.'"));
  CHECK_THAT(error_of(t, "ensemble_grid: {type: c, top_k: []}\n"), ContainsText("ensemble_grid.top_k: an empty list"));
  CHECK_THAT(error_of(t, "ensemble_grid: {type: c, top_k: [{a: 1}]}\n"), ContainsText("must be scalars"));
  CHECK_THAT(error_of(t, "ensemble_grid: [1]\n"), ContainsText("suite.yaml:2"));
}
