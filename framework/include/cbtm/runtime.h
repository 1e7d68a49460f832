#pragma once
/// \file runtime.h
/// Process-wide execution settings (the `runtime:` config section), read by plugins that
/// run models or parallel loops.
#include <cstdint>
#include <string>
#include <vector>

namespace cbtm {

struct Runtime {
  int threads = 0;              ///< worker threads; 0 = all cores
  std::string device = "auto";  ///< auto | cpu | cuda | cuda:N
  bool bf16 = true;             ///< bf16 autocast for model compute (CPU and GPU)
  std::vector<std::string> expert_devices;  ///< expert j on entry j mod n; empty: `device`

  template <class V> void visit(V& v) {
    v("threads", threads, "worker threads for math and data (0: all cores)");
    v("device", device, "where models run: auto (GPU when available) | cpu | cuda | cuda:N");
    v("bf16", bf16,
      "bf16 autocast for model training and evaluation (on CUDA and on CPUs with AVX-512; other "
      "CPUs run fp32, since LibTorch's bf16 matmul is a slow scalar loop there)");
    v("expert_devices", expert_devices,
      "where an ensemble's experts live when they are loaded together (eval, serve, generate, fewshot): "
      "expert j on entry j mod n, e.g. [cuda:0, cuda:1]; each cpu | cuda | cuda:N ([]: every expert on "
      "`device`)");
  }
  void validate() const;
  /// threads, or the number of cores when 0.
  int resolved_threads() const;
};

/// The settings of this process (set once by the host from the config).
Runtime& runtime();

/// The device of expert j of an ensemble: runtime().expert_devices[j mod n], or "" (meaning
/// runtime().device) when the list is empty.
std::string expert_device(int32_t j);

/// This process's data-parallel rank as the environment gives it -- RANK when set, else
/// SLURM_PROCID when SLURM_NTASKS is set, else 0 (the sources of the lm trainer's rendezvous).
/// Only rank 0 writes a training stage's records and exports; the others just train.
int data_parallel_rank();

}  // namespace cbtm
