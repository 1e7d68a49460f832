#include "cbtm/pipeline/run_dir.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <sstream>

#include <unistd.h>

#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/hash.h"

#include <yaml-cpp/yaml.h>

namespace fs = std::filesystem;

namespace cbtm {

RunDir::RunDir(std::string root) : root_(std::move(root)) {}

std::string RunDir::path(const std::string& rel) const { return (fs::path(root_) / rel).string(); }

std::string RunDir::cluster_data(int32_t c) const {
  char b[32];
  std::snprintf(b, sizeof b, "clusters/cluster-%03d", c);
  return path(b);
}

std::string RunDir::expert_dir(int32_t c) const {
  char b[32];
  std::snprintf(b, sizeof b, "experts/expert-%03d", c);
  return path(b);
}

std::string fingerprint(const std::string& text) {
  const uint64_t h = fnv1a(text);  // stable across builds and platforms
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
  return b;
}

namespace {
std::string record_path(const RunDir& d, const std::string& stage) {
  return d.path("stages/" + stage + ".json");
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}
}  // namespace

std::map<std::string, std::vector<int64_t>> RunDir::domain_counts() const {
  std::map<std::string, std::vector<int64_t>> out;
  const nlohmann::json rec = record("assign");
  if (rec.is_null() || !rec.contains("summary")) return out;
  const nlohmann::json overlap = rec["summary"].value("domain_overlap", nlohmann::json::object());
  for (auto it = overlap.begin(); it != overlap.end(); ++it) out[it.key()] = it.value().get<std::vector<int64_t>>();
  return out;
}

nlohmann::json RunDir::record(const std::string& stage) const {
  const std::string p = record_path(*this, stage);
  if (!fs::exists(p)) return nullptr;
  try {
    return nlohmann::json::parse(read_file(p));
  } catch (const nlohmann::json::exception& e) {
    throw Error(p + ": corrupt stage record (" + e.what() + "); delete it to redo the stage");
  }
}

bool RunDir::finished(const std::string& stage, const std::string& fp,
                      const std::string& config_text) const {
  nlohmann::json r = record(stage);
  if (r.is_null()) return false;
  if (r.value("fingerprint", "") == fp) return true;
  // Same config, other inputs (an input stage was recomputed): simply recompute this one.
  if (r.value("config", "") == config_text) return false;
  std::string diff;
  const auto before = lines_of(r.value("config", ""));
  const auto now = lines_of(config_text);
  for (size_t i = 0; i < std::max(before.size(), now.size()); ++i) {
    const std::string a = i < before.size() ? before[i] : "", b = i < now.size() ? now[i] : "";
    if (a != b) diff += "\n    was: " + a + "\n    now: " + b;
  }
  throw Error(root_ + " holds a finished '" + stage + "' stage made with a different config:" + diff +
              "\n  Use a new --out directory, or pass --redo " + stage +
              " to recompute it (and everything that depends on it).");
}

void RunDir::finish(const std::string& stage, const std::string& fp, const std::string& config_text,
                    const nlohmann::json& summary, const std::string& user_config) const {
  nlohmann::json r;
  r["stage"] = stage;
  r["fingerprint"] = fp;
  r["config"] = config_text;
  if (!user_config.empty()) r["user_config"] = user_config;
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  r["finished_at"] = buf;
  r["run_id"] = fingerprint(std::string(buf) + std::to_string(::getpid()) + fp +
                            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  r["summary"] = summary;
  write_file_atomic(record_path(*this, stage), r.dump(2) + "\n");
}

void RunDir::forget(const std::string& stage) const {
  std::error_code ec;
  fs::remove(record_path(*this, stage), ec);
}

namespace {
bool as_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end && *end == 0;
}

bool same_node(const YAML::Node& a, const YAML::Node& b) {
  if (a.Type() != b.Type()) return false;
  if (a.IsScalar()) {
    if (a.Scalar() == b.Scalar()) return true;
    double x, y;
    return as_number(a.Scalar(), x) && as_number(b.Scalar(), y) && x == y;
  }
  if (a.IsSequence()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!same_node(a[i], b[i])) return false;
    return true;
  }
  if (a.IsMap()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      const YAML::Node other = b[key];
      if (!other || !same_node(it->second, other)) return false;
    }
    return true;
  }
  return true;  // both null
}
}  // namespace

bool same_settings(const std::string& a, const std::string& b) {
  if (a == b) return true;
  const auto x = lines_of(a), y = lines_of(b);
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i]) continue;
    const size_t cx = x[i].find(": "), cy = y[i].find(": ");
    if (cx == std::string::npos || cx != cy || x[i].compare(0, cx, y[i], 0, cy) != 0) return false;
    try {
      if (!same_node(YAML::Load(x[i].substr(cx + 2)), YAML::Load(y[i].substr(cy + 2)))) return false;
    } catch (const YAML::Exception&) {
      return false;
    }
  }
  return true;
}

}  // namespace cbtm
