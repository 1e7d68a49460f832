#include "child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "cbtm/error.h"

extern char** environ;

namespace cbtm::detail {
namespace {

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

Child spawn(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env,
            const std::string& log) {
  if (argv.empty()) throw Error("spawn: empty command");
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    bool replaced = false;
    for (const auto& [k, v] : env) replaced = replaced || kv.compare(0, k.size() + 1, k + "=") == 0;
    if (!replaced) envs.push_back(kv);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  auto a = c_argv(argv);
  auto e = c_argv(envs);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) throw Error("cannot open " + log + ": " + std::strerror(errno));
  const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2];  // reports a failed exec back to the parent
  if (in < 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out);
    if (in >= 0) ::close(in);
    throw Error(std::string("spawn: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(out);
    ::close(in);
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    throw Error("cannot start " + argv[0] + ": fork: " + std::strerror(err));
  }
  if (pid == 0) {
    // the child: only async-signal-safe calls until exec. It gets SIGTERM when the launcher
    // dies (even by SIGKILL), so no orphan keeps training into the run directory.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execve(a[0], a.data(), e.data());
    const int err = errno;
    (void)!::write(err_pipe[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(out);
  ::close(in);
  ::close(err_pipe[1]);
  int child_err = 0;
  ssize_t n;
  while ((n = ::read(err_pipe[0], &child_err, sizeof child_err)) < 0 && errno == EINTR) {
  }
  ::close(err_pipe[0]);
  Child c;
  c.pid = pid;
  c.log = log;
  if (n == static_cast<ssize_t>(sizeof child_err)) {
    wait_exit(c);
    throw Error("cannot start " + argv[0] + ": " + std::strerror(child_err));
  }
  return c;
}

int poll_exit(const Child& c) {
  int status = 0;
  const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
  if (r == 0) return -1;
  if (r < 0) throw Error("waitpid(" + std::to_string(c.pid) + "): " + std::strerror(errno));
  return decode(status);
}

int wait_exit(const Child& c) {
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0)
    if (errno != EINTR) throw Error("waitpid(" + std::to_string(c.pid) + "): " + std::strerror(errno));
  return decode(status);
}

void terminate(const Child& c) {
  if (c.pid > 0) ::kill(c.pid, SIGTERM);
}

CommandResult run_command(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  auto a = c_argv(argv);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, a.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw Error("cannot run " + argv[0] + ": " + std::strerror(rc) +
                (rc == ENOENT ? " (is it installed and on PATH?)" : ""));
  }
  CommandResult r;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) r.output.append(buf, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  Child c;
  c.pid = pid;
  r.status = wait_exit(c);
  return r;
}

std::string tail_lines(const std::string& file, int n) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > 65536 ? size - 65536 : 0;
  in.seekg(start);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return text;  // e.g. a child's log polled before its first line
  size_t pos = text.size();
  for (int i = 0; i < n && pos != std::string::npos && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

std::string last_line(const std::string& file) {
  std::string t = tail_lines(file, 1);
  const size_t cr = t.rfind('\r');  // progress lines redraw with \r
  return cr == std::string::npos ? t : t.substr(cr + 1);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./=:,+@%") == std::string::npos)
    return s;
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

}  // namespace cbtm::detail
