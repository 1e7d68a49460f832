#pragma once
// Internal to `cbtm launch`: the command lines of the jobs it runs (see launch.h).
#include <string>
#include <vector>

#include "cbtm/pipeline/launch.h"

namespace cbtm {

class Pipeline;

namespace detail {

/// One independent training job: an expert or a baseline.
struct TrainJobSpec {
  std::string stage;              ///< expert-NNN | baseline-NAME
  std::vector<std::string> args;  ///< after `cbtm`: train CONFIG --out OUT --expert J ... (no --set)
  int index = 0;                  ///< expert J, or the baseline's position
};

/// `cbtm SUBCOMMAND CONFIG --out OUT` plus the request's overrides, as argv after the executable.
std::vector<std::string> cbtm_args(const LaunchRequest& req, const std::vector<std::string>& subcommand);
/// Every expert and baseline that has not finished yet, experts first.
std::vector<TrainJobSpec> unfinished_train_jobs(const LaunchRequest& req, const Pipeline& p);

int launch_local(const LaunchRequest& req, Pipeline& p);
int launch_slurm(const LaunchRequest& req, Pipeline& p);

}  // namespace detail
}  // namespace cbtm
