#pragma once
/// \file data_parallel.h
/// Data parallelism inside one training job: several processes (ranks) each compute the
/// gradient of their share of every batch, and the gradients are averaged with LibTorch's
/// c10d, so every rank applies the same update. The backend follows the model's device:
/// Gloo on CPU; NCCL on CUDA when this build's LibTorch has it (CMake reports "NCCL ...: ON"),
/// else -- or when two ranks share a GPU, which NCCL refuses -- Gloo through host memory
/// (correct, slower).
///
/// Rendezvous, as torchrun and Slurm set it up:
///   - RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK (torchrun, or by hand); else
///   - SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID under `srun` (MASTER_ADDR:
///     SLURM_LAUNCH_NODE_IPADDR, then 127.0.0.1; MASTER_PORT: 29500 + SLURM_JOB_ID % 10000);
///   - neither: one process (world size 1, no communication at all).
/// On GPUs each rank takes the device of its local rank (cuda:LOCAL_RANK mod the devices it
/// sees) unless runtime.device names one. GLOO_SOCKET_IFNAME names the network interface, as
/// in PyTorch.
///
/// \code
///   DataParallel dp(DistEnv::from_environment(), device);
///   ... backward ...
///   dp.average(grads);                  // every rank now holds the mean gradient
///   const double loss = dp.average(local_loss);
/// \endcode
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace cbtm::lm {

struct DistEnv {
  int rank = 0;
  int world = 1;
  std::string addr = "127.0.0.1";
  int port = 29500;
  int local_rank = -1;  ///< rank on this machine (LOCAL_RANK, SLURM_LOCALID); -1: not given
  std::string source = "single process";  ///< where the values came from, for logs

  /// Reads the variables above; Error on malformed or inconsistent values (naming them).
  static DistEnv from_environment();
};

class DataParallel {
 public:
  /// Joins the group (world > 1: blocks until every rank has joined, or `timeout`); `device`
  /// is where the averaged tensors live (the model's device).
  explicit DataParallel(const DistEnv& env, torch::Device device = torch::kCPU,
                        std::chrono::milliseconds timeout = std::chrono::minutes(10));
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  bool active() const { return env_.world > 1; }
  const DistEnv& env() const { return env_; }
  /// "gloo", "nccl" or "gloo via host memory" (CUDA tensors, no NCCL in this build): what a
  /// group on `device` uses.
  static std::string backend_for(torch::Device device);
  /// What this group uses: backend_for(device), Gloo via host memory when ranks share a GPU
  /// (NCCL refuses that), or "none" for one process.
  std::string backend() const;

  /// Replaces each tensor with its mean over the ranks (one flat all-reduce). Undefined
  /// tensors (parameters without a gradient) are skipped; every rank must pass the same list.
  void average(const std::vector<torch::Tensor>& tensors);
  /// The mean of `value` over the ranks.
  double average(double value);
  /// Waits for every rank.
  void barrier();

 private:
  struct Group;
  DistEnv env_;
  torch::Device device_;
  bool shared_gpu_ = false;
  std::unique_ptr<Group> group_;
  bool compare_devices();  // true when ranks share a GPU; Error when device types differ
  void allreduce_sum(torch::Tensor& t);
};

}  // namespace cbtm::lm
