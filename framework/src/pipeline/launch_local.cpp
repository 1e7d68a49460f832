// `cbtm launch` with scheduler local: preparation in this process, then every expert and
// baseline as its own child process (at most launch.max_parallel at once), then eval.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>

#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/runtime.h"
#include "child_process.h"
#include "launch_jobs.h"

namespace cbtm::detail {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int sig) { g_stop = sig; }

struct SignalScope {
  struct sigaction old_int {}, old_term {};
  SignalScope() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_stop = 0;
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
};

struct Running {
  TrainJobSpec spec;
  std::vector<Child> procs;  // rank 0 first
  std::vector<int> status;   // -1 while running
  std::chrono::steady_clock::time_point start;
  int64_t slot = 0;  // 0..parallel-1: which launch.gpus its ranks take
};

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int launch_local(const LaunchRequest& req, Pipeline& p) {
  const LaunchOptions& o = p.config().launch;
  p.tokenize();
  p.cluster();
  p.assign();
  p.train_seed();
  if (req.until == "seed") return 0;

  std::vector<TrainJobSpec> pending = unfinished_train_jobs(req, p);
  const int64_t procs = o.procs_per_expert;
  // at least 1: with nothing pending (a rerun of a finished launch) and max_parallel 0 ("all")
  // it would be 0, and the thread count below a division by zero
  const int64_t parallel = std::max<int64_t>(
      1, std::min<int64_t>(o.max_parallel == 0 ? static_cast<int64_t>(pending.size()) : o.max_parallel,
                           std::max<size_t>(pending.size(), 1)));
  const int threads = o.threads_per_job > 0
                          ? static_cast<int>(o.threads_per_job)
                          : std::max(1, static_cast<int>(runtime().resolved_threads() / (parallel * procs)));
  const std::string logs = p.dir().path("logs");
  make_dirs(logs);
  if (!pending.empty())
    spdlog::info("[launch] {} training jobs, {} at a time, {} process(es) each with {} thread(s); logs in {}",
                 pending.size(), parallel, procs, threads, logs);

  // launch.gpus: job slot k takes gpus[(k * procs + r) mod n] for r < procs, so concurrent jobs
  // do not share a device; all of a job's ranks see the job's GPUs (NCCL can then reach its
  // peers directly) and each picks its own by LOCAL_RANK
  std::vector<int64_t> free_slots;
  for (int64_t k = parallel - 1; k >= 0; --k) free_slots.push_back(k);
  if (!o.gpus.empty() && !pending.empty() && static_cast<int64_t>(o.gpus.size()) < parallel * procs)
    spdlog::warn("[launch] {} GPUs (launch.gpus) for {} concurrent processes ({} jobs x {} ranks): some share a GPU",
                 o.gpus.size(), parallel * procs, parallel, procs);

  SignalScope signals;
  std::vector<Running> running;
  std::vector<std::string> failed;
  size_t next = 0, finished = 0;
  int slot_port = 0;
  auto last_progress = std::chrono::steady_clock::now();
  const size_t total = pending.size();
  while (next < pending.size() || !running.empty()) {
    if (g_stop) {
      for (auto& r : running)
        for (auto& c : r.procs) terminate(c);
      for (auto& r : running)
        for (size_t i = 0; i < r.procs.size(); ++i)
          if (r.status[i] < 0) wait_exit(r.procs[i]);
      throw LaunchInterrupted(std::string("launch interrupted (") + (g_stop == SIGINT ? "SIGINT" : "SIGTERM") +
                  "); the training jobs were stopped -- rerun the same command to resume from their checkpoints");
    }
    while (next < pending.size() && static_cast<int64_t>(running.size()) < parallel) {
      Running r;
      r.spec = pending[next++];
      r.start = std::chrono::steady_clock::now();
      r.slot = free_slots.back();
      free_slots.pop_back();
      std::string gpus_used;  // this job's, as CUDA_VISIBLE_DEVICES takes them
      if (!o.gpus.empty()) {
        std::vector<std::string> mine;
        for (int64_t rank = 0; rank < procs; ++rank) {
          const std::string& g = o.gpus[static_cast<size_t>(r.slot * procs + rank) % o.gpus.size()];
          if (std::find(mine.begin(), mine.end(), g) == mine.end()) mine.push_back(g);
        }
        for (const auto& g : mine) gpus_used += (gpus_used.empty() ? "" : ",") + g;
      }
      const int port = static_cast<int>(o.master_port) + (slot_port++ % 1000);
      for (int64_t rank = 0; rank < procs; ++rank) {
        std::vector<std::string> argv = {req.cbtm_exe};
        argv.insert(argv.end(), r.spec.args.begin(), r.spec.args.end());
        argv.insert(argv.end(), {"--set", "runtime.threads=" + std::to_string(threads)});
        std::vector<std::pair<std::string, std::string>> env = {{"OMP_NUM_THREADS", std::to_string(threads)}};
        if (procs > 1)
          env.insert(env.end(), {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", std::to_string(procs)},
                                 {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)}});
        if (!gpus_used.empty()) {
          env.emplace_back("CUDA_VISIBLE_DEVICES", gpus_used);
          if (procs > 1) env.emplace_back("LOCAL_RANK", std::to_string(rank));  // cuda:rank of those
        }
        const std::string log = logs + "/" + r.spec.stage + (rank ? ".rank" + std::to_string(rank) : "") + ".log";
        r.procs.push_back(spawn(argv, env, log));
        r.status.push_back(-1);
      }
      spdlog::info("[launch] {} started (pid {}{}{}), log {}", r.spec.stage, r.procs[0].pid,
                   procs > 1 ? ", " + std::to_string(procs) + " data-parallel ranks" : "",
                   gpus_used.empty() ? "" : ", GPU " + gpus_used, r.procs[0].log);
      running.push_back(std::move(r));
    }
    for (size_t i = 0; i < running.size();) {
      Running& r = running[i];
      bool all_done = true;
      for (size_t k = 0; k < r.procs.size(); ++k) {
        if (r.status[k] < 0) r.status[k] = poll_exit(r.procs[k]);
        all_done = all_done && r.status[k] >= 0;
      }
      // a failed rank leaves its peers blocked in a collective: stop them
      bool any_failed = false;
      for (int s : r.status) any_failed = any_failed || s > 0;
      if (any_failed && !all_done)
        for (size_t k = 0; k < r.procs.size(); ++k)
          if (r.status[k] < 0) terminate(r.procs[k]);
      if (!all_done) {
        ++i;
        continue;
      }
      ++finished;
      int status = 0;
      for (int s : r.status) status = std::max(status, s);
      if (status == 0 && p.finished(r.spec.stage)) {
        spdlog::info("[launch] {} finished in {:.1f} s ({}/{} done)", r.spec.stage, since(r.start), finished, total);
      } else {
        spdlog::error("[launch] {} FAILED (exit status {}); the other jobs go on. Last lines of {}:\n{}",
                      r.spec.stage, status, r.procs[0].log, tail_lines(r.procs[0].log, 6));
        failed.push_back(r.spec.stage + " (" + r.procs[0].log + ")");
      }
      free_slots.push_back(r.slot);
      running.erase(running.begin() + static_cast<long>(i));
    }
    if (since(last_progress) >= o.progress_s && !running.empty()) {
      last_progress = std::chrono::steady_clock::now();
      for (const auto& r : running)
        spdlog::info("[launch] {} running {:.0f} s: {}", r.spec.stage, since(r.start), last_line(r.procs[0].log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  p.write_manifest();
  if (!failed.empty()) {
    std::string list;
    for (const auto& f : failed) list += "\n  " + f;
    throw Error(std::to_string(failed.size()) + " of " + std::to_string(total) +
                " training jobs failed (the others finished; rerun the same command to retry only these):" + list);
  }
  p.eval();
  return 0;
}

}  // namespace cbtm::detail
