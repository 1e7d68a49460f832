#include "cbtm/runtime.h"

#include <cstdlib>
#include <thread>

#include "cbtm/error.h"
#include "cbtm/options.h"

namespace cbtm {

namespace {
// cpu | cuda | cuda:N (N a non-negative integer)
bool is_device(const std::string& d) {
  if (d == "cpu" || d == "cuda") return true;
  if (d.rfind("cuda:", 0) != 0 || d.size() == 5) return false;
  for (size_t i = 5; i < d.size(); ++i)
    if (d[i] < '0' || d[i] > '9') return false;
  return d.size() <= 9;
}
}  // namespace

void Runtime::validate() const {
  require(threads >= 0, "threads", "must be >= 0 (0 means all cores)");
  require(device == "auto" || is_device(device), "device", "must be auto | cpu | cuda | cuda:N, got '" + device + "'");
  for (size_t i = 0; i < expert_devices.size(); ++i)
    require(is_device(expert_devices[i]), "expert_devices",
            "entry " + std::to_string(i) + " must be cpu | cuda | cuda:N, got '" + expert_devices[i] + "'");
}

std::string expert_device(int32_t j) {
  const auto& d = runtime().expert_devices;
  if (d.empty() || j < 0) return "";
  return d[static_cast<size_t>(j) % d.size()];
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
