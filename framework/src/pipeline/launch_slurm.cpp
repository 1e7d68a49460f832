// `cbtm launch` with scheduler slurm: the pipeline as a chain of sbatch jobs (job arrays for
// the assign shards, the experts and the baselines), then optionally wait for it.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/json_file.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/process_defaults.h"
#include "child_process.h"
#include "launch_jobs.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

/// Job ids still known to squeue, with their states ("12_3" -> RUNNING).
std::map<std::string, std::string> queued(const std::vector<std::string>& ids);

}  // namespace

namespace detail {
namespace {

struct Submitted {
  std::string name;  // cbtm-cluster, cbtm-experts, ...
  std::string id;
  std::vector<std::string> stages;  // what it finishes
};

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string command_line(const LaunchRequest& req, const std::vector<std::string>& args) {
  std::string cmd = shell_quote(req.cbtm_exe);
  for (const auto& a : args) cmd += " " + (a.rfind("$", 0) == 0 || a.rfind("\"$", 0) == 0 ? a : shell_quote(a));
  return cmd;
}

class Submitter {
 public:
  Submitter(const LaunchRequest& req, Pipeline& p) : req_(req), p_(p), s_(p.config().slurm) {
    dir_ = p.dir().path("slurm");
    logs_ = p.dir().path("logs");
    make_dirs(dir_);
    make_dirs(logs_);
  }

  /// Writes OUT/slurm/NAME.sbatch and submits it after `after` (job ids); returns its id.
  std::string submit(const std::string& name, const std::string& array, bool training, int64_t tasks,
                     const std::vector<std::string>& after, const std::string& body) {
    std::ostringstream sh;
    sh << "#!/bin/bash\n"
       << "# written by `cbtm launch --scheduler slurm` for " << p_.dir().root() << "\n"
       << "#SBATCH --job-name=" << name << "\n"
       << "#SBATCH --output=" << logs_ << "/slurm-%x-%A" << (array.empty() ? "" : "_%a") << ".out\n";
    if (!array.empty()) sh << "#SBATCH --array=" << array << "\n";
    if (!s_.partition.empty()) sh << "#SBATCH --partition=" << s_.partition << "\n";
    if (!s_.account.empty()) sh << "#SBATCH --account=" << s_.account << "\n";
    if (!s_.qos.empty()) sh << "#SBATCH --qos=" << s_.qos << "\n";
    if (!s_.time.empty()) sh << "#SBATCH --time=" << s_.time << "\n";
    if (!s_.mem.empty()) sh << "#SBATCH --mem=" << s_.mem << "\n";
    if (s_.cpus_per_task > 0) sh << "#SBATCH --cpus-per-task=" << s_.cpus_per_task << "\n";
    sh << "#SBATCH --ntasks=" << tasks << "\n";
    if (training) {
      sh << "#SBATCH --nodes=" << s_.nodes_per_expert << "\n";
      if (s_.gpus_per_task > 0) sh << "#SBATCH --gpus-per-task=" << s_.gpus_per_task << "\n";
    } else {
      sh << "#SBATCH --nodes=1\n";
    }
    for (const auto& e : s_.extra) sh << "#SBATCH " << e << "\n";
    sh << "set -euo pipefail\n"
       << "cd " << shell_quote(fs::current_path().string()) << "\n";
    if (s_.cpus_per_task > 0) sh << "export OMP_NUM_THREADS=" << s_.cpus_per_task << "\n";
    // sbatch exports this process's environment: the OpenMP policy cbtm chose for the submitting
    // machine's cores (process_defaults.h) is not the compute node's, which chooses its own
    const std::vector<std::string> chosen = openmp_variables_set_here();
    if (!chosen.empty()) sh << "unset " << join(chosen, " ") << "\n";
    sh << body;
    const std::string script = dir_ + "/" + name + ".sbatch";
    write_file_atomic(script, sh.str());

    std::vector<std::string> argv = {"sbatch", "--parsable"};
    if (!after.empty()) {
      argv.push_back("--dependency=afterok:" + join(after, ":"));
      argv.push_back("--kill-on-invalid-dep=yes");
    }
    argv.push_back(script);
    const CommandResult r = run_command(argv);
    std::string out = r.output;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (r.status != 0)
      throw Error("sbatch " + script + " failed (exit status " + std::to_string(r.status) + "): " + out);
    std::string id = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    id = id.substr(0, id.find(';'));
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
      throw Error("sbatch " + script + ": unexpected output '" + out + "' (expected a job id)");
    spdlog::info("[launch] submitted {} as job {}{} ({})", name, id, array.empty() ? "" : " array " + array, script);
    return id;
  }

  std::string threads_flag() const {
    return s_.cpus_per_task > 0 ? "runtime.threads=" + std::to_string(s_.cpus_per_task) : "";
  }

  std::string cbtm(const std::vector<std::string>& sub, bool set_threads = true) const {
    std::vector<std::string> args = cbtm_args(req_, sub);
    if (set_threads && !threads_flag().empty()) args.insert(args.end(), {"--set", threads_flag()});
    return command_line(req_, args);
  }

 private:
  const LaunchRequest& req_;
  Pipeline& p_;
  const SlurmOptions& s_;
  std::string dir_, logs_;
};

// OUT/slurm/submitted.json: the job ids of the last submission for this run directory.
std::string submitted_file(Pipeline& p) { return p.dir().path("slurm/submitted.json"); }

std::vector<std::string> earlier_jobs(Pipeline& p) {
  const std::string f = submitted_file(p);
  if (!fs::exists(f)) return {};
  const nlohmann::json j = read_json_file(f);
  std::vector<std::string> ids;
  if (j.is_object() && j.contains("jobs") && j["jobs"].is_array())
    for (const auto& id : j["jobs"])
      if (id.is_string()) ids.push_back(id.get<std::string>());
  return ids;
}

std::string array_spec(const std::vector<int>& idx, int64_t throttle) {
  std::vector<std::string> parts;
  for (int i : idx) parts.push_back(std::to_string(i));
  return join(parts, ",") + (throttle > 0 ? "%" + std::to_string(throttle) : "");
}

}  // namespace

int launch_slurm(const LaunchRequest& req, Pipeline& p) {
  // Jobs of an earlier launch still in the queue would run the same stages as a new submission
  // (the second of each would stop at its stage lock, the allocation wasted): wait for them, or
  // with --no-wait refuse, naming them.
  if (const auto earlier = earlier_jobs(p); !earlier.empty()) {
    const auto q = queued(earlier);
    if (!q.empty()) {
      std::vector<std::string> ids;
      for (const auto& [id, state] : q) ids.push_back(id);
      if (!req.wait)
        throw Error("jobs of an earlier `cbtm launch` for " + p.dir().root() + " are still in the queue (" +
                    join(ids, " ") + "); wait for them (squeue -j " + join(ids, ",") + ") or cancel them (scancel " +
                    join(ids, " ") + "), then rerun to submit what is missing");
      spdlog::info("[launch] jobs of an earlier launch are still in the queue ({}): waiting for them first",
                   join(ids, " "));
      wait_for_slurm_jobs(ids, p.config().slurm.poll_s);
    }
  }
  Submitter sub(req, p);
  const int64_t procs = p.config().launch.procs_per_expert;
  std::vector<Submitted> jobs;
  std::vector<std::string> after;
  auto chain = [&](Submitted s) {
    jobs.push_back(s);
    after = {s.id};
  };

  if (!p.finished("tokenizer") || !p.finished("cluster"))
    chain({"cbtm-cluster", sub.submit("cbtm-cluster", "", false, 1, after, "exec " + sub.cbtm({"cluster"}) + "\n"),
           {"cluster"}});
  if (!p.finished("assign")) {
    const size_t shards = p.assign_inputs().size();
    std::vector<int> idx;
    for (size_t i = 0; i < shards; ++i) idx.push_back(static_cast<int>(i));
    chain({"cbtm-assign",
           sub.submit("cbtm-assign", array_spec(idx, p.config().slurm.array_limit), false, 1, after,
                      "exec " + sub.cbtm({"assign", "--shard", "$SLURM_ARRAY_TASK_ID"}) + "\n"),
           {}});
  }
  if (!p.finished("assign") || !p.finished("seed"))
    chain({"cbtm-seed",
           sub.submit("cbtm-seed", "", false, 1, after,
                      sub.cbtm({"assign", "--merge"}) + "\nexec " + sub.cbtm({"train", "--seed"}) + "\n"),
           {"assign", "seed"}});

  const std::vector<TrainJobSpec> pending =
      req.until == "seed" ? std::vector<TrainJobSpec>{} : unfinished_train_jobs(req, p);
  std::vector<int> experts, baselines;
  std::vector<std::string> expert_stages, baseline_stages, baseline_names;
  for (const auto& j : pending) {
    if (j.stage.rfind("expert-", 0) == 0) {
      experts.push_back(j.index);
      expert_stages.push_back(j.stage);
    } else {
      baselines.push_back(j.index);
      baseline_stages.push_back(j.stage);
    }
  }
  const std::string srun = procs > 1 ? "srun --kill-on-bad-exit=1 " : "exec ";
  std::vector<std::string> train_jobs;
  if (!experts.empty()) {
    const std::string id = sub.submit(
        "cbtm-experts", array_spec(experts, p.config().slurm.array_limit), true, procs, after,
        srun + sub.cbtm({"train", "--expert", "$SLURM_ARRAY_TASK_ID", "--no-baselines"}) + "\n");
    jobs.push_back({"cbtm-experts", id, expert_stages});
    train_jobs.push_back(id);
  }
  if (!baselines.empty()) {
    std::string names = "names=(";
    for (const auto& n : p.baseline_types()) names += " " + shell_quote(n);
    names += " )\n";
    const std::string id = sub.submit(
        "cbtm-baselines", array_spec(baselines, p.config().slurm.array_limit), true, procs, after,
        names + srun + sub.cbtm({"train", "--baseline", "\"${names[$SLURM_ARRAY_TASK_ID]}\""}) + "\n");
    jobs.push_back({"cbtm-baselines", id, baseline_stages});
    train_jobs.push_back(id);
  }
  if (!train_jobs.empty()) after = train_jobs;
  if (req.until != "seed" && !p.finished("eval"))
    jobs.push_back({"cbtm-eval", sub.submit("cbtm-eval", "", false, 1, after, "exec " + sub.cbtm({"eval"}) + "\n"),
                    {"eval"}});
  if (jobs.empty()) {
    spdlog::info("[launch] every stage finished earlier; nothing submitted");
    return 0;
  }
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.id);
  write_file_atomic(submitted_file(p), nlohmann::json({{"jobs", ids}}).dump() + "\n");
  spdlog::info("[launch] {} jobs submitted: {} (watch: squeue -j {})", jobs.size(), join(ids, " "), join(ids, ","));
  if (req.submitted) req.submitted->insert(req.submitted->end(), ids.begin(), ids.end());
  if (!req.wait) return 0;

  wait_for_slurm_jobs(ids, p.config().slurm.poll_s);
  std::vector<std::string> missing;
  for (const auto& j : jobs)
    for (const auto& st : j.stages)
      if (!p.finished(st)) missing.push_back(st + " (job " + j.name + " " + j.id + ", logs " + p.dir().path("logs") + "/slurm-" + j.name + "-" + j.id + "*.out)");
  p.write_manifest();
  if (!missing.empty())
    throw Error("the Slurm jobs left the queue but " + std::to_string(missing.size()) +
                " stage(s) did not finish:\n  " + join(missing, "\n  ") +
                "\nrerun the same command to resubmit only what is missing");
  spdlog::info("[launch] every job finished; results in {}", p.dir().results());
  return 0;
}

}  // namespace detail


namespace {

std::map<std::string, std::string> queued(const std::vector<std::string>& ids) {
  const detail::CommandResult r = detail::run_command({"squeue", "-h", "-o", "%i %T", "-j", detail::join(ids, ",")});
  std::map<std::string, std::string> out;
  if (r.status != 0) {
    if (r.output.find("Invalid job id") != std::string::npos) return out;  // all gone
    throw Error("squeue failed (exit status " + std::to_string(r.status) + "): " + r.output);
  }
  std::istringstream in(r.output);
  std::string id, state;
  static const std::set<std::string> kEnded = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY",
                                                "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT"};
  while (in >> id >> state)
    if (!kEnded.count(state)) out[id] = state;
  return out;
}

}  // namespace

void wait_for_slurm_jobs(const std::vector<std::string>& ids, double poll_s) {
  if (ids.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  std::string last;
  for (;;) {
    const auto q = queued(ids);
    if (q.empty()) break;
    std::map<std::string, int> counts;
    for (const auto& [id, state] : q) ++counts[state];
    std::string line;
    for (const auto& [state, n] : counts) line += (line.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    if (line != last) {
      spdlog::info("[launch] {:.0f} s: {} task(s) in the queue: {}",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), q.size(), line);
      last = line;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(poll_s));
  }
}

}  // namespace cbtm
