#include "data_parallel.h"

#include <cstdlib>
#include <set>
#include <string>

#include <unistd.h>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

#include "cbtm/error.h"
#include "nccl_group.h"

namespace cbtm::lm {
namespace {

const char* getenv_nonempty(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int int_env(const char* name, const char* value, int lo, int hi) {
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (!end || *end != '\0' || v < lo || v > hi)
    throw Error(std::string("data parallel: ") + name + "=" + value + " is not an integer in " +
                std::to_string(lo) + ".." + std::to_string(hi));
  return static_cast<int>(v);
}

c10::intrusive_ptr<c10d::Store> make_tcp_store(const std::string& addr, c10d::TCPStoreOptions so) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  // LibTorch 2.4+ asks for the libuv store backend by default, and builds without libuv
  // (Debian 13's libtorch 2.6) refuse it: use the classic backend there. Every rank runs the
  // same library, so all of them fall back alike (the wire protocol is the same).
  try {
    return c10::make_intrusive<c10d::TCPStore>(addr, so);
  } catch (const c10::Error& e) {
    if (!so.useLibUV || std::string(e.what()).find("libuv") == std::string::npos) throw;
    so.useLibUV = false;
  }
#endif
  return c10::make_intrusive<c10d::TCPStore>(addr, so);
}

bool loopback(const std::string& addr) {
  return addr == "127.0.0.1" || addr == "localhost" || addr == "::1";
}

}  // namespace

DistEnv DistEnv::from_environment() {
  DistEnv e;
  if (getenv_nonempty("WORLD_SIZE") || getenv_nonempty("RANK")) {
    if (!getenv_nonempty("WORLD_SIZE") || !getenv_nonempty("RANK"))
      throw Error("data parallel: set both RANK and WORLD_SIZE (only one of them is set)");
    e.world = int_env("WORLD_SIZE", getenv_nonempty("WORLD_SIZE"), 1, 1 << 20);
    e.rank = int_env("RANK", getenv_nonempty("RANK"), 0, e.world - 1);
    if (getenv_nonempty("MASTER_ADDR")) e.addr = getenv_nonempty("MASTER_ADDR");
    if (getenv_nonempty("MASTER_PORT")) e.port = int_env("MASTER_PORT", getenv_nonempty("MASTER_PORT"), 1, 65535);
    else if (e.world > 1)
      throw Error("data parallel: WORLD_SIZE=" + std::to_string(e.world) +
                  " needs MASTER_PORT (and MASTER_ADDR unless every rank runs on this machine)");
    if (getenv_nonempty("LOCAL_RANK")) e.local_rank = int_env("LOCAL_RANK", getenv_nonempty("LOCAL_RANK"), 0, e.world - 1);
    e.source = "RANK/WORLD_SIZE";
  } else if (getenv_nonempty("SLURM_NTASKS") && getenv_nonempty("SLURM_PROCID")) {
    e.world = int_env("SLURM_NTASKS", getenv_nonempty("SLURM_NTASKS"), 1, 1 << 20);
    e.rank = int_env("SLURM_PROCID", getenv_nonempty("SLURM_PROCID"), 0, e.world - 1);
    if (getenv_nonempty("MASTER_ADDR")) e.addr = getenv_nonempty("MASTER_ADDR");
    else if (getenv_nonempty("SLURM_LAUNCH_NODE_IPADDR")) e.addr = getenv_nonempty("SLURM_LAUNCH_NODE_IPADDR");
    if (getenv_nonempty("MASTER_PORT"))
      e.port = int_env("MASTER_PORT", getenv_nonempty("MASTER_PORT"), 1, 65535);
    else if (getenv_nonempty("SLURM_JOB_ID"))
      e.port = 29500 + int_env("SLURM_JOB_ID", getenv_nonempty("SLURM_JOB_ID"), 0, 1 << 30) % 10000;
    if (getenv_nonempty("SLURM_LOCALID"))
      e.local_rank = int_env("SLURM_LOCALID", getenv_nonempty("SLURM_LOCALID"), 0, e.world - 1);
    e.source = "SLURM_PROCID/SLURM_NTASKS";
  }
  return e;
}

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;  // CPU tensors, or CUDA ones staged through the host
  std::unique_ptr<NcclGroup> nccl;                  // CUDA tensors, when this build has NCCL
};

DataParallel::DataParallel(const DistEnv& e, torch::Device device, std::chrono::milliseconds timeout)
    : env_(e), device_(device) {
  if (!active()) return;
  group_ = std::make_unique<Group>();
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env_.port);
    so.isServer = env_.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env_.world);
    so.waitWorkers = true;
    so.timeout = timeout;
    group_->store = make_tcp_store(env_.addr, so);
    shared_gpu_ = compare_devices();
#ifdef CBTM_HAVE_NCCL
    if (device_.is_cuda() && !shared_gpu_) {
      group_->nccl = make_nccl_group(group_->store, env_.rank, env_.world, device_, timeout);
      return;
    }
#endif
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = getenv_nonempty("GLOO_SOCKET_IFNAME"))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (loopback(env_.addr))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    group_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, env_.rank, env_.world, opts);
  } catch (const std::exception& ex) {
    throw Error("data parallel: rank " + std::to_string(env_.rank) + " of " +
                std::to_string(env_.world) + " could not join the group at " + env_.addr + ":" +
                std::to_string(env_.port) + " (" + env_.source + ", " + backend() + "): " + ex.what());
  }
}

DataParallel::~DataParallel() = default;

std::string DataParallel::backend_for(torch::Device device) {
#ifdef CBTM_HAVE_NCCL
  if (device.is_cuda()) return "nccl";
#endif
  return device.is_cuda() ? "gloo via host memory" : "gloo";
}

std::string DataParallel::backend() const {
  if (!active()) return "none";
  return shared_gpu_ ? "gloo via host memory (ranks share a GPU)" : backend_for(device_);
}

bool DataParallel::compare_devices() {
  // Every rank publishes its device as TYPE HOST ID (ID: the GPU's PCI bus id where this build
  // can ask CUDA, else the logical index): ranks on different device types cannot average
  // together, and NCCL refuses two ranks on one GPU (then every rank uses Gloo).
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string id = "-";
  if (device_.is_cuda()) {
#ifdef CBTM_HAVE_NCCL
    id = gpu_identity(device_);
#else
    id = std::to_string(device_.has_index() ? device_.index() : 0);
#endif
  }
  const std::string mine = std::string(device_.is_cuda() ? "cuda" : "cpu") + " " + host + " " + id;
  group_->store->set("cbtm-device-" + std::to_string(env_.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
  std::vector<std::string> all;
  for (int r = 0; r < env_.world; ++r) {
    const std::vector<uint8_t> v = group_->store->get("cbtm-device-" + std::to_string(r));
    all.emplace_back(v.begin(), v.end());
  }
  const auto type = [](const std::string& d) { return d.substr(0, d.find(' ')); };
  for (int r = 0; r < env_.world; ++r)
    if (type(all[r]) != type(all[0]))
      throw Error("data parallel: rank 0 trains on " + type(all[0]) + " (" + all[0] + ") but rank " + std::to_string(r) +
                  " on " + type(all[r]) + " (" + all[r] + "); every rank must use the same kind of device "
                  "(check CUDA_VISIBLE_DEVICES / launch.gpus and runtime.device)");
  if (!device_.is_cuda()) return false;
  std::set<std::string> seen(all.begin(), all.end());
  return seen.size() < all.size();
}

void DataParallel::allreduce_sum(torch::Tensor& t) {
  if (group_->nccl) {
    group_->nccl->allreduce_sum(t);
    return;
  }
  std::vector<torch::Tensor> v{t.is_cuda() ? t.to(torch::kCPU) : t};
  group_->gloo->allreduce(v)->wait();
  if (t.is_cuda()) t.copy_(v[0]);
}

void DataParallel::average(const std::vector<torch::Tensor>& tensors) {
  if (!active()) return;
  std::vector<torch::Tensor> parts;
  for (const auto& t : tensors)
    if (t.defined()) parts.push_back(t.reshape({-1}).to(torch::kFloat));
  if (parts.empty()) return;
  torch::Tensor flat = torch::cat(parts);
  allreduce_sum(flat);
  flat.div_(static_cast<double>(env_.world));
  int64_t at = 0;
  for (const auto& t : tensors) {
    if (!t.defined()) continue;
    const int64_t n = t.numel();
    torch::NoGradGuard no_grad;
    t.copy_(flat.slice(0, at, at + n).view(t.sizes()));
    at += n;
  }
}

double DataParallel::average(double value) {
  if (!active()) return value;
  // NCCL reduces tensors on its device; Gloo on the host
  torch::Tensor v = torch::full({1}, value, torch::TensorOptions().dtype(torch::kDouble).device(group_->nccl ? device_ : torch::kCPU));
  allreduce_sum(v);
  return v.to(torch::kCPU, torch::kDouble).item<double>() / env_.world;
}

void DataParallel::barrier() {
  if (!active()) return;
  if (group_->nccl) {  // a one-element all-reduce, waited for on the host
    torch::Tensor t = torch::zeros({1}, torch::TensorOptions().device(device_));
    allreduce_sum(t);
    (void)t.to(torch::kCPU).item<float>();
    return;
  }
  group_->gloo->barrier()->wait();
}

}  // namespace cbtm::lm
