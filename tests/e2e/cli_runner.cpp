#include "cli_runner.h"

#include <glob.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "support/test_support.h"

namespace cbtm::test {

namespace {
std::string binary() { return std::string(CBTM_BINARY_DIR) + "/bin/cbtm"; }
bool exists_glob(const std::string& pattern) {
  glob_t g;
  const int r = glob(pattern.c_str(), 0, nullptr, &g);
  const bool found = r == 0 && g.gl_pathc > 0;
  globfree(&g);
  return found;
}
}  // namespace

std::string tiny_config() { return source_path("configs/tiny.yaml"); }

CliResult cbtm_cli(const std::string& args) {
  CliResult r;
  const std::string cmd = binary() + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

bool cbtm_kill_when(const std::string& args, const std::string& path_glob, double timeout_s) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = "exec " + binary() + " " + args + " > /dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto start = std::chrono::steady_clock::now();
  bool seen = false;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < timeout_s) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return false;  // ended before the path appeared
    if (exists_glob(path_glob)) {
      seen = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  return seen;
}

}  // namespace cbtm::test
