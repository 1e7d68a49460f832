// `cbtm launch` with the local scheduler: the experts and baselines as concurrent child
// processes give exactly what the sequential `cbtm run` gives; a failing expert does not stop
// the others, the launch fails naming it, and a rerun retries only it.
#include "support/catch.h"

#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "cbtm/fs.h"
#include "cli_runner.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using cbtm::test::cbtm_cli;
using nlohmann::json;

TEST_CASE("e2e: launch runs the experts as parallel processes and equals the sequential run") {
  cbtm::test::TempDir t("e2e-launch");
  // on the CPU whatever the machine: with launch.gpus below a GPU machine's jobs would see
  // other GPUs (or none) than the sequential run, and the weights could not be compared bit for bit
  const std::string cfg = cbtm::test::tiny_config() + " --set runtime.threads=1 --set runtime.device=cpu";

  // launch.gpus hands each concurrent job its own GPU (CUDA_VISIBLE_DEVICES; no effect on CPU)
  auto r = cbtm_cli("launch " + cfg + " --out " + t / "par" + " --set launch.max_parallel=3 --set 'launch.gpus=[5, 6, 7]'");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("3 training jobs, 3 at a time") != std::string::npos);
  for (const char* gpu : {"GPU 5)", "GPU 6)", "GPU 7)"}) {
    const size_t at = r.output.find(gpu);
    CHECK(at != std::string::npos);
    CHECK(r.output.find(gpu, at + 1) == std::string::npos);  // one job each
  }
  CHECK(r.output.find("share a GPU") == std::string::npos);
  for (const char* stage : {"expert-000", "expert-001", "baseline-dense"}) {
    CHECK(r.output.find(std::string("[launch] ") + stage + " started") != std::string::npos);
    CHECK(r.output.find(std::string("[launch] ") + stage + " finished") != std::string::npos);
    const std::string log = t / ("par/logs/" + std::string(stage) + ".log");
    REQUIRE(fs::exists(log));
    CHECK(cbtm::read_file(log).find("trained") != std::string::npos);
  }
  REQUIRE(fs::exists(t / "par/results.json"));

  REQUIRE(cbtm_cli("run " + cfg + " --out " + t / "seq").status == 0);
  for (const char* model : {"experts/expert-000", "experts/expert-001", "baselines/dense"})
    CHECK(cbtm::read_file(t / ("par/" + std::string(model) + "/final/model.safetensors")) ==
          cbtm::read_file(t / ("seq/" + std::string(model) + "/final/model.safetensors")));
  const json a = json::parse(cbtm::read_file(t / "par/results.json"));
  const json b = json::parse(cbtm::read_file(t / "seq/results.json"));
  CHECK(a["models"] == b["models"]);

  // A second launch finds everything finished and starts nothing.
  r = cbtm_cli("launch " + cfg + " --out " + t / "par");
  REQUIRE(r.status == 0);
  CHECK(r.output.find("started") == std::string::npos);
  r = cbtm_cli("launch " + cfg + " --out " + t / "par" + " --set launch.max_parallel=0");  // "all" of no job: was a division by zero
  CHECK(r.status == 0);

  // Expert 1's data disappears: expert 0 still trains, the launch fails naming expert-001 and
  // its log, eval does not run. (No baseline here: the dense one reads every cluster's data.)
  const std::string fcfg = cfg + " --set 'baselines=[]'";
  REQUIRE(cbtm_cli("cluster " + fcfg + " --out " + t / "fail").status == 0);
  REQUIRE(cbtm_cli("assign " + fcfg + " --out " + t / "fail").status == 0);
  REQUIRE(cbtm_cli("train " + fcfg + " --out " + t / "fail" + " --seed").status == 0);
  fs::rename(t / "fail/clusters/cluster-001", t / "cluster-001.saved");
  r = cbtm_cli("launch " + fcfg + " --out " + t / "fail" + " --set launch.max_parallel=2");
  INFO(r.output);
  CHECK(r.status == 2);
  CHECK(r.output.find("expert-001 FAILED") != std::string::npos);
  CHECK(r.output.find("1 of 2 training jobs failed") != std::string::npos);
  CHECK(r.output.find(t / "fail/logs/expert-001.log") != std::string::npos);
  CHECK(fs::exists(t / "fail/experts/expert-000/final/model.safetensors"));
  CHECK_FALSE(fs::exists(t / "fail/results.json"));
  // restored, the rerun trains only expert-001, then evaluates
  fs::rename(t / "cluster-001.saved", t / "fail/clusters/cluster-001");
  r = cbtm_cli("launch " + fcfg + " --out " + t / "fail");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("1 training jobs") != std::string::npos);
  CHECK(r.output.find("expert-000 started") == std::string::npos);
  CHECK(fs::exists(t / "fail/results.json"));
}

TEST_CASE("e2e: launch.gpus gives a data-parallel job's ranks the job's GPUs and a local rank each") {
  cbtm::test::TempDir t("e2e-launch-dp-gpus");
  // CUDA_VISIBLE_DEVICES names GPUs this machine may not have: on the CPU, whatever it has
  const std::string cfg = cbtm::test::tiny_config() + " --set runtime.threads=1 --set runtime.device=cpu --set 'baselines=[]'";
  auto r = cbtm_cli("launch " + cfg + " --out " + t / "o" +
                    " --set launch.max_parallel=2 --set launch.procs_per_expert=2 --set 'launch.gpus=[3, 4, 5, 6]'");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("2 data-parallel ranks, GPU 3,4)") != std::string::npos);  // slot 0
  CHECK(r.output.find("2 data-parallel ranks, GPU 5,6)") != std::string::npos);  // slot 1
  for (const char* e : {"expert-000", "expert-001"}) {
    CHECK(cbtm::read_file(t / ("o/logs/" + std::string(e) + ".log")).find("rank 0 of 2 (RANK/WORLD_SIZE, local rank 0)") != std::string::npos);
    CHECK(cbtm::read_file(t / ("o/logs/" + std::string(e) + ".rank1.log")).find("rank 1 of 2 (RANK/WORLD_SIZE, local rank 1)") != std::string::npos);
  }
}

TEST_CASE("e2e: launch rejects a bad launch section naming the key") {
  cbtm::test::TempDir t("e2e-launch-bad");
  auto r = cbtm_cli("launch " + cbtm::test::tiny_config() + " --out " + t / "o" + " --set launch.max_parallel=-1");
  CHECK(r.status == 2);
  CHECK(r.output.find("launch.max_parallel") != std::string::npos);
  r = cbtm_cli("launch " + cbtm::test::tiny_config() + " --out " + t / "o" + " --set launch.slurm.nodes_per_expert=0");
  CHECK(r.status == 2);
  CHECK(r.output.find("launch.slurm.nodes_per_expert") != std::string::npos);
  r = cbtm_cli("launch " + cbtm::test::tiny_config() + " --out " + t / "o" + " --set launch.scheduler=pbs");
  CHECK(r.status == 2);
  CHECK(r.output.find("launch.scheduler") != std::string::npos);
  r = cbtm_cli("launch " + cbtm::test::tiny_config() + " --out " + t / "o" + " --set 'launch.gpus=[\"0,1\"]'");
  CHECK(r.status == 2);
  CHECK(r.output.find("launch.gpus") != std::string::npos);
  CHECK(r.output.find("'0,1'") != std::string::npos);
}

namespace {
// Processes whose command line mentions `needle` (e.g. a run directory).
int processes_mentioning(const std::string& needle) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd;
    try {
      cmd = cbtm::read_file(e.path().string() + "/cmdline");
    } catch (...) {
      continue;
    }
    if (cmd.find(needle) != std::string::npos) ++n;
  }
  return n;
}
}  // namespace

TEST_CASE("e2e: a launcher killed with SIGKILL takes its training jobs with it and the rerun resumes them") {
  cbtm::test::TempDir t("e2e-launch-kill");
  const std::string cfg = cbtm::test::tiny_config() +
                          " --set runtime.threads=1 --set 'baselines=[]' --set branch.tokens=400000 --set launch.max_parallel=2";
  REQUIRE(cbtm::test::cbtm_kill_when("launch " + cfg + " --out " + t / "o",
                                     t / "o/experts/expert-000/step-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]", 300));
  // the children get SIGTERM when the launcher dies: none keeps writing into the run
  for (int i = 0; i < 100 && processes_mentioning(t / "o") > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(processes_mentioning(t / "o") == 0);
  CHECK_FALSE(fs::exists(t / "o/experts/expert-000/final"));
  const auto r = cbtm_cli("launch " + cfg + " --out " + t / "o");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(cbtm::read_file(t / "o/logs/expert-000.log").find("resuming from") != std::string::npos);
  CHECK(fs::exists(t / "o/results.json"));
}
