#include "bench_util.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <thread>

#include <sys/wait.h>

#include "cbtm/corpus.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/process_defaults.h"
#include "cbtm/runtime.h"

namespace cbtm::bench {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void add_common_flags(CLI::App& app, CommonFlags& flags, bool devpile) {
  if (devpile)
    app.add_option("--devpile", flags.devpile, "devpile corpus (JSONL, .zst)")
        ->capture_default_str();
  app.add_option("--threads", flags.threads, "worker threads (0: all cores)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--json", flags.json, "also write the figures to this JSON file");
  app.add_flag("--verbose", flags.verbose, "keep the libraries' info logging");
}

int run_main(CLI::App& app, int argc, char** argv, const CommonFlags& flags,
             const std::function<int()>& body) {
  apply_openmp_defaults(argc, argv);  // as the cbtm executable does (may re-execute this program)
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    runtime().threads = flags.threads;
    spdlog::set_level(flags.verbose ? (std::getenv("CBTM_BENCH_DEBUG") ? spdlog::level::debug : spdlog::level::info) : spdlog::level::warn);
    const auto m = machine_state();
    std::printf("machine: %d cores, %d threads in use, load average %.2f %.2f %.2f\n",
                m["cores"].get<int>(), m["threads"].get<int>(), m["load_1m"].get<double>(),
                m["load_5m"].get<double>(), m["load_15m"].get<double>());
    std::fflush(stdout);
    return body();
  } catch (const MissingInput& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

nlohmann::json machine_state() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) std::fill(load, load + 3, -1.0);
  return {{"cores", static_cast<int>(std::thread::hardware_concurrency())},
          {"threads", runtime().resolved_threads()},
          {"load_1m", load[0]},
          {"load_5m", load[1]},
          {"load_15m", load[2]}};
}

std::vector<Document> read_devpile(const std::string& path, int64_t max_docs) {
  if (!std::filesystem::is_regular_file(path))
    throw MissingInput("devpile not found at '" + path + "' (pass --devpile PATH)");
  CorpusOptions o;
  o.max_docs = max_docs;
  return read_corpus(path, o);
}

std::vector<std::string> spread_texts(const std::vector<Document>& docs, size_t n,
                                      size_t offset) {
  std::vector<std::string> out;
  if (docs.empty() || n == 0) return out;
  const size_t stride = std::max<size_t>(1, docs.size() / n);
  for (size_t i = offset % stride; i < docs.size() && out.size() < n; i += stride)
    out.push_back(docs[i].text);
  return out;
}

std::vector<std::string> spread_bytes(const std::vector<Document>& docs, size_t bytes,
                                      size_t offset) {
  size_t total = 0;
  for (const auto& d : docs) total += d.text.size();
  if (total == 0) return {};
  const auto n = static_cast<size_t>(static_cast<double>(docs.size()) * bytes / total) + 1;
  return spread_texts(docs, n, offset);
}

size_t total_bytes(const std::vector<std::string>& texts) {
  size_t n = 0;
  for (const auto& s : texts) n += s.size();
  return n;
}

void write_json(const std::string& path, const nlohmann::json& figures) {
  if (path.empty()) return;
  write_file_atomic(path, figures.dump(2) + "\n");
  std::printf("figures written to %s\n", path.c_str());
}

std::string sh_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string run_capture(const std::string& command, const std::string& what) {
  FILE* p = popen(command.c_str(), "r");
  if (!p) throw cbtm::Error("cannot start " + what + ": " + command);
  std::string out;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, got);
  const int status = pclose(p);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw cbtm::Error(what + " failed (status " + std::to_string(status) + "): " + command);
  return out;
}

nlohmann::json last_json_line(const std::string& text, const std::string& what) {
  size_t end = text.find_last_not_of("\r\n");
  if (end == std::string::npos) throw cbtm::Error(what + " printed nothing");
  const size_t begin = text.rfind('\n', end);
  const std::string line = text.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin + 1));
  try {
    return nlohmann::json::parse(line);
  } catch (const std::exception&) {
    throw cbtm::Error(what + " did not end with a JSON line: " + line);
  }
}

}  // namespace cbtm::bench
