#include "bench_util.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <thread>

#include "cbtm/corpus.h"
#include "cbtm/fs.h"
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

}  // namespace cbtm::bench
