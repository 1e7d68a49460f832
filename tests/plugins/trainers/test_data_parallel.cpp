// DistEnv: the rendezvous variables of torchrun and Slurm, the local rank that picks a GPU,
// and the errors for malformed values. (Averaging over two real ranks: test_lm_training.)
#include "support/catch_torch.h"  // first: see the header

#include <cstdlib>
#include <string>
#include <vector>

#include "data_parallel.h"

namespace {

// Sets the given variables (and clears every other rendezvous variable) for one scope.
struct EnvScope {
  explicit EnvScope(const std::vector<std::pair<std::string, std::string>>& vars) {
    for (const char* v : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "SLURM_NTASKS",
                          "SLURM_PROCID", "SLURM_LOCALID", "SLURM_JOB_ID", "SLURM_LAUNCH_NODE_IPADDR"}) {
      if (const char* old = std::getenv(v)) saved.emplace_back(v, old);
      unsetenv(v);
      cleared.emplace_back(v);
    }
    for (const auto& [k, v] : vars) setenv(k.c_str(), v.c_str(), 1);
  }
  ~EnvScope() {
    for (const auto& v : cleared) unsetenv(v.c_str());
    for (const auto& [k, v] : saved) setenv(k.c_str(), v.c_str(), 1);
  }
  std::vector<std::pair<std::string, std::string>> saved;
  std::vector<std::string> cleared;
};

}  // namespace

TEST_CASE("data parallel: torchrun's variables, with the local rank") {
  EnvScope env({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "29600"}, {"LOCAL_RANK", "1"}});
  const auto e = cbtm::lm::DistEnv::from_environment();
  CHECK(e.rank == 3);
  CHECK(e.world == 4);
  CHECK(e.addr == "node7");
  CHECK(e.port == 29600);
  CHECK(e.local_rank == 1);
  CHECK(e.source == "RANK/WORLD_SIZE");
}

TEST_CASE("data parallel: Slurm's variables, with the local id, port from the job id") {
  EnvScope env({{"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "5"}, {"SLURM_LOCALID", "1"}, {"SLURM_JOB_ID", "123456"},
                {"SLURM_LAUNCH_NODE_IPADDR", "10.0.0.2"}});
  const auto e = cbtm::lm::DistEnv::from_environment();
  CHECK(e.rank == 5);
  CHECK(e.world == 8);
  CHECK(e.local_rank == 1);
  CHECK(e.addr == "10.0.0.2");
  CHECK(e.port == 29500 + 123456 % 10000);
}

TEST_CASE("data parallel: one process without variables, no local rank, gloo on CPU") {
  EnvScope env({});
  const auto e = cbtm::lm::DistEnv::from_environment();
  CHECK(e.world == 1);
  CHECK(e.local_rank == -1);
  cbtm::lm::DataParallel dp(e);
  CHECK_FALSE(dp.active());
  CHECK(dp.backend() == "none");
  CHECK(cbtm::lm::DataParallel::backend_for(torch::kCPU) == "gloo");
}

TEST_CASE("data parallel: malformed values are errors naming the variable") {
  {
    EnvScope env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}, {"LOCAL_RANK", "x"}});
    CHECK_THROWS_WITH(cbtm::lm::DistEnv::from_environment(), ContainsText("LOCAL_RANK=x"));
  }
  {
    EnvScope env({{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_LOCALID", "5"}});
    CHECK_THROWS_WITH(cbtm::lm::DistEnv::from_environment(), ContainsText("SLURM_LOCALID=5"));
  }
  {
    EnvScope env({{"RANK", "0"}, {"WORLD_SIZE", "2"}});
    CHECK_THROWS_WITH(cbtm::lm::DistEnv::from_environment(), ContainsText("needs MASTER_PORT"));
  }
}
