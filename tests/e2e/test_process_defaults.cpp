// cbtm's OpenMP wait policy (framework/include/cbtm/process_defaults.h): with the cores busy
// as it starts, cbtm re-executes itself with GOMP_SPINCOUNT=1000 (libgomp then reports 1000);
// a policy set by the user is left alone; busy_cores measures what other work uses; a cbtm
// process holds the machine's marker and one that finds it held spins 1000 without sampling.
#include "support/catch.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "cbtm/process_defaults.h"

namespace {

// Keeps one core busy while alive.
struct Burner {
  std::atomic<bool> stop{false};
  std::thread t{[this] {
    volatile double x = 0;
    while (!stop.load(std::memory_order_relaxed)) x = x + 1.0;
  }};
  ~Burner() {
    stop = true;
    t.join();
  }
};

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// The value libgomp reports last (OMP_DISPLAY_ENV prints it as each process starts).
std::string last_spincount(const std::string& out) {
  const std::string key = "GOMP_SPINCOUNT = '";
  const size_t at = out.rfind(key);
  if (at == std::string::npos) return "";
  return out.substr(at + key.size(), out.find('\'', at + key.size()) - at - key.size());
}

const std::string kCbtm = std::string(CBTM_BINARY_DIR) + "/bin/cbtm";

}  // namespace

TEST_CASE("process defaults: busy_cores sees a burning thread") {
  Burner b;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double busy = cbtm::busy_cores(0.3);
  CHECK(busy >= 0.7);
  CHECK(busy <= std::thread::hardware_concurrency() + 0.05);
}

TEST_CASE("process defaults: with the cores busy cbtm re-executes itself with GOMP_SPINCOUNT 1000 and a user's policy is kept") {
  {
    Burner b;
    const std::string out = run("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u CBTM_OPENMP_POLICY CBTM_CPU_MARKER=none OMP_DISPLAY_ENV=VERBOSE " + kCbtm +
                                " inspect /nonexistent-run");
    INFO(out);
    CHECK(out.find("cores are busy with other work") != std::string::npos);
    CHECK(last_spincount(out) == "1000");
    CHECK(out.find("/nonexistent-run") != std::string::npos);  // then it ran the command
  }
  const std::string kept = run("env -u OMP_WAIT_POLICY -u CBTM_OPENMP_POLICY CBTM_CPU_MARKER=none GOMP_SPINCOUNT=777 OMP_DISPLAY_ENV=VERBOSE " + kCbtm + " inspect /nonexistent-run");
  INFO(kept);
  CHECK(kept.find("cores are busy") == std::string::npos);
  CHECK(last_spincount(kept) == "777");
  // -q silences the notice, not the re-execution
  Burner b;
  const std::string quiet = run("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u CBTM_OPENMP_POLICY CBTM_CPU_MARKER=none OMP_DISPLAY_ENV=VERBOSE " + kCbtm +
                                " -q inspect /nonexistent-run");
  INFO(quiet);
  CHECK(quiet.find("cores are busy") == std::string::npos);
  CHECK(last_spincount(quiet) == "1000");
}

TEST_CASE("process defaults: the marker is held shared and tells a later holder that another process runs") {
  const std::string path = "/tmp/cbtm-test-marker-" + std::to_string(::getpid()) + ".lock";
  ::unlink(path.c_str());
  CHECK_FALSE(cbtm::hold_cpu_marker(path));  // the first holder finds nobody
  const int probe = ::open(path.c_str(), O_RDWR);
  REQUIRE(probe >= 0);
  CHECK(::flock(probe, LOCK_EX | LOCK_NB) != 0);  // held: no exclusive lock for anyone else
  CHECK(::flock(probe, LOCK_SH | LOCK_NB) == 0);  // but shared by any number of holders
  ::close(probe);
  CHECK(cbtm::hold_cpu_marker(path));  // a second holder sees the first
  CHECK_FALSE(cbtm::hold_cpu_marker(""));  // no marker
  CHECK_FALSE(cbtm::hold_cpu_marker("/nonexistent-dir/marker.lock"));  // cannot be created: ignored
  ::unlink(path.c_str());
}

TEST_CASE("process defaults: cbtm started while another cbtm process holds the marker spins 1000 without sampling") {
  const std::string path = "/tmp/cbtm-test-marker2-" + std::to_string(::getpid()) + ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_SH) == 0);  // as a running cbtm process holds it
  const std::string env = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u CBTM_OPENMP_POLICY CBTM_CPU_MARKER=" + path +
                          " OMP_DISPLAY_ENV=VERBOSE ";
  const std::string out = run(env + kCbtm + " inspect /nonexistent-run");
  INFO(out);
  CHECK(out.find("another cbtm process is running") != std::string::npos);
  CHECK(last_spincount(out) == "1000");
  CHECK(out.find("/nonexistent-run") != std::string::npos);
  // a child of a cbtm process (the policy variable set) keeps its parent's choice: no notice,
  // no re-execution, libgomp's default
  const std::string child = run(env + "CBTM_OPENMP_POLICY=default " + kCbtm + " inspect /nonexistent-run");
  INFO(child);
  CHECK(child.find("another cbtm process") == std::string::npos);
  CHECK(last_spincount(child) == "300000");
  ::close(fd);
  // released: the next cbtm does not see it (it may still sample a busy machine: other tests)
  const std::string after = run(env + kCbtm + " inspect /nonexistent-run");
  INFO(after);
  CHECK(after.find("another cbtm process") == std::string::npos);
  ::unlink(path.c_str());
}
