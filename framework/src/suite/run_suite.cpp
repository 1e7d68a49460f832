// `cbtm suite`: shared seeds, every cell through launch(), then tables and figures; see run_suite.h.
#include "cbtm/suite/run_suite.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <iterator>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/pipeline/launch.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/pipeline/run_config.h"
#include "cbtm/pipeline/run_dir.h"
#include "cbtm/suite/figures.h"
#include "cbtm/suite/suite.h"
#include "cbtm/suite/suite_results.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

// What a shared seed depends on: the run seed, the data, tokenizer, model and seed_lm -- but
// not what of each document clustering embeds (data.cluster_text*: the seed trains on whole
// documents), so routing-aware clustering variants share one seed.
std::string seed_group_text(const RunConfig& cfg) {
  YAML::Node data = YAML::Clone(cfg.resolved()["data"]);
  data.remove("cluster_text");
  data.remove("cluster_text_chars");
  YAML::Emitter e;
  e.SetMapFormat(YAML::Flow);
  e.SetSeqFormat(YAML::Flow);
  e << data;
  return cfg.section_text({"seed"}) + "data: " + e.c_str() + "\n" + cfg.section_text({"tokenizer", "model", "seed_lm"});
}

struct Planned {
  SuiteCell cell;
  std::string dir;          // DIR/cells/NAME
  std::string shared;       // DIR/shared/seed-FP ("" : the cell trains its own seed)
  std::string scheduler;
  double poll_s = 5;
};

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string seed_run_id(const std::string& shared) {
  const nlohmann::json r = RunDir(shared).record("seed");
  return r.is_null() ? "" : r.value("run_id", "");
}

std::vector<std::string> shared_overrides(const std::string& shared) {
  const RunDir s(shared);
  return {"data.tokenizer_from=" + s.tokenizer(), "seed_lm.init=" + (fs::path(s.seed_dir()) / "final").string(),
          "seed_lm.tokens=0"};
}

/// "finished" | "pending" | "changed: ..." (the cell's directory holds a run of another config).
std::string cell_state(PluginHost& host, const std::string& base, const std::vector<std::string>& overrides,
                       const std::string& dir) {
  if (RunDir(dir).record("eval").is_null()) return "pending";
  try {
    Pipeline p(host, RunConfig::load(base, overrides, host), dir);
    return p.finished("eval") ? "finished" : "pending";
  } catch (const Error& e) {
    return std::string("changed: ") + e.what();
  }
}

void tabulate(const Suite& suite, const std::vector<SuiteCell>& all, const std::string& dir,
              const std::vector<std::pair<std::string, std::string>>& failed, const std::string& gnuplot) {
  nlohmann::json collected = collect_suite_results(suite, all, dir, failed);
  const auto figs = draw_figures(suite, collected, dir, gnuplot);
  collected["figures"] = nlohmann::json::array();
  for (const auto& f : figs)
    collected["figures"].push_back({{"name", f.name},
                                    {"svg", f.svg.empty() ? "" : fs::relative(f.svg, dir).string()},
                                    {"data", f.data.empty() ? "" : fs::relative(f.data, dir).string()},
                                    {"table", f.markdown.empty() ? "" : "figures/" + f.name + ".md"},
                                    {"note", f.note}});
  write_file_atomic((fs::path(dir) / "results.json").string(), collected.dump(2) + "\n");
  write_file_atomic((fs::path(dir) / "results.csv").string(), suite_csv(collected));
  std::string md = suite_markdown(collected);
  for (const auto& f : figs)
    if (!f.markdown.empty()) md += "\n" + f.markdown;
  write_file_atomic((fs::path(dir) / "results.md").string(), md);
  write_file_atomic((fs::path(dir) / "terms.md").string(), suite_terms_markdown(collected));
  size_t done = 0;
  for (const auto& c : collected["cells"]) done += c["status"] == "finished";
  spdlog::info("[suite] {} of {} cells finished; tables {}/results.{{md,csv,json}}, figures {}/figures\n\n{}", done,
               all.size(), dir, dir, md);
}

}  // namespace

int run_suite(const SuiteRequest& req, PluginHost& host) {
  const auto start = std::chrono::steady_clock::now();
  const Suite suite = Suite::load(req.suite, req.overrides);
  check_figures(suite);
  const std::vector<SuiteCell> all = suite.cells();
  std::vector<SuiteCell> cells;
  if (req.cells.empty()) {
    cells = all;
  } else {
    for (const auto& want : req.cells) {
      bool found = false;
      for (const auto& c : all)
        if (c.name == want) {
          cells.push_back(c);
          found = true;
        }
      if (!found) {
        std::string names;
        for (const auto& c : all) names += "\n  " + c.name;
        throw Error("--cell " + want + ": " + suite.file + " has no such cell; its cells:" + names);
      }
    }
  }
  const std::string dir = fs::absolute(req.out).lexically_normal().string();
  make_dirs(dir);

  // Resolve and validate every cell's config before anything runs. A shared seed is always
  // made with the overrides of its group's first cell in suite order -- selected or not -- so
  // `--cell` picks the same shared run directory, with the same config, as a whole run.
  std::vector<Planned> plan;
  std::map<std::string, std::vector<std::string>> group_overrides;  // shared dir -> first cell's overrides
  std::set<std::string> selected, borrowed, memo_logged;
  for (const auto& c : cells) selected.insert(c.name);
  for (const auto& c : all) {
    RunConfig cfg = [&] {
      try {
        return RunConfig::load(suite.base, c.overrides, host);
      } catch (const Error& e) {
        throw Error(suite.file + ": cell " + c.name + ": " + e.what());
      }
    }();
    Planned p;
    p.cell = c;
    if (suite.ensemble_grid.IsMap()) {  // more ensembles: only the eval stage sees them
      const YAML::Node k = cfg.resolved()["clusterer"]["k"];
      p.cell.overrides.push_back(
          override_text("eval.ensembles", suite.grid_ensembles(cfg.resolved()["eval"]["ensembles"], k ? k.as<int64_t>() : 0)));
    }
    p.dir = (fs::path(dir) / "cells" / c.name).string();
    p.scheduler = req.scheduler.empty() ? cfg.launch.scheduler : req.scheduler;
    p.poll_s = cfg.slurm.poll_s;
    if (p.scheduler != "local" && p.scheduler != "slurm")
      throw Error("--scheduler " + p.scheduler + ": expected local or slurm");
    if (suite.share_seed && cfg.seed_lm.tokens > 0 && cfg.seed_lm.init.empty() && cfg.data.tokenizer_from.empty()) {
      const std::string fp = fingerprint(seed_group_text(cfg));
      p.shared = (fs::path(dir) / "shared" / ("seed-" + fp)).string();
      auto finished = [&](const std::string& cand) {
        return !seed_run_id(cand).empty() && fs::exists(fs::path(cand) / "seed" / "final" / "config.json");
      };
      // A borrowed seed is remembered beside where the suite's own would be, so a rerun without
      // --seed-from (e.g. --redo eval) keeps using it instead of pretraining a seed of its own.
      const fs::path memo = fs::path(dir) / "shared" / ("seed-" + fp + ".borrowed");
      for (const auto& other : req.seed_from) {  // a finished seed of another suite: borrowed
        const std::string cand = (fs::absolute(other) / "shared" / ("seed-" + fp)).lexically_normal().string();
        if (finished(cand)) {
          p.shared = cand;
          borrowed.insert(cand);
          if (!req.list_only && (!fs::exists(memo) || read_file(memo.string()) != cand + "\n"))
            write_file_atomic(memo.string(), cand + "\n");
          break;
        }
      }
      if (!borrowed.count(p.shared) && !finished(p.shared) && fs::exists(memo)) {
        std::string cand = read_file(memo.string());
        while (!cand.empty() && (cand.back() == '\n' || cand.back() == '\r')) cand.pop_back();
        if (!finished(cand))
          throw Error("this suite borrowed its shared seed from " + cand + " (" + memo.string() +
                      "), which is no longer a finished seed: pass --seed-from with its suite's directory, or "
                      "delete " + memo.string() + " to pretrain a seed of its own");
        if (memo_logged.insert(cand).second) spdlog::info("[suite] using the shared seed borrowed earlier: {}", cand);
        p.shared = cand;
        borrowed.insert(cand);
      }
      if (!borrowed.count(p.shared)) group_overrides.emplace(p.shared, c.overrides);
    }
    if (selected.count(c.name)) plan.push_back(p);
  }
  {  // only the shared seeds the selected cells use
    std::set<std::string> used;
    for (const auto& p : plan) used.insert(p.shared);
    for (auto it = group_overrides.begin(); it != group_overrides.end();)
      it = used.count(it->first) ? std::next(it) : group_overrides.erase(it);
  }
  {
    YAML::Node record = YAML::Clone(suite.tree);
    record["base"] = suite.base;
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& p : plan) {
      YAML::Node n;
      n["name"] = p.cell.name;
      n["overrides"] = p.cell.overrides;
      if (!p.shared.empty()) n["shared_seed"] = fs::relative(p.shared, dir).string();
      list.push_back(n);
    }
    record["cells_run"] = list;
    write_file_atomic((fs::path(dir) / "suite.yaml").string(),
                      "# written by cbtm suite from " + suite.file + "\n" + YAML::Dump(record) + "\n");
  }

  if (req.list_only) {
    std::printf("%-48s %s\n", "cell", "status");
    for (const auto& p : plan) {
      std::vector<std::string> o = p.cell.overrides;
      if (!p.shared.empty()) for (const auto& s : shared_overrides(p.shared)) o.push_back(s);
      std::printf("%-48s %s\n", p.cell.name.c_str(), cell_state(host, suite.base, o, p.dir).c_str());
    }
    return 0;
  }

  std::vector<std::pair<std::string, std::string>> failed;
  if (!req.tables_only) {
    spdlog::info("[suite] {}: {} cells ({} selected), {} shared seed(s), output {}", suite.file, all.size(), plan.size(),
                 group_overrides.size(), dir);
    for (const auto& b : borrowed) spdlog::info("[suite] shared seed {} (--seed-from: finished, reused)", b);
    // 1. The shared seeds (tokenizer, clustering, assignment, seed LM), waited for.
    std::map<std::string, std::string> group_error;
    for (const auto& [shared, overrides] : group_overrides) {
      LaunchRequest lr;
      lr.config = suite.base;
      lr.out = shared;
      lr.overrides = overrides;
      lr.scheduler = plan.front().scheduler;
      lr.cbtm_exe = req.cbtm_exe;
      lr.until = "seed";
      lr.wait = true;
      spdlog::info("[suite] shared seed {}", shared);
      try {
        launch(lr, host);
        if (seed_run_id(shared).empty()) throw Error("the seed stage did not finish (logs in " + shared + "/logs)");
      } catch (const LaunchInterrupted&) {
        throw;
      } catch (const Error& e) {
        group_error[shared] = std::string("shared seed ") + shared + ": " + e.what();
        spdlog::error("[suite] {}", group_error[shared]);
      }
    }
    // 2. The cells.
    std::vector<std::string> submitted;
    std::vector<const Planned*> waiting;
    for (size_t i = 0; i < plan.size(); ++i) {
      const Planned& p = plan[i];
      const std::string tag = "cell " + std::to_string(i + 1) + "/" + std::to_string(plan.size()) + " " + p.cell.name;
      if (!p.shared.empty() && group_error.count(p.shared)) {
        failed.push_back({p.cell.name, group_error[p.shared]});
        continue;
      }
      std::vector<std::string> overrides = p.cell.overrides;
      LaunchRequest lr;
      if (!p.shared.empty()) {
        for (const auto& s : shared_overrides(p.shared)) overrides.push_back(s);
        const std::string marker = (fs::path(p.dir) / "suite-cell.json").string();
        const std::string id = seed_run_id(p.shared);
        if (fs::exists(marker)) {
          const nlohmann::json m = nlohmann::json::parse(read_file(marker), nullptr, false);
          if (!m.is_discarded() && m.value("shared_seed_run_id", "") != id && !RunDir(p.dir).record("seed").is_null()) {
            spdlog::info("[suite] {}: its shared seed was retrained since it ran: redoing it from the seed stage", tag);
            lr.redo = {"seed"};
          }
        }
        make_dirs(p.dir);
        write_file_atomic(marker, nlohmann::json{{"format", "cbtm-suite-cell"},
                                                 {"format_version", 1},
                                                 {"suite", suite.file},
                                                 {"cell", p.cell.name},
                                                 {"shared_seed", p.shared},
                                                 {"shared_seed_run_id", id}}
                                          .dump(2) + "\n");
      }
      lr.redo.insert(lr.redo.end(), req.redo.begin(), req.redo.end());
      const std::string state = lr.redo.empty() ? cell_state(host, suite.base, overrides, p.dir) : "pending";
      if (state == "finished") {
        spdlog::info("[suite] {}: finished earlier, skipped", tag);
        continue;
      }
      if (state.rfind("changed", 0) == 0) {
        failed.push_back({p.cell.name, state});
        spdlog::error("[suite] {}: {}", tag, state);
        continue;
      }
      const auto t0 = std::chrono::steady_clock::now();
      spdlog::info("[suite] {}: running ({:.0f} s into the suite)", tag, since(start));
      lr.config = suite.base;
      lr.out = p.dir;
      lr.overrides = overrides;
      lr.scheduler = p.scheduler;
      lr.cbtm_exe = req.cbtm_exe;
      lr.wait = false;
      lr.submitted = &submitted;
      try {
        launch(lr, host);
        if (p.scheduler == "slurm") waiting.push_back(&p);
        else if (RunDir(p.dir).record("eval").is_null())
          throw Error("its eval stage did not finish (logs in " + p.dir + "/logs)");
        else spdlog::info("[suite] {}: finished in {:.0f} s", tag, since(t0));
      } catch (const LaunchInterrupted&) {
        throw;
      } catch (const Error& e) {
        failed.push_back({p.cell.name, e.what()});
        spdlog::error("[suite] {}: failed: {}", tag, e.what());
      }
    }
    if (!waiting.empty()) {
      if (!req.wait) {
        spdlog::info("[suite] {} cell(s) submitted to Slurm; rerun with --tables once they finished (squeue shows them)",
                     waiting.size());
        if (!failed.empty()) {  // the submitted ones are on their way; these are not
          std::string msg = std::to_string(failed.size()) + " of " + std::to_string(plan.size()) + " cells failed:";
          for (const auto& [name, why] : failed) msg += "\n  " + name + ": " + why;
          throw Error(msg + "\n(" + std::to_string(waiting.size()) + " other cell(s) were submitted to Slurm)");
        }
        return 0;
      }
      wait_for_slurm_jobs(submitted, waiting.front()->poll_s);
      for (const Planned* p : waiting)
        if (RunDir(p->dir).record("eval").is_null())
          failed.push_back({p->cell.name, "its Slurm jobs left the queue but eval did not finish (logs in " + p->dir +
                                              "/logs); rerun the same command to resubmit what is missing"});
    }
  }

  tabulate(suite, all, dir, failed, req.gnuplot);
  if (!failed.empty()) {
    std::string msg = std::to_string(failed.size()) + " of " + std::to_string(plan.size()) + " cells failed:";
    for (const auto& [name, why] : failed) msg += "\n  " + name + ": " + why;
    throw Error(msg + "\nthe others' results are in " + dir + "/results.md; rerun the same command to resume");
  }
  spdlog::info("[suite] done in {:.0f} s ({})", since(start), dir);
  return 0;
}

}  // namespace cbtm
