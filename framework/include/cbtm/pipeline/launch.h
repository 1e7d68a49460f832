#pragma once
/// \file launch.h
/// `cbtm launch`: the whole pipeline with the embarrassingly parallel part -- one job per
/// expert (and per baseline), no communication between them -- run as independent jobs.
///
///   local   the preparation stages (tokenizer, cluster, assign, seed) run in this process;
///           then every unfinished expert/baseline is a child process `cbtm train --expert J`
///           (or `--baseline NAME`), at most `launch.max_parallel` at a time, each logging to
///           OUT/logs/STAGE.log; then eval. A failed job does not stop the others; the launch
///           fails at the end, naming it, and a rerun resumes (finished jobs are skipped, a
///           killed one resumes from its last checkpoint). The jobs die with the launcher
///           (SIGINT/SIGTERM are passed on; on SIGKILL the kernel sends them SIGTERM), so no
///           orphan keeps writing into the run directory.
///   slurm   submits the same stages as Slurm jobs chained by `--dependency=afterok`: cluster,
///           assign (a job array, one task per input shard, then a merge job), seed, the
///           experts (one job array, one task per expert, `%array_limit`), the baselines (one
///           array), eval. Resources come from `launch.slurm`. With --wait it polls squeue
///           until the chain has left the queue and then checks the run directory.
///
/// With `launch.procs_per_expert` = P > 1 every expert is data-parallel over P processes
/// (locally: RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT; on Slurm: `srun` over P tasks).
#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "cbtm/error.h"

namespace cbtm {

/// Thrown when SIGINT/SIGTERM stopped a local launch (its jobs were stopped; rerun to resume).
class LaunchInterrupted : public Error {
 public:
  using Error::Error;
};

class PluginHost;

/// `launch.slurm:` -- resources of the Slurm jobs (empty/0: Slurm's default).
struct SlurmOptions {
  std::string partition;
  std::string account;
  std::string qos;
  std::string time;
  int64_t cpus_per_task = 0;
  std::string mem;
  int64_t gpus_per_task = 0;
  int64_t nodes_per_expert = 1;
  int64_t array_limit = 0;
  std::vector<std::string> extra;
  double poll_s = 5;

  template <class V> void visit(V& v) {
    v("partition", partition, "sbatch --partition ('' : the cluster's default)");
    v("account", account, "sbatch --account ('' : none)");
    v("qos", qos, "sbatch --qos ('' : none)");
    v("time", time, "sbatch --time per job, e.g. 04:00:00 ('' : the partition's limit)");
    v("cpus_per_task", cpus_per_task,
      "sbatch --cpus-per-task (0: Slurm's default); each job's runtime.threads is set to it");
    v("mem", mem, "sbatch --mem per node, e.g. 16G ('' : Slurm's default)");
    v("gpus_per_task", gpus_per_task, "sbatch --gpus-per-task for expert and baseline jobs (0: none)");
    v("nodes_per_expert", nodes_per_expert,
      "sbatch --nodes of an expert job (its launch.procs_per_expert tasks are spread over them)");
    v("array_limit", array_limit, "tasks of one job array running at once (the array's %N; 0: no limit)");
    v("extra", extra, "more #SBATCH lines, verbatim, e.g. ['--constraint=amx', '--exclusive']");
    v("poll_s", poll_s, "seconds between squeue polls while the launch waits for its jobs (unless --no-wait)");
  }
  void validate() const;
};

/// `launch:` -- how `cbtm launch` runs the independent jobs.
struct LaunchOptions {
  std::string scheduler = "local";
  int64_t max_parallel = 1;
  int64_t threads_per_job = 0;
  int64_t procs_per_expert = 1;
  int64_t master_port = 29500;
  double progress_s = 30;
  std::vector<std::string> gpus;
  YAML::Node slurm;  ///< parsed into SlurmOptions (RunConfig::slurm)

  template <class V> void visit(V& v) {
    v("scheduler", scheduler, "local (child processes on this machine) | slurm (sbatch job arrays)");
    v("max_parallel", max_parallel,
      "local: expert/baseline jobs running at once (0: all; on Slurm see launch.slurm.array_limit)");
    v("threads_per_job", threads_per_job,
      "local: runtime.threads of each training process (0: cores / (max_parallel x procs_per_expert))");
    v("procs_per_expert", procs_per_expert,
      "data-parallel processes per expert or baseline (gradients all-reduced: Gloo on CPU, NCCL on GPUs; 1: none)");
    v("master_port", master_port,
      "local data parallel: job J's rendezvous port is master_port + J (one per concurrent job)");
    v("progress_s", progress_s, "seconds between progress lines (the last log line of each running job)");
    v("gpus", gpus,
      "local: GPUs handed out to the training jobs as CUDA_VISIBLE_DEVICES, procs_per_expert each, so "
      "concurrent jobs do not share one; a job's ranks see its GPUs and take one each by LOCAL_RANK "
      "(e.g. [0, 1, 2, 3]; []: every process sees every GPU and uses the first)");
    v("slurm", slurm, "Slurm resources: the keys of launch.slurm below");
  }
  void validate() const;
};

/// What `cbtm launch` was asked to do.
struct LaunchRequest {
  std::string config;                  ///< the run config file
  std::string out;                     ///< run directory
  std::vector<std::string> overrides;  ///< --set key=value (passed on to every job)
  std::vector<std::string> redo;       ///< --redo STAGE: forgotten here before any job starts
  std::string scheduler;               ///< --scheduler (overrides launch.scheduler when set)
  bool wait = true;                    ///< slurm: wait for the chain and check the results
  std::string cbtm_exe;                ///< the cbtm executable the jobs run (absolute)
  /// "seed": only the preparation stages and the seed LM (no experts, baselines or eval);
  /// "": everything.
  std::string until;
  /// slurm: receives the ids of the jobs submitted (when not null).
  std::vector<std::string>* submitted = nullptr;
};

/// Runs the request; returns the exit status (0: every requested stage finished). Throws
/// Error on bad config or when a job fails (naming the job and its log).
int launch(const LaunchRequest& req, PluginHost& host);

/// Polls squeue every `poll_s` seconds until none of the jobs `ids` (job or array ids) is
/// queued or running any more, logging changes of the queue's state.
void wait_for_slurm_jobs(const std::vector<std::string>& ids, double poll_s);

}  // namespace cbtm
