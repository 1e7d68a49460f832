// NCCL all-reduce for data-parallel training on GPUs (see nccl_group.h). Built only with a
// CUDA LibTorch and NCCL's header (CBTM_HAVE_NCCL; CMake defines USE_C10D_NCCL for this file,
// which LibTorch's ProcessGroupNCCL.hpp requires).
#include "nccl_group.h"

#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

namespace cbtm::lm {
namespace {

class Nccl : public NcclGroup {
 public:
  Nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world, torch::Device device,
       std::chrono::milliseconds timeout)
      : index_(device.has_index() ? device.index() : c10::cuda::current_device()) {
    const c10::cuda::CUDAGuard guard(index_);
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
  }

  ~Nccl() override {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    try {  // a normal exit (LibTorch warns about a process group destroyed without it)
      pg_->shutdown();
    } catch (...) {
    }
#endif
  }

  void allreduce_sum(torch::Tensor& t) override {
    const c10::cuda::CUDAGuard guard(index_);
    std::vector<torch::Tensor> v{t};
    pg_->allreduce(v)->wait();  // the current stream waits for NCCL's; the host does not block
  }

 private:
  c10::DeviceIndex index_;
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> pg_;
};

}  // namespace

std::string gpu_identity(torch::Device device) {
  char bus[64] = {0};
  const int index = device.has_index() ? device.index() : c10::cuda::current_device();
  if (cudaDeviceGetPCIBusId(bus, sizeof bus, index) != cudaSuccess) return "cuda:" + std::to_string(index);
  return bus;
}

std::unique_ptr<NcclGroup> make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                           torch::Device device, std::chrono::milliseconds timeout) {
  return std::make_unique<Nccl>(store, rank, world, device, timeout);
}

}  // namespace cbtm::lm
