#include "cbtm/runtime.h"

#include <cstdlib>
#include <thread>

#include "cbtm/error.h"
#include "cbtm/options.h"

namespace cbtm {

void Runtime::validate() const {
  require(threads >= 0, "threads", "must be >= 0 (0 means all cores)");
  require_one_of(device, {"auto", "cpu", "cuda"}, "device");
}

int Runtime::resolved_threads() const {
  if (threads > 0) return threads;
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

int data_parallel_rank() {
  auto env = [](const char* n) -> const char* {
    const char* v = std::getenv(n);
    return v && *v ? v : nullptr;
  };
  const char* r = env("RANK");
  if (!r && env("SLURM_NTASKS")) r = env("SLURM_PROCID");
  return r ? std::atoi(r) : 0;
}

Runtime& runtime() {
  static Runtime r;
  return r;
}

}  // namespace cbtm
