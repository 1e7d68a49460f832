// `cbtm fewshot`: few-shot classification accuracy of a finished run's models and ensembles
// on a suite of tasks (fewshot/evaluate.h); writes RUN/fewshot.json (or --out).
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "cbtm/json_file.h"
#include "cbtm/artifact.h"
#include "cbtm/clusterer.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/fewshot/evaluate.h"
#include "cbtm/fewshot/task.h"
#include "cbtm/fs.h"
#include "cbtm/language_model.h"
#include "cbtm/pipeline/run_config.h"
#include "cbtm/pipeline/run_dir.h"
#include "cbtm/router.h"
#include "cbtm/tokenizer.h"
#include "cbtm/runtime.h"
#include "cbtm/version.h"
#include "commands.h"

namespace cbtm::app {

namespace {

std::string table(const nlohmann::json& res) {
  // rows: models; columns: tasks, then the average
  std::vector<std::string> names;
  std::map<std::string, std::map<std::string, double>> acc;
  for (const auto& t : res["tasks"])
    for (const auto& m : t["models"]) {
      const std::string n = m["name"].get<std::string>();
      if (!acc.count(n)) names.push_back(n);
      acc[n][t["task"].get<std::string>()] = m["accuracy"].get<double>();
    }
  size_t w = 10;
  for (const auto& n : names) w = std::max(w, n.size() + 2);
  std::string out = "few-shot accuracy (%), mean over seeds\n" + std::string(w, ' ');
  auto cell = [](const std::string& s, size_t cw) { return std::string(cw > s.size() ? cw - s.size() : 1, ' ') + s; };
  for (const auto& t : res["tasks"]) out += cell(t["task"].get<std::string>(), t["task"].get<std::string>().size() + 2);
  out += cell("average", 9) + "\n";
  for (const auto& n : names) {
    out += n + std::string(w - n.size(), ' ');
    for (const auto& t : res["tasks"]) {
      const std::string tn = t["task"].get<std::string>();
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f", 100 * acc[n][tn]);
      out += cell(buf, tn.size() + 2);
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", 100 * res["average"][n].get<double>());
    out += cell(buf, 9) + "\n";
  }
  return out;
}

}  // namespace

int run_fewshot(const FewShotArgs& a, PluginHost& host) {
  namespace fs = std::filesystem;
  for (const char* f : {"config.yaml", "manifest.json", "tokenizer.safetensors", "clusterer.safetensors"})
    if (!fs::exists(fs::path(a.run) / f))
      throw Error(a.run + ": not a finished run directory (no " + f + "); run `cbtm run CONFIG --out " + a.run + "` first");
  const FewShotSuite suite = load_fewshot_suite(a.suite, a.set);
  const RunConfig cfg = RunConfig::load(a.run + "/config.yaml", {}, host);
  runtime() = cfg.runtime;  // threads, device, bf16, expert_devices of the run
  const Registry& reg = host.registry();
  ArtifactReader tok_art(a.run + "/tokenizer.safetensors", "tokenizer");
  auto tok = tok_art.load<Tokenizer>(reg, "tokenizer");
  ArtifactReader art(a.run + "/clusterer.safetensors", "clusterer");
  auto emb = art.load<Embedder>(reg, "embedder");
  auto cl = art.load<Clusterer>(reg, "clusterer");
  const auto manifest = read_json_file(a.run + "/manifest.json");
  if (!manifest.contains("experts") || manifest["experts"].empty()) throw Error(a.run + "/manifest.json: lists no experts");

  std::vector<std::unique_ptr<LanguageModel>> owned;
  FewShotModels models;
  models.tokenizer = tok.get();
  for (size_t j = 0; j < manifest["experts"].size(); ++j) {
    owned.push_back(load_language_model(reg, a.run + "/" + manifest_expert_checkpoint(manifest, a.run + "/manifest.json", j),
                                        expert_device(static_cast<int32_t>(models.experts.size()))));
    models.experts.push_back(owned.back().get());
  }
  if (suite.baselines && manifest.contains("baselines"))
    for (const auto& b : manifest["baselines"]) {
      const std::string ckpt = a.run + "/" + b["dir"].get<std::string>() + "/final";
      if (!fs::exists(ckpt + "/config.json")) {
        spdlog::warn("[fewshot] baseline {}: no checkpoint at {}; skipped", b["name"].get<std::string>(), ckpt);
        continue;
      }
      owned.push_back(load_language_model(reg, ckpt));
      models.singles.emplace_back(b["name"].get<std::string>(), owned.back().get());
    }
  if (suite.seed_model && manifest.contains("seed")) {
    owned.push_back(load_language_model(reg, a.run + "/" + manifest["seed"].get<std::string>()));
    models.singles.emplace_back("seed", owned.back().get());
  }

  const auto domain_counts = RunDir(a.run).domain_counts();
  RoutingContext ctx;
  ctx.embedder = emb.get();
  ctx.clusterer = cl.get();
  ctx.experts = static_cast<int32_t>(models.experts.size());
  ctx.domain_counts = domain_counts.empty() ? nullptr : &domain_counts;
  ctx.domain_field = cfg.data.domain_field;
  std::vector<std::unique_ptr<Router>> routers;
  nlohmann::json router_types = nlohmann::json::object();
  for (const auto& [name, node] : suite.ensembles) {
    routers.push_back(reg.create<Router>(node));
    routers.back()->bind(ctx);
    models.ensembles.emplace_back(name, routers.back().get());
    router_types[name] = node.type("router");
  }
  spdlog::info("[fewshot] run {}: {} experts, {} single models, {} ensembles; {} tasks x {} seeds, {} demonstrations",
               a.run, models.experts.size(), models.singles.size(), models.ensembles.size(), suite.tasks.size(),
               suite.seeds.size(), suite.demonstrations);

  nlohmann::json res;
  res["format"] = "cbtm-fewshot";
  res["format_version"] = 1;
  res["cbtm_version"] = kVersion;
  res["run"] = a.run;
  res["suite_file"] = a.suite;
  res["suite"] = YAML::Dump(suite.yaml);
  res["routers"] = router_types;
  res["tasks"] = nlohmann::json::array();
  for (const auto& t : suite.tasks) {
    if (t.ignored > 0) spdlog::info("[fewshot {}] {} examples with other labels ignored", t.name, t.ignored);
    res["tasks"].push_back(evaluate_fewshot_task(t, suite, models));
  }
  nlohmann::json avg = nlohmann::json::object();
  for (const auto& t : res["tasks"])
    for (const auto& m : t["models"])
      avg[m["name"].get<std::string>()] = avg.value(m["name"].get<std::string>(), 0.0) +
                                          m["accuracy"].get<double>() / static_cast<double>(res["tasks"].size());
  res["average"] = avg;
  const std::string out = a.out.empty() ? a.run + "/fewshot.json" : a.out;
  write_file_atomic(out, res.dump(2) + "\n");
  spdlog::info("[fewshot] results -> {}", out);
  std::fputs(table(res).c_str(), stdout);  // the result: stdout (the log is stderr)
  return 0;
}

}  // namespace cbtm::app
