#pragma once
/// \file nccl_group.h
/// The NCCL side of data parallelism (data_parallel.h), in its own translation unit:
/// nccl_group.cpp is compiled only when LibTorch was built with CUDA and NCCL's header was
/// found (CMake sets CBTM_HAVE_NCCL); otherwise make_nccl_group() is not defined and
/// data-parallel training on a GPU averages gradients through Gloo via host memory.
#include <chrono>
#include <memory>
#include <string>

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/Store.hpp>

namespace cbtm::lm {

/// One rank's NCCL communicator on one CUDA device.
class NcclGroup {
 public:
  virtual ~NcclGroup() = default;
  /// Sums `t` (on the group's device) over the ranks, in place; later work on the device's
  /// current stream sees the result.
  virtual void allreduce_sum(torch::Tensor& t) = 0;
};

#ifdef CBTM_HAVE_NCCL
/// The physical GPU behind `device` (its PCI bus id): ranks that see different logical
/// indices (CUDA_VISIBLE_DEVICES) can still be on one GPU, and ranks that all see cuda:0 can
/// be on different ones.
std::string gpu_identity(torch::Device device);
/// Joins the NCCL group of `world` ranks through `store` (already rendezvoused), on `device`.
std::unique_ptr<NcclGroup> make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                           torch::Device device, std::chrono::milliseconds timeout);
#endif

}  // namespace cbtm::lm
