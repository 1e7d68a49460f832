// `cbtm suite`: a two-cell sweep over k on configs/tiny.yaml with a shared seed -- killed in
// its second cell, resumed, then rerun (nothing runs), listed, tabulated, and its seed borrowed
// by another suite directory (--seed-from), re-evaluated by itself after its eval config changed (and with --redo
// eval); bad suites and a bad cell fail before anything runs; every shipped paper suite validates.
#include "support/catch.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cbtm/fs.h"
#include "cli_runner.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::test::cbtm_cli;
using nlohmann::json;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("e2e: suite runs every cell from one shared seed, resumes after a kill, skips finished cells") {
  cbtm::test::TempDir t("e2e-suite");
  const std::string suite = t / "suite.yaml";
  cbtm::test::write_text(suite, "base: " + cbtm::test::source_path("configs/tiny.yaml") + R"(
set: {eval.docs: 12}
axes:
  - {name: k, key: clusterer.k, values: [2, 3]}
figures:
  - {name: ppl-vs-k, x: k, series: model, models: [dense, c-btm all, c-btm top1]}
  - {name: sizes, type: sizes}
)");
  const std::string out = t / "out";
  // Killed once the second cell has started training its experts.
  REQUIRE(cbtm::test::cbtm_kill_when("suite " + suite + " --out " + out, out + "/cells/k=3/stages/assign.json", 600));
  CHECK(fs::exists(out + "/cells/k=2/results.json"));
  CHECK_FALSE(fs::exists(out + "/cells/k=3/results.json"));

  auto r = cbtm_cli("suite " + suite + " --out " + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("cell 1/2 k=2: finished earlier, skipped") != std::string::npos);
  CHECK(r.output.find("cell 2/2 k=3: running") != std::string::npos);
  // The seed was trained once, in the shared directory; both cells branch from it.
  std::vector<std::string> shared;
  for (const auto& e : fs::directory_iterator(out + "/shared")) shared.push_back(e.path().string());
  REQUIRE(shared.size() == 1);
  CHECK(fs::exists(shared[0] + "/seed/final/model.safetensors"));
  for (const char* cell : {"k=2", "k=3"}) {
    const std::string d = out + "/cells/" + cell;
    CHECK_FALSE(fs::exists(d + "/seed/final"));
    const json seed = json::parse(cbtm::read_file(d + "/stages/seed.json"));
    CHECK(seed["summary"]["checkpoint"] == shared[0] + "/seed/final");
    const json res = json::parse(cbtm::read_file(d + "/results.json"));
    CHECK(res["k"] == (std::string(cell) == "k=2" ? 2 : 3));
    CHECK(json::parse(cbtm::read_file(d + "/suite-cell.json"))["shared_seed_run_id"] ==
          json::parse(cbtm::read_file(shared[0] + "/stages/seed.json"))["run_id"]);
  }
  // Tables: 2 rows in Markdown; CSV rows = models of both cells.
  const std::string md = cbtm::read_file(out + "/results.md");
  CHECK(md.find("| k | dense | seed | c-btm all |") != std::string::npos);
  CHECK(count(md, "\n| 2 |") == 1);
  CHECK(count(md, "\n| 3 |") == 1);
  const json all = json::parse(cbtm::read_file(out + "/results.json"));
  CHECK(all["format"] == "cbtm-suite-results");
  size_t models = 0;
  for (const auto& c : all["cells"]) {
    CHECK(c["status"] == "finished");
    models += c["results"]["models"].size();
  }
  const std::string csv = cbtm::read_file(out + "/results.csv");
  CHECK(static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')) == models + 1);
  CHECK(fs::exists(out + "/figures/ppl-vs-k.dat"));
  if (std::system("command -v gnuplot > /dev/null 2>&1") == 0) {
    CHECK(fs::exists(out + "/figures/ppl-vs-k.svg"));
    CHECK(fs::exists(out + "/figures/sizes.svg"));
  }

  // A rerun runs nothing; --list says so; --tables only rewrites the tables.
  const auto before = fs::last_write_time(out + "/cells/k=3/results.json");
  r = cbtm_cli("suite " + suite + " --out " + out);
  REQUIRE(r.status == 0);
  CHECK(count(r.output, "finished earlier, skipped") == 2);
  CHECK(r.output.find(" started (pid") == std::string::npos);
  CHECK(fs::last_write_time(out + "/cells/k=3/results.json") == before);
  // --cell of a later cell reuses the shared seed made with the first cell's config (it was
  // refused as "a different config" when the selected cell's overrides made the seed).
  r = cbtm_cli("suite " + suite + " --out " + out + " --cell k=3");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(count(r.output, "finished earlier, skipped") == 1);
  CHECK(fs::last_write_time(out + "/cells/k=3/results.json") == before);
  r = cbtm_cli("suite " + suite + " --out " + out + " --list");
  REQUIRE(r.status == 0);
  CHECK(count(r.output, " finished") == 2);
  fs::remove(out + "/results.md");
  REQUIRE(cbtm_cli("suite " + suite + " --out " + out + " --tables").status == 0);
  CHECK(cbtm::read_file(out + "/results.md") == md);

  // Changing the evaluation of a finished sweep: the cell re-evaluates by itself (as `cbtm run`
  // does), retraining nothing; --redo eval re-scores even when nothing changed.
  const std::string suite_eval = t / "suite-eval.yaml";
  {
    std::string text = cbtm::read_file(suite);
    text.replace(text.find("eval.docs: 12"), 13, "eval.docs: 10");
    cbtm::test::write_text(suite_eval, text);
  }
  const auto expert_before = fs::last_write_time(out + "/cells/k=3/experts/expert-000/final/model.safetensors");
  CHECK(cbtm_cli("suite " + suite_eval + " --out " + out + " --list --cell k=3").output.find("pending") != std::string::npos);
  r = cbtm_cli("suite " + suite_eval + " --out " + out + " --cell k=3");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find(" started (pid") == std::string::npos);  // no expert retrained
  CHECK(fs::last_write_time(out + "/cells/k=3/experts/expert-000/final/model.safetensors") == expert_before);
  CHECK(json::parse(cbtm::read_file(out + "/cells/k=3/results.json"))["eval"]["docs"] == 10);
  CHECK(cbtm_cli("suite " + suite_eval + " --out " + out + " --list --cell k=3").output.find("finished") !=
        std::string::npos);
  const auto results_before = fs::last_write_time(out + "/cells/k=3/results.json");
  r = cbtm_cli("suite " + suite_eval + " --out " + out + " --cell k=3 --redo eval");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find(" started (pid") == std::string::npos);
  CHECK(fs::last_write_time(out + "/cells/k=3/results.json") != results_before);

  // Another suite's directory borrows the finished seed (--seed-from): no seed is trained.
  const std::string out2 = t / "out2";
  r = cbtm_cli("suite " + suite + " --out " + out2 + " --cell k=2 --seed-from " + out);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find(shared[0] + " (--seed-from: finished, reused)") != std::string::npos);
  // out2/shared holds only the memo of where its seed came from, no seed of its own
  std::vector<std::string> own;
  for (const auto& e : fs::directory_iterator(out2 + "/shared")) own.push_back(e.path().filename().string());
  REQUIRE(own.size() == 1);
  CHECK(own[0] == fs::path(shared[0]).filename().string() + ".borrowed");
  CHECK(json::parse(cbtm::read_file(out2 + "/cells/k=2/stages/seed.json"))["summary"]["checkpoint"] ==
        shared[0] + "/seed/final");
  CHECK(fs::exists(out2 + "/cells/k=2/results.json"));
  // A rerun without --seed-from (here: re-scoring) keeps the borrowed seed: nothing retrained.
  const auto expert2 = fs::last_write_time(out2 + "/cells/k=2/experts/expert-000/final/model.safetensors");
  r = cbtm_cli("suite " + suite + " --out " + out2 + " --cell k=2 --redo eval");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("using the shared seed borrowed earlier: " + shared[0]) != std::string::npos);
  CHECK(r.output.find(" started (pid") == std::string::npos);
  CHECK(fs::last_write_time(out2 + "/cells/k=2/experts/expert-000/final/model.safetensors") == expert2);
  // ... and says so when the seed it borrowed is gone, instead of pretraining one silently.
  fs::rename(shared[0], shared[0] + ".moved");
  r = cbtm_cli("suite " + suite + " --out " + out2 + " --cell k=2 --list");
  CHECK(r.status != 0);
  CHECK(r.output.find("no longer a finished seed") != std::string::npos);
  fs::rename(shared[0] + ".moved", shared[0]);
}

TEST_CASE("e2e: a bad suite or a bad cell fails with exit 2 before anything runs") {
  cbtm::test::TempDir t("e2e-suite-bad");
  const std::string base = "base: " + cbtm::test::source_path("configs/tiny.yaml") + "\n";
  cbtm::test::write_text(t / "typo.yaml", base + "axis:\n  - {key: clusterer.k, values: [2]}\n");
  auto r = cbtm_cli("suite " + t / "typo.yaml" + " --out " + t / "o1");
  CHECK(r.status == 2);
  CHECK(r.output.find("typo.yaml:2:1: unknown key 'axis'") != std::string::npos);

  cbtm::test::write_text(t / "cell.yaml", base + "axes:\n  - {key: clusterer.k, values: [2, 0]}\n");
  r = cbtm_cli("suite " + t / "cell.yaml" + " --out " + t / "o2");
  INFO(r.output);
  CHECK(r.status == 2);
  CHECK(r.output.find("cell k=0") != std::string::npos);
  CHECK(r.output.find("clusterer.k") != std::string::npos);
  CHECK_FALSE(fs::exists(t / "o2/cells"));
  CHECK_FALSE(fs::exists(t / "o2/shared"));

  r = cbtm_cli("suite " + t / "cell.yaml" + " --out " + t / "o3 --cell k=5");
  CHECK(r.status == 2);
  CHECK(r.output.find("--cell k=5") != std::string::npos);
  CHECK(r.output.find("k=2") != std::string::npos);  // the list of cells
}

TEST_CASE("e2e: every suite shipped in configs/paper expands, and every cell's config validates") {
  // `--list` resolves each cell's config (base + set + the cell's axis values) through the
  // plugins' Options, so an unknown key, a bad value or a figure naming no axis fails here,
  // not an hour into a sweep. It reads no data, so it runs on a clean checkout.
  cbtm::test::TempDir t("e2e-paper-suites");
  int suites = 0;
  for (const auto& e : fs::directory_iterator(cbtm::test::source_path("configs/paper"))) {
    if (e.path().extension() != ".yaml") continue;
    const std::string text = cbtm::read_file(e.path().string());
    if (text.rfind("base:", 0) != 0 && text.find("\nbase:") == std::string::npos) continue;  // a run config
    ++suites;
    const std::string name = e.path().stem().string();
    auto r = cbtm_cli("suite " + e.path().string() + " --out " + (t / name) + " --list");
    INFO(name << ":\n" << r.output);
    CHECK(r.status == 0);
    CHECK(count(r.output, "pending") >= 2);  // a sweep: at least two cells, none run
    CHECK(r.output.find("changed") == std::string::npos);
  }
  CHECK(suites >= 7);
}
