#include "checkpoint_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cbtm/error.h"
#include "cbtm/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cbtm::lm {
namespace {

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kStepPrefix = "step-";
constexpr size_t kStepDigits = 8;

// "step-00000200" -> 200; -1 for anything else (staging names included).
int64_t parse_step_name(const std::string& name) {
  if (name.size() != std::char_traits<char>::length(kStepPrefix) + kStepDigits ||
      name.rfind(kStepPrefix, 0) != 0)
    return -1;
  const std::string digits = name.substr(std::char_traits<char>::length(kStepPrefix));
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  return std::stoll(digits);
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) spdlog::warn("could not remove {}: {}", path, ec.message());
}

}  // namespace

json TrainerState::to_json() const {
  json j;
  j["format"] = kFormat;
  j["format_version"] = kVersion;
  j["step"] = step;
  j["tokens"] = tokens;
  j["total_steps"] = total_steps;
  j["seed"] = seed;
  j["job"] = job;
  j["info"] = info;
  j["first_losses"] = first_losses;
  j["last_losses"] = last_losses;
  j["seconds"] = seconds;
  j["result"] = result;
  j["files"] = files;
  return j;
}

TrainerState TrainerState::from_json(const json& j, const std::string& where) {
  if (!j.is_object() || j.value("format", "") != kFormat)
    throw Error(where + ": not a cbtm trainer state (format is not " + kFormat + ")");
  if (j.value("format_version", 0) > kVersion)
    throw Error(where + ": trainer state format_version " +
                std::to_string(j.value("format_version", 0)) + " is newer than this build (" +
                std::to_string(kVersion) + ")");
  TrainerState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.tokens = j.at("tokens").get<int64_t>();
    s.total_steps = j.at("total_steps").get<int64_t>();
    s.seed = j.at("seed").get<uint64_t>();
    s.job = j.at("job");
    s.info = j.value("info", json::object());
    s.first_losses = j.at("first_losses").get<std::vector<double>>();
    s.last_losses = j.at("last_losses").get<std::vector<double>>();
    s.seconds = j.value("seconds", 0.0);
    s.result = j.value("result", json::object());
    s.files = j.at("files").get<std::map<std::string, int64_t>>();
  } catch (const json::exception& e) {
    throw Error(where + ": malformed trainer state: " + e.what());
  }
  return s;
}

namespace {
void add_differences(const json& saved, const json& now, const std::string& prefix,
                     const std::vector<std::string>& optional, std::string& diff) {
  std::vector<std::string> all;
  for (auto it = saved.begin(); it != saved.end(); ++it) all.push_back(it.key());
  for (auto it = now.begin(); it != now.end(); ++it)
    if (!saved.contains(it.key())) all.push_back(it.key());
  for (const auto& k : all) {
    const bool both = saved.contains(k) && now.contains(k);
    // inside a nested identity (recipe) a key on one side only was added or dropped by another
    // version of cbtm: not a difference of the job
    if (!both && (!prefix.empty() || std::find(optional.begin(), optional.end(), k) != optional.end())) continue;
    const json a = saved.contains(k) ? saved[k] : json();
    const json b = now.contains(k) ? now[k] : json();
    if (a.is_object() && b.is_object()) {
      add_differences(a, b, prefix + k + ".", {}, diff);
    } else if (a != b) {
      diff += (diff.empty() ? "" : "; ") + prefix + k + ": " + a.dump() + " vs " + b.dump();
    }
  }
}
}  // namespace

std::string job_difference(const json& saved, const json& now, const std::vector<std::string>& optional) {
  std::string diff;
  add_differences(saved, now, "", optional, diff);
  return diff;
}

CheckpointStore::CheckpointStore(std::string out_dir, int64_t keep)
    : out_dir_(std::move(out_dir)), keep_(std::max<int64_t>(1, keep)) {}

std::string CheckpointStore::step_dir(int64_t step) const {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return (fs::path(out_dir_) / name).string();
}

std::string CheckpointStore::final_dir() const { return (fs::path(out_dir_) / "final").string(); }

bool CheckpointStore::has_final() const { return fs::is_directory(final_dir()); }

std::vector<int64_t> CheckpointStore::steps() const {
  std::vector<int64_t> out;
  if (!fs::is_directory(out_dir_)) return out;
  for (const auto& e : fs::directory_iterator(out_dir_)) {
    const int64_t s = e.is_directory() ? parse_step_name(e.path().filename().string()) : -1;
    if (s >= 0) out.push_back(s);
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

TrainerState CheckpointStore::validate(const std::string& dir) {
  const std::string path = (fs::path(dir) / kStateFile).string();
  if (!fs::exists(path)) throw Error(dir + ": no " + kStateFile);
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    throw Error(path + ": unreadable JSON: " + e.what());
  }
  TrainerState s = TrainerState::from_json(j, path);
  for (const auto& [name, bytes] : s.files) {
    const fs::path f = fs::path(dir) / name;
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec) throw Error(f.string() + ": missing (" + ec.message() + ")");
    if (static_cast<int64_t>(size) != bytes)
      throw Error(f.string() + ": truncated or changed (" + std::to_string(size) +
                  " bytes, trainer_state.json recorded " + std::to_string(bytes) + ")");
  }
  return s;
}

void CheckpointStore::remove_stale_staging() const {
  if (!fs::is_directory(out_dir_)) return;
  for (const auto& e : fs::directory_iterator(out_dir_)) {
    const std::string n = e.path().filename().string();
    const bool ours = n.rfind(kStepPrefix, 0) == 0 || n.rfind("final", 0) == 0;
    if (ours && n.find(".tmp-") != std::string::npos) {
      spdlog::info("removing {} left by an interrupted run", e.path().string());
      remove_tree(e.path().string());
    }
  }
}

std::string CheckpointStore::staging_for(const std::string& target) const {
  const std::string s = temp_path_for(target);
  remove_tree(s);
  make_dirs(s);
  return s;
}

void CheckpointStore::seal(const std::string& staging, TrainerState& state) const {
  state.files.clear();
  for (const auto& e : fs::recursive_directory_iterator(staging)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), staging).string();
    if (rel == kStateFile) continue;
    state.files[rel] = static_cast<int64_t>(e.file_size());
  }
  write_file_atomic((fs::path(staging) / kStateFile).string(), state.to_json().dump(1) + "\n");
}

void CheckpointStore::commit_step(const std::string& staging, TrainerState state) const {
  seal(staging, state);
  replace_directory(staging, step_dir(state.step));
  int64_t kept = 0;
  for (int64_t s : steps()) {  // newest first
    if (s > state.step) {
      spdlog::warn("removing {}: newer than the checkpoint just written (abandoned run)",
                   step_dir(s));
      remove_tree(step_dir(s));
    } else if (++kept > keep_) {
      remove_tree(step_dir(s));
    }
  }
}

void CheckpointStore::commit_final(const std::string& staging, TrainerState state) const {
  seal(staging, state);
  replace_directory(staging, final_dir());
  for (int64_t s : steps()) remove_tree(step_dir(s));
}

}  // namespace cbtm::lm
