// Pipeline: construction, stage bookkeeping (fingerprints, redo), ordering, manifest.
// The stages themselves are in stage_data.cpp, stage_train.cpp and stage_eval.cpp.
#include "cbtm/pipeline/pipeline.h"

#include <omp.h>

#include <cstdio>
#include <filesystem>

#include <sstream>

#include <spdlog/spdlog.h>

#include "cbtm/artifact.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/plugin_host.h"
#include "cbtm/runtime.h"
#include "cbtm/tokenizer.h"

namespace fs = std::filesystem;

namespace cbtm {

std::string expert_stage(int32_t j) {
  char b[32];
  std::snprintf(b, sizeof b, "expert-%03d", j);
  return b;
}

Pipeline::Pipeline(PluginHost& host, RunConfig cfg, const std::string& out_dir)
    : host_(host), cfg_(std::move(cfg)), dir_(out_dir) {
  runtime() = cfg_.runtime;
  omp_set_num_threads(runtime().resolved_threads());
  make_dirs(out_dir);
}

void Pipeline::finish_stage(const std::string& stage, const nlohmann::json& summary) const {
  // config.yaml (what `cbtm serve`, `generate` and `fewshot` load) is the config of the last
  // stage that finished: a run refused for a changed config, or `cbtm suite --list`, leaves it
  write_file_atomic(dir_.path("config.yaml"), cfg_.yaml());
  dir_.finish(stage, fp(stage), config_text(stage), summary, config_text(stage, true));
  release_lock(stage);
}

Pipeline::~Pipeline() = default;

int32_t Pipeline::experts() const {
  YAML::Node k = cfg_.node("clusterer").node["k"];
  if (!k) throw Error(cfg_.file() + ": clusterer '" + cfg_.node("clusterer").node["type"].as<std::string>() +
                      "' has no option k (the number of experts)");
  return k.as<int32_t>();
}

void Pipeline::redo(const std::set<std::string>& stages) {
  // A misspelt name (expert-3 for expert-003) would redo nothing and say nothing.
  std::set<std::string> known = {"all", "tokenizer", "cluster", "assign", "seed", "experts", "baselines", "eval"};
  const int32_t k = experts();
  for (int32_t j = 0; j < k; ++j) known.insert(expert_stage(j));
  for (const auto& b : baseline_types()) known.insert("baseline-" + b);
  for (const auto& s : stages)
    if (!known.count(s)) {
      std::string list = "all, tokenizer, cluster, assign, seed, experts, " + expert_stage(0) + ".." + expert_stage(k - 1) +
                         ", baselines";
      for (const auto& b : baseline_types()) list += ", baseline-" + b;
      throw Error("--redo " + s + ": no such stage (stages: " + list + ", eval)");
    }
  redo_ = stages;
}

// ---- fingerprints ----------------------------------------------------------------------
namespace {
const std::vector<std::string> kDataKeys = {"data.train", "data.text_field", "data.id_field",
                                            "data.on_bad_document", "data.max_train_docs"};
std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
// How a stage reading `limit` training documents picks them (data.sample), when it matters.
std::string sample_keys(const RunConfig& cfg, int64_t limit) {
  if (limit == 0) return "";
  return cfg.data.sample == "uniform" ? cfg.section_text({"data.sample", "seed"}) : cfg.section_text({"data.sample"});
}
// data.cluster_text (+ its length and the seed of a window) when it is not the default, so
// runs made before the option existed keep their fingerprints.
std::string cluster_text_keys(const RunConfig& cfg) {
  if (cfg.data.cluster_text == "document") return "";
  std::vector<std::string> keys = {"data.cluster_text", "data.cluster_text_chars"};
  if (cfg.data.cluster_text == "window") keys.push_back("seed");
  return cfg.section_text(keys);
}
// runtime.bf16 when it is off, for the eval stage: fp32 scoring gives other numbers, so
// `cbtm eval --set runtime.bf16=false` evaluates again instead of reporting the bf16 results
// (runs made before keep their fingerprints: the default is on). Training stages leave it out:
// experts trained in bf16 may be evaluated in fp32.
std::string precision_keys(const RunConfig& cfg) {
  return cfg.runtime.bf16 ? std::string() : cfg.section_text({"runtime.bf16"});
}
}  // namespace

static std::vector<std::string> upstream_of(const std::string& stage, int32_t k,
                                            const std::vector<std::string>& baselines) {
  if (stage == "assign") return {"tokenizer", "cluster"};
  if (stage == "seed") return {"tokenizer", "assign"};
  if (starts_with(stage, "expert-")) return {"seed", "assign"};
  if (starts_with(stage, "baseline-")) return {"seed"};
  if (stage == "eval") {
    std::vector<std::string> u = {"tokenizer", "cluster"};
    for (int32_t j = 0; j < k; ++j) u.push_back(expert_stage(j));
    for (const auto& b : baselines) u.push_back("baseline-" + b);
    return u;
  }
  return {};
}

static std::vector<std::string> baseline_names(const RunConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& b : cfg.resolved()["baselines"]) out.push_back(b["type"].as<std::string>());
  return out;
}

std::vector<std::string> Pipeline::baseline_types() const { return baseline_names(cfg_); }

std::string Pipeline::config_text(const std::string& stage, bool user) const {
  // user: the sections as written (RunConfig::user_section_text), the derived lines as they are
  auto text = [&](const std::vector<std::string>& keys) { return user ? cfg_.user_section_text(keys) : cfg_.section_text(keys); };
  if (stage == "tokenizer") {
    if (!cfg_.data.tokenizer_from.empty())  // a loaded tokenizer: the file's content is the input
      return text(with(kDataKeys, {"data.tokenizer_from"})) + "tokenizer_file: " +
             fingerprint(read_file(cfg_.data.tokenizer_from)) + "\n";
    return text(with(kDataKeys, {"data.tokenizer_docs", "tokenizer"})) +
           sample_keys(cfg_, cfg_.data.tokenizer_docs);
  }
  if (stage == "cluster")
    return text(with(kDataKeys, {"data.cluster_docs", "embedder", "clusterer"})) + cluster_text_keys(cfg_) +
           sample_keys(cfg_, cfg_.data.cluster_docs);
  if (stage == "assign") return text(with(kDataKeys, {"data.domain_field"})) + cluster_text_keys(cfg_);
  if (stage == "seed") return text({"seed", "model", "seed_lm"}) + seed_init_identity();
  if (starts_with(stage, "expert-")) return text({"seed", "branch"}) + "k: " + std::to_string(experts()) + "\n";
  if (starts_with(stage, "baseline-")) {
    const std::string name = stage.substr(9);
    const auto names = baseline_names(cfg_);
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name)  // not branch.expert_batch: it only shapes the experts' batches
        return text({"seed", "branch.tokens", "branch.trainer", "baselines." + std::to_string(i)});
    throw Error("no baseline '" + name + "' in the config (baselines: " + std::to_string(names.size()) + ")");
  }
  if (stage == "eval") return text({"data.eval", "data.text_field", "data.domain_field", "eval"}) + precision_keys(cfg_);
  throw std::logic_error("unknown stage " + stage);
}

std::string Pipeline::seed_init_identity() const {
  // An external seed (seed_lm.init, e.g. a suite's shared seed): its content is an input, as
  // tokenizer_from's is -- the path alone would keep experts branched from weights since replaced
  const std::string& init = cfg_.seed_lm.init;
  if (init.empty()) return "";
  const std::string key = "seed_lm.init checkpoint: ";
  std::string id;
  try {
    id = read_file(init + "/config.json");
    if (fs::exists(init + "/trainer_state.json")) id += read_file(init + "/trainer_state.json");
    std::error_code ec;
    const auto bytes = fs::file_size(init + "/model.safetensors", ec);
    id += "\nmodel.safetensors " + std::to_string(ec ? -1 : static_cast<long long>(bytes));
  } catch (const Error&) {
    // gone (after the run finished): what the finished seed stage recorded stands
    const nlohmann::json r = dir_.record("seed");
    std::istringstream was(r.is_object() ? r.value("config", "") : std::string());
    for (std::string l; std::getline(was, l);)
      if (l.rfind(key, 0) == 0) return l + "\n";
    return key + "unreadable\n";
  }
  return key + fingerprint(id) + "\n";
}

std::string Pipeline::fp(const std::string& stage) const { return fp_with(stage, config_text(stage)); }

std::string Pipeline::fp_with(const std::string& stage, std::string text) const {
  for (const auto& u : upstream_of(stage, experts(), baseline_names(cfg_))) {
    nlohmann::json r = dir_.record(u);
    if (r.is_null()) return "";  // an input is missing: this stage cannot be current
    text += "input " + u + " " + r.value("run_id", "") + "\n";
  }
  return fingerprint(text);
}

bool Pipeline::redo_requested(const std::string& stage) const {
  const auto& redo = redo_;
  return redo.count("all") || redo.count(stage) || (starts_with(stage, "expert-") && redo.count("experts")) ||
         (starts_with(stage, "baseline-") && redo.count("baselines"));
}

bool Pipeline::done(const std::string& stage) const {
  auto& redo = redo_;
  if (redo_requested(stage) && !redo.count("done:" + stage)) {
    redo.insert("done:" + stage);  // redo once per invocation
    // data-parallel ranks > 0 redo too, but only the lead deletes: a slower rank must not
    // remove what the lead has begun since
    if (data_parallel_rank() == 0) {
      dir_.forget(stage);
      for (const auto& d : outputs(stage)) fs::remove_all(d);
    }
    return false;
  }
  const std::string f = fp(stage);
  if (f.empty()) return false;
  const std::string now = config_text(stage);
  const nlohmann::json r = dir_.record(stage);
  if (!r.is_null()) {
    const std::string gone = missing_output(stage, r);
    if (!gone.empty()) {  // e.g. results.json deleted: "finished earlier" would print nothing
      spdlog::warn("[{}] finished earlier, but its output {} is gone: running it again", stage, gone);
      return false;
    }
  }
  // Evaluation is cheap and writes only results.json: changed eval settings re-evaluate
  // (Pipeline::eval) instead of refusing the run -- in `cbtm run` and in a suite's cells alike.
  if (stage == "eval" && !r.is_null() && !same_settings(r.value("config", ""), now)) return false;
  if (!r.is_null() && r.value("fingerprint", "") != f && r.value("config", "") != now &&
      same_settings(r.value("config", ""), now)) {
    // the same settings, spelled differently by this build (e.g. 1e-06 -> 1.0e-06)
    if (fp_with(stage, r.value("config", "")) != r["fingerprint"]) return false;  // other inputs: recompute
    spdlog::debug("[{}] finished with the same settings (spelled differently by this build); kept", stage);
    return true;
  }
  if (!r.is_null() && r.value("fingerprint", "") != f && r.value("config", "") != now &&
      r.value("user_config", "") == config_text(stage, true)) {
    if (fp_with(stage, r.value("config", "")) != r["fingerprint"]) return false;  // other inputs: recompute
    // The settings as written and the inputs are those of the finished stage; only what the
    // code fills in differs (an option added since, at its default, or a changed default).
    // Keep it, and say so, rather than refuse a run nobody changed.
    auto lines = [](const std::string& t) {
      std::vector<std::string> out;
      std::istringstream in(t);
      for (std::string l; std::getline(in, l);) out.push_back(l);
      return out;
    };
    const auto was = lines(r.value("config", "")), is = lines(now);
    std::string diff;
    for (size_t i = 0; i < std::max(was.size(), is.size()); ++i) {
      const std::string x = i < was.size() ? was[i] : "", y = i < is.size() ? is[i] : "";
      if (x != y) diff += "\n    was: " + x + "\n    now: " + y;
    }
    spdlog::warn("[{}] finished with the same settings as written, which this build resolves differently "
                 "(new options at their defaults, or changed defaults); kept -- `--redo {}` recomputes it:{}",
                 stage, stage, diff);
    return true;
  }
  return dir_.finished(stage, f, now);
}

void Pipeline::require_done(const std::string& stage, const std::string& how) const {
  // A stage this command only needs is never redone here: done() would delete its outputs
  // (a trained expert) and then find it missing.
  if (redo_requested(stage) && !redo_.count("done:" + stage))
    throw Error("--redo: this command does not run stage '" + stage + "', it needs it finished; nothing was deleted. "
                "Redo it with the command that runs it (e.g. `" + how + " --redo " + stage + "`), or drop --redo");
  if (!done(stage))
    throw Error("stage '" + stage + "' has not finished in " + dir_.root() + ": run `" + how + "` first");
}

std::string Pipeline::missing_output(const std::string& stage, const nlohmann::json& record) const {
  std::string main;
  if (stage == "tokenizer") main = dir_.tokenizer();
  else if (stage == "cluster") main = dir_.clusterer();
  else if (stage == "assign") main = dir_.clusters();
  else if (stage == "eval") main = dir_.results();
  else if (record.contains("summary") && record["summary"].is_object() && record["summary"].contains("checkpoint") &&
           record["summary"]["checkpoint"].is_string()) {
    const std::string c = record["summary"]["checkpoint"].get<std::string>();
    if (fs::path(c).is_absolute()) return "";  // an external init (seed_lm.init): not this run's output
    main = dir_.path(c);
  }
  return main.empty() || fs::exists(main) ? "" : main;
}

std::vector<std::string> Pipeline::outputs(const std::string& stage) const {
  if (stage == "assign") return {dir_.path("assign")};  // committed parts of every shard
  if (stage == "seed") return {dir_.seed_dir()};
  if (starts_with(stage, "expert-")) return {dir_.expert_dir(std::stoi(stage.substr(7)))};
  if (starts_with(stage, "baseline-")) return {dir_.baseline_dir(stage.substr(9))};
  return {};  // data stages replace their outputs atomically
}

void Pipeline::take_lock(const std::string& name, const std::string& what) const {
  if (locks_.count(name)) return;
  auto lock = std::make_unique<FileLock>(dir_.path("locks/" + name + ".lock"), /*wait=*/false);
  if (!lock->locked())
    throw Error(what + " of " + dir_.root() + " is being run by " + lock->holder() +
                "; let it finish (or stop it) before running it again");
  locks_[name] = std::move(lock);
}

void Pipeline::release_lock(const std::string& name) const { locks_.erase(name); }

void Pipeline::begin_stage(const std::string& stage) const {
  take_lock(stage, "stage '" + stage + "'");
  const std::string f = fp(stage);
  for (const auto& d : outputs(stage)) {
    const std::string marker = d + "/cbtm-stage.json";
    if (fs::exists(d)) {
      std::string had;
      if (fs::exists(marker)) {  // a marker that cannot be read is an error, not a reason to delete
        try {
          had = nlohmann::json::parse(read_file(marker)).value("fingerprint", "");
        } catch (const nlohmann::json::exception& e) {
          throw Error(marker + ": not a stage marker (" + e.what() + "); it guards " + d +
                      " -- delete the marker (or the folder) to let the stage start over");
        }
      }
      if (had != f) {
        spdlog::warn("[{}] discarding {}: it holds outputs of an earlier attempt with other inputs or config", stage, d);
        fs::remove_all(d);
      }
    }
    make_dirs(d);
    write_file_atomic(marker, nlohmann::json({{"stage", stage}, {"fingerprint", f}}).dump() + "\n");
  }
}

std::string Pipeline::seed_checkpoint() const {
  nlohmann::json r = dir_.record("seed");
  if (r.is_null()) throw Error("the seed LM is not trained yet in " + dir_.root() + ": run `cbtm train --seed` first");
  return dir_.path(r["summary"]["checkpoint"].get<std::string>());
}

std::vector<std::string> Pipeline::all_data() const {
  std::vector<std::string> dirs;
  for (int32_t j = 0; j < experts(); ++j) dirs.push_back(dir_.cluster_data(j));
  return dirs;
}

std::unique_ptr<Tokenizer> Pipeline::load_tokenizer() const {
  ArtifactReader r(dir_.tokenizer(), "tokenizer");
  return r.load<Tokenizer>(host_.registry(), "tokenizer");
}

// ---- ordering ---------------------------------------------------------------------------
void Pipeline::run() {
  tokenize();
  cluster();
  assign();
  train_seed();
  train_experts();
  train_baselines();
  eval();
}

// ---- manifest -----------------------------------------------------------------------------
void Pipeline::write_manifest() const {
  // one writer at a time, each from the records as they are then: concurrent expert jobs
  // (a Slurm array) would otherwise each write their own snapshot, the last one not the latest
  FileLock lock(dir_.path("locks/manifest.lock"), /*wait=*/true);
  nlohmann::json m;
  m["format"] = "cbtm-manifest";
  m["format_version"] = 1;
  m["config"] = "config.yaml";
  m["tokenizer"] = "tokenizer.safetensors";
  m["clusterer"] = "clusterer.safetensors";
  m["k"] = experts();
  nlohmann::json seed = dir_.record("seed");
  m["seed"] = seed.is_null() ? nlohmann::json(nullptr) : seed["summary"]["checkpoint"];
  nlohmann::json experts_json = nlohmann::json::array();
  nlohmann::json assign = dir_.record("assign");
  for (int32_t j = 0; j < experts(); ++j) {
    nlohmann::json e;
    e["cluster"] = j;
    e["data"] = fs::relative(dir_.cluster_data(j), dir_.root()).string();
    if (!assign.is_null() && assign["summary"].contains("clusters")) {
      e["docs"] = assign["summary"]["clusters"][j]["docs"];
      e["data_tokens"] = assign["summary"]["clusters"][j]["tokens"];
    }
    nlohmann::json r = dir_.record(expert_stage(j));
    e["trained"] = !r.is_null();
    if (!r.is_null()) {
      e["checkpoint"] = r["summary"]["checkpoint"];
      e["train_tokens"] = r["summary"]["tokens"];
      e["steps"] = r["summary"]["steps"];
    }
    experts_json.push_back(e);
  }
  m["experts"] = experts_json;
  nlohmann::json bl = nlohmann::json::array();
  for (const auto& name : baseline_names(cfg_)) {
    nlohmann::json b;
    b["name"] = name;
    b["dir"] = "baselines/" + name;
    b["trained"] = !dir_.record("baseline-" + name).is_null();
    bl.push_back(b);
  }
  m["baselines"] = bl;
  write_file_atomic(dir_.manifest(), m.dump(2) + "\n");
}

}  // namespace cbtm
