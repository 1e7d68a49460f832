#include <cstdio>
#include <filesystem>
#include <set>

#include <spdlog/spdlog.h>

#include "cbtm/json_file.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/pipeline/results_table.h"
#include "cbtm/pipeline/run_config.h"
#include "commands.h"

namespace cbtm::app {

namespace {
// The evaluation table of a finished run on stdout: the result of run/eval/launch (logs go to
// stderr, so `cbtm run ... > table.txt` keeps just this).
void print_results(const std::string& results_json) {
  if (!std::filesystem::exists(results_json)) return;
  std::fputs(format_results(read_json_file(results_json)).c_str(), stdout);
  std::fflush(stdout);
}
}  // namespace

int run_pipeline(const std::string& command, const PipelineArgs& a, PluginHost& host) {
  RunConfig cfg = RunConfig::load(a.config, a.set, host);
  Pipeline p(host, std::move(cfg), a.out);
  p.redo(std::set<std::string>(a.redo.begin(), a.redo.end()));
  if (command == "run") p.run();
  else if (command == "cluster") {
    p.tokenize();
    p.cluster();
  } else if (command == "assign") {
    if (a.count_shards) {
      std::printf("%zu\n", p.assign_inputs().size());
      return 0;
    }
    if (a.shard >= 0) p.assign_shard(a.shard);
    if (a.merge) p.merge_assign();
    if (a.shard < 0 && !a.merge) p.assign();
  }
  else if (command == "eval") p.eval();
  else if (command == "train") {
    const bool only_seed = a.seed_only;
    const bool only_experts = !a.experts.empty();
    const bool only_baselines = !a.baselines.empty();
    if (only_seed && (only_experts || only_baselines))
      throw Error("train: --seed trains the seed LM only; --expert and --baseline train from it (another invocation)");
    if (a.no_baselines && only_baselines) throw Error("train: --no-baselines and --baseline contradict each other");
    // --expert and --baseline together: the listed experts and the listed baselines
    if (only_seed || (!only_experts && !only_baselines)) p.train_seed();
    if (!only_seed && (only_experts || !only_baselines))
      p.train_experts(std::vector<int32_t>(a.experts.begin(), a.experts.end()));
    if (!only_seed && (only_baselines || (!only_experts && !a.no_baselines))) p.train_baselines(a.baselines);
  }
  spdlog::info("{}: done ({})", command, a.out);
  if (command == "run" || command == "eval") print_results(p.dir().results());
  return 0;
}

int run_launch(LaunchRequest req, PluginHost& host) {
  namespace fs = std::filesystem;
  req.config = fs::absolute(req.config).string();
  req.out = fs::absolute(req.out).lexically_normal().string();
  std::error_code ec;
  req.cbtm_exe = fs::read_symlink("/proc/self/exe", ec).string();
  const int rc = launch(req, host);
  spdlog::info("launch: done ({})", req.out);
  if (rc == 0 && req.until.empty() && req.wait) print_results(req.out + "/results.json");  // slurm --no-wait: not yet
  return rc;
}

int run_suite_command(SuiteRequest req, PluginHost& host) {
  std::error_code ec;
  req.cbtm_exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  return run_suite(req, host);
}

int print_config(const std::string& config, const std::vector<std::string>& set, PluginHost& host) {
  RunConfig cfg = RunConfig::load(config, set, host);
  std::fputs(cfg.yaml().c_str(), stdout);
  return 0;
}

}  // namespace cbtm::app
