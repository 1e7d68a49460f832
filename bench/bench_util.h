#pragma once
/// \file bench_util.h
/// What the benchmark programs in bench/ share: the common flags (--threads, --json,
/// --verbose and --devpile), a main() wrapper that maps errors to exit codes, devpile
/// sampling, timing and JSON output. Benchmarks measure and print; they assert nothing.
///
/// \code
///   int main(int argc, char** argv) {
///     CLI::App app{"what it measures"};
///     cbtm::bench::CommonFlags flags;
///     cbtm::bench::add_common_flags(app, flags, /*devpile=*/true);
///     return cbtm::bench::run_main(app, argc, argv, flags, [&] {
///       const auto docs = cbtm::bench::read_devpile(flags.devpile);
///       ...
///       cbtm::bench::write_json(flags.json, figures);
///       return 0;
///     });
///   }
/// \endcode
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cbtm/document.h"

namespace cbtm::bench {

using Clock = std::chrono::steady_clock;

/// Seconds elapsed since `t0`.
double seconds_since(Clock::time_point t0);

/// Flags every benchmark takes.
struct CommonFlags {
  std::string devpile = CBTM_BENCH_DEVPILE;  ///< the corpus (compile definition: ../shared/data)
  int threads = 0;                           ///< runtime().threads; 0: all cores
  std::string json;                          ///< also write the figures here ("" : don't)
  bool verbose = false;                      ///< keep the libraries' info logging
};

/// Adds --threads, --json, --verbose and, when `devpile`, --devpile to `app`.
void add_common_flags(CLI::App& app, CommonFlags& flags, bool devpile);

/// A required input file is missing: run_main reports it and returns exit status 2.
class MissingInput : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses the command line (CLI11's exit code on a bad one), applies the common flags
/// (runtime().threads, log level warn unless --verbose), prints the machine state, then runs
/// `body`. Returns body's status, 2 on MissingInput, 1 on any other exception.
int run_main(CLI::App& app, int argc, char** argv, const CommonFlags& flags,
             const std::function<int()>& body);

/// Cores, threads in use and the 1/5/15-minute load averages, for the figures' context.
nlohmann::json machine_state();

/// The documents of devpile at `path` (the first `max_docs`; 0: all). MissingInput if the
/// file does not exist.
std::vector<Document> read_devpile(const std::string& path, int64_t max_docs = 0);

/// `n` texts spaced evenly over `docs` (devpile is stored grouped by domain, so evenly
/// spaced documents mix every domain), starting `offset` documents into the first stride.
std::vector<std::string> spread_texts(const std::vector<Document>& docs, size_t n,
                                      size_t offset = 0);
/// Texts spaced evenly over `docs` until about `bytes` bytes are collected.
std::vector<std::string> spread_bytes(const std::vector<Document>& docs, size_t bytes,
                                      size_t offset = 0);
size_t total_bytes(const std::vector<std::string>& texts);

/// `s` quoted for /bin/sh.
std::string sh_quote(const std::string& s);
/// Runs `command` under /bin/sh (a peer program); returns its stdout. cbtm::Error naming
/// `what` unless it exits 0.
std::string run_capture(const std::string& command, const std::string& what);
/// The last non-empty line of `text` (a peer's output), parsed as JSON; cbtm::Error naming
/// `what` if there is none.
nlohmann::json last_json_line(const std::string& text, const std::string& what);

/// Writes `figures` (pretty-printed) to `path` atomically; does nothing when `path` is "".
void write_json(const std::string& path, const nlohmann::json& figures);

}  // namespace cbtm::bench
