#pragma once
// Runs bin/cbtm as a child process for the end-to-end tests.
#include <string>

namespace cbtm::test {

struct CliResult {
  int status = -1;     ///< exit status (128+signal if killed)
  std::string output;  ///< stdout and stderr together
};

/// Runs `cbtm ARGS` (ARGS is passed to /bin/sh) and waits for it.
CliResult cbtm_cli(const std::string& args);

/// Starts `cbtm ARGS` in the background, waits until `path` exists (or timeout_s passes), then
/// kills it with SIGKILL. Returns true if the path appeared before the process ended.
bool cbtm_kill_when(const std::string& args, const std::string& path_glob, double timeout_s);

/// configs/tiny.yaml in the source tree.
std::string tiny_config();

}  // namespace cbtm::test
