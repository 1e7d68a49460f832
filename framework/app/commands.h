#pragma once
// The `cbtm` subcommands (each returns the process exit status).
#include <string>
#include <vector>

#include "cbtm/pipeline/launch.h"
#include "cbtm/plugin_host.h"
#include "cbtm/suite/run_suite.h"

namespace cbtm::app {

/// Options shared by the pipeline subcommands.
struct PipelineArgs {
  std::string config;
  std::string out;
  std::vector<std::string> set;
  std::vector<std::string> redo;
  std::vector<int> experts;            // train --expert
  std::vector<std::string> baselines;  // train --baseline
  bool seed_only = false;              // train --seed
  bool no_baselines = false;           // train --no-baselines
  int64_t shard = -1;                  // assign --shard
  bool merge = false;                  // assign --merge
  bool count_shards = false;           // assign --count-shards
};

struct InspectArgs {
  std::string run;
  std::string compare;
  int terms = 8;
  bool json = false;
};

/// `cbtm launch` (config and out made absolute, the executable found from /proc/self/exe).
int run_launch(LaunchRequest req, PluginHost& host);
/// `cbtm suite` (the executable found from /proc/self/exe).
int run_suite_command(SuiteRequest req, PluginHost& host);
int run_pipeline(const std::string& command, const PipelineArgs& args, PluginHost& host);
int print_config(const std::string& config, const std::vector<std::string>& set, PluginHost& host);
int inspect_run(const InspectArgs& args, PluginHost& host);
/// `cbtm fewshot`: few-shot classification accuracy on a suite (fewshot/task.h).
struct FewShotArgs {
  std::string run, suite, out;
  std::vector<std::string> set;
};
int run_fewshot(const FewShotArgs& args, PluginHost& host);

int list_plugins(const PluginHost& host, const std::string& kind, bool markdown);

}  // namespace cbtm::app

namespace cbtm::app {

/// `cbtm generate`: sample a continuation from a finished run's ensemble.
struct GenerateArgs {
  std::string run, ensemble, prompt, prompt_file;
  std::vector<std::string> set;
  int64_t max_tokens = 64;
  double temperature = 1.0, top_p = 1.0;
  uint64_t seed = 0;
  bool json = false;
  bool ignore_eos = false;
};
int run_generate(const GenerateArgs& args, PluginHost& host);

/// `cbtm serve`: the ensemble behind an HTTP JSON endpoint (ensemble_api.h).
struct ServeArgs {
  std::string run, ensemble, host = "127.0.0.1", port_file;
  std::vector<std::string> set;
  int port = 8080;
  int max_connections = 16;
  int max_queue = 64;
  double queue_timeout_s = 30;
  int64_t max_batch = 16;
};
int run_serve(const ServeArgs& args, PluginHost& host);

}  // namespace cbtm::app
