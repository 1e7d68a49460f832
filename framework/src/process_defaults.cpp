// The OpenMP wait policy of a cbtm process (see process_defaults.h).
#include "cbtm/process_defaults.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace cbtm {

namespace {
// Jiffies of the aggregate "cpu" line: {busy, total}.
bool read_cpu(long long& busy, long long& total) {
  std::ifstream f("/proc/stat");
  std::string line;
  if (!std::getline(f, line) || line.compare(0, 4, "cpu ") != 0) return false;
  std::istringstream in(line.substr(4));
  long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // user nice system idle iowait irq softirq steal
  for (auto& x : v)
    if (!(in >> x)) break;
  busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  total = busy + v[3] + v[4];
  return true;
}
}  // namespace

double busy_cores(double seconds) {
  long long b0 = 0, t0 = 0, b1 = 0, t1 = 0;
  if (!read_cpu(b0, t0)) return -1;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  if (!read_cpu(b1, t1) || t1 <= t0) return -1;
  const unsigned n = std::thread::hardware_concurrency();
  return static_cast<double>(b1 - b0) / static_cast<double>(t1 - t0) * (n ? n : 1);
}

void apply_openmp_defaults(int argc, char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (argc < 1 || !argv || !argv[0]) return;
  const double busy = busy_cores(0.1);
  if (busy < 0.5) return;  // quiet (or unknown): libgomp's default spinning is fastest
  bool quiet = false;
  for (int i = 1; i < argc; ++i) quiet = quiet || !std::strcmp(argv[i], "-q") || !std::strcmp(argv[i], "--quiet");
  if (!quiet)
    std::fprintf(stderr, "cbtm: %.1f of %u cores are busy with other work: OpenMP threads will sleep after a short spin "
                 "(GOMP_SPINCOUNT=1000) rather than hold a core; set GOMP_SPINCOUNT or OMP_WAIT_POLICY to choose\n",
                 busy, std::thread::hardware_concurrency());
  if (setenv("GOMP_SPINCOUNT", "1000", /*overwrite=*/0) != 0) return;
  execv("/proc/self/exe", argv);
  // only reached when the re-execution failed: carry on with libgomp's defaults
  std::fprintf(stderr, "cbtm: could not re-execute %s to apply GOMP_SPINCOUNT=1000 (%s); OpenMP keeps its default "
               "wait policy\n", argv[0], std::strerror(errno));
}

}  // namespace cbtm
