// The OpenMP wait policy of a cbtm process (see process_defaults.h).
#include "cbtm/process_defaults.h"

#include <fcntl.h>
#include <sys/file.h>
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

std::string cpu_marker_path() {
  if (const char* p = std::getenv("CBTM_CPU_MARKER")) {
    const std::string path = p;
    return path == "none" ? std::string() : path;
  }
  return "/tmp/cbtm-" + std::to_string(::getuid()) + ".cpu.lock";
}

bool hold_cpu_marker(const std::string& path) {
  if (path.empty()) return false;
  // not O_CLOEXEC: the lock must survive re-execution and be shared by the children
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
  if (fd < 0) return false;
  // an exclusive lock is refused while any other open description holds the marker
  int rc;
  while ((rc = ::flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
  }
  const bool others = rc != 0 && errno == EWOULDBLOCK;
  // then hold it shared (waits, at most as long as another starter's own test above)
  while ((rc = ::flock(fd, LOCK_SH)) != 0 && errno == EINTR) {
  }
  if (rc != 0) ::close(fd);
  return others;  // the descriptor stays open until the process exits
}

void apply_openmp_defaults(int argc, char** argv) {
  if (std::getenv(kOpenmpPolicyVariable)) return;  // a cbtm parent chose, and holds the marker
  const bool others = hold_cpu_marker(cpu_marker_path());
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) {
    setenv(kOpenmpPolicyVariable, "user", 1);
    return;
  }
  if (argc < 1 || !argv || !argv[0]) return;
  const double busy = others ? -1 : busy_cores(0.1);
  if (!others && busy < 0.5) {  // quiet (or unknown): libgomp's default spinning is fastest
    setenv(kOpenmpPolicyVariable, "default", 1);
    return;
  }
  bool quiet = false;
  for (int i = 1; i < argc; ++i) quiet = quiet || !std::strcmp(argv[i], "-q") || !std::strcmp(argv[i], "--quiet");
  if (!quiet) {
    char why[96];
    if (others)
      std::snprintf(why, sizeof why, "another cbtm process is running");
    else
      std::snprintf(why, sizeof why, "%.1f of %u cores are busy with other work", busy,
                    std::thread::hardware_concurrency());
    std::fprintf(stderr, "cbtm: %s: OpenMP threads will sleep after a short spin (GOMP_SPINCOUNT=1000) rather than "
                 "hold a core; set GOMP_SPINCOUNT or OMP_WAIT_POLICY to choose\n", why);
  }
  if (setenv("GOMP_SPINCOUNT", "1000", /*overwrite=*/0) != 0) return;
  setenv(kOpenmpPolicyVariable, "spin1000", 1);
  execv("/proc/self/exe", argv);
  // only reached when the re-execution failed: carry on with libgomp's defaults
  const int err = errno;
  unsetenv("GOMP_SPINCOUNT");
  setenv(kOpenmpPolicyVariable, "default", 1);
  std::fprintf(stderr, "cbtm: could not re-execute %s to apply GOMP_SPINCOUNT=1000 (%s); OpenMP keeps its default "
               "wait policy\n", argv[0], std::strerror(err));
}

std::vector<std::string> openmp_variables_set_here() {
  const char* v = std::getenv(kOpenmpPolicyVariable);
  if (!v) return {};
  if (std::string(v) == "spin1000") return {kOpenmpPolicyVariable, "GOMP_SPINCOUNT"};
  return {kOpenmpPolicyVariable};
}

}  // namespace cbtm
