// `cbtm launch`: load the config, then hand over to the local or the Slurm scheduler.
#include "cbtm/pipeline/launch.h"

#include <set>

#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/pipeline/run_config.h"
#include "launch_jobs.h"

namespace cbtm {
namespace detail {

std::vector<std::string> cbtm_args(const LaunchRequest& req, const std::vector<std::string>& subcommand) {
  std::vector<std::string> a = subcommand;
  a.insert(a.begin() + 1, {req.config, "--out", req.out});
  for (const auto& s : req.overrides) a.insert(a.end(), {"--set", s});
  return a;
}

std::vector<TrainJobSpec> unfinished_train_jobs(const LaunchRequest& req, const Pipeline& p) {
  std::vector<TrainJobSpec> jobs;
  for (int32_t j = 0; j < p.experts(); ++j) {
    const std::string stage = expert_stage(j);
    if (!p.finished(stage))
      jobs.push_back({stage, cbtm_args(req, {"train", "--expert", std::to_string(j), "--no-baselines"}), j});
  }
  const auto names = p.baseline_types();
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string stage = "baseline-" + names[i];
    if (!p.finished(stage))
      jobs.push_back({stage, cbtm_args(req, {"train", "--baseline", names[i]}), static_cast<int>(i)});
  }
  return jobs;
}

}  // namespace detail

int launch(const LaunchRequest& req, PluginHost& host) {
  if (req.cbtm_exe.empty()) throw Error("launch: the path of the cbtm executable is unknown");
  RunConfig cfg = RunConfig::load(req.config, req.overrides, host);
  const std::string scheduler = req.scheduler.empty() ? cfg.launch.scheduler : req.scheduler;
  if (scheduler != "local" && scheduler != "slurm")
    throw Error("--scheduler " + scheduler + ": expected local or slurm");
  Pipeline p(host, std::move(cfg), req.out);
  p.redo(std::set<std::string>(req.redo.begin(), req.redo.end()));
  if (req.until == "seed")
    spdlog::info("[launch] the tokenizer, clusters and seed LM only, scheduler {}, run directory {}", scheduler, req.out);
  else
    spdlog::info("[launch] {} experts, scheduler {}, run directory {}", p.experts(), scheduler, req.out);
  return scheduler == "local" ? detail::launch_local(req, p) : detail::launch_slurm(req, p);
}

}  // namespace cbtm
