#pragma once
// Child processes of `cbtm launch` (internal): spawn with extra environment and output to a
// log file, poll for exit, terminate, and run a command capturing its output.
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace cbtm::detail {

struct Child {
  pid_t pid = -1;
  std::string log;  ///< where its stdout and stderr go (appended)
};

/// Starts argv[0] (a path) with argv, the current environment plus `env` (NAME, value), stdin
/// from /dev/null and stdout+stderr appended to `log`. Error if it cannot be started.
Child spawn(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env,
            const std::string& log);

/// Non-blocking: the exit status (128+signal if killed) once the child has ended, else -1.
int poll_exit(const Child& c);
/// Blocks until the child ends; its exit status as poll_exit.
int wait_exit(const Child& c);
/// Sends SIGTERM.
void terminate(const Child& c);

struct CommandResult {
  int status = -1;
  std::string output;  ///< stdout and stderr together
};
/// Runs argv (searched on PATH) and waits, capturing its output.
CommandResult run_command(const std::vector<std::string>& argv);

/// The last non-empty line of a text file ("" if none); reads at most the last 64 KiB.
std::string last_line(const std::string& file);
/// The last n lines of a text file.
std::string tail_lines(const std::string& file, int n);

/// `s` quoted for /bin/sh.
std::string shell_quote(const std::string& s);

}  // namespace cbtm::detail
