// Training stages: the seed LM, the experts (branch + train), the baselines.
#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/artifact.h"
#include "cbtm/baseline.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/language_model.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/plugin_host.h"
#include "cbtm/token_shard.h"
#include "cbtm/tokenizer.h"
#include "cbtm/trainer.h"

namespace fs = std::filesystem;

namespace cbtm {
namespace {

std::string rel(const RunDir& d, const std::string& p) { return fs::relative(p, d.root()).string(); }

nlohmann::json result_json(const RunDir& d, const TrainResult& r) {
  return {{"checkpoint", rel(d, r.checkpoint)}, {"steps", r.steps}, {"tokens", r.tokens},
          {"first_loss", r.first_loss}, {"last_loss", r.last_loss}, {"seconds", r.seconds},
          {"flops", r.flops}};
}

// Every trained model leaves the run as a Hugging Face directory: the tokenizer's files beside
// config.json + model.safetensors, and config.json's special-token ids from the tokenizer.
void export_tokenizer(const Tokenizer& tok, const std::string& checkpoint) {
  if (!fs::exists(fs::path(checkpoint) / "config.json")) return;
  set_hf_config_token_ids(checkpoint, tok);
  if (tok.export_hf(checkpoint)) spdlog::debug("tokenizer files written to {}", checkpoint);
}

// The final checkpoints under a baseline's directory (directories named final with a config.json).
void export_tokenizer_under(const Tokenizer& tok, const std::string& dir) {
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_directory() && e.path().filename() == "final") export_tokenizer(tok, e.path().string());
}

}  // namespace

void Pipeline::train_seed() {
  if (done("seed")) {
    spdlog::info("[seed] finished earlier; skipping");
    return;
  }
  require_done("tokenizer", "cbtm assign CONFIG --out " + dir_.root());
  auto tok = load_tokenizer();
  const auto& s = cfg_.seed_lm;
  std::string init = s.init;
  if (init.empty()) {
    // every data-parallel rank initialises (the same seed: the same weights), each into its own
    // folder, so that no rank replaces a folder another is reading
    const int rank = data_parallel_rank();
    init = dir_.path(rank == 0 ? std::string("seed-init") : "seed-init.rank" + std::to_string(rank));
    auto arch = host_.registry().create<ModelArchitecture>(cfg_.node("model"));
    spdlog::info("[seed] initialising a '{}' model with {} parameters (vocabulary {})",
                 cfg_.node("model").node["type"].as<std::string>(), arch->parameters(tok->vocab_size()), tok->vocab_size());
    arch->init_checkpoint(init, tok->vocab_size(), cfg_.seed);
  } else if (!fs::exists(fs::path(init) / "config.json")) {
    throw Error(cfg_.file() + ": seed_lm.init: " + init + " is not a checkpoint directory (no config.json)");
  }
  nlohmann::json summary;
  const bool lead = data_parallel_rank() == 0;  // data-parallel ranks > 0 only train
  if (lead) begin_stage("seed");
  if (s.tokens > 0) {
    auto trainer = host_.registry().create<Trainer>(cfg_.node("seed_lm.trainer"));
    TrainJob job;
    job.name = "seed";
    job.init = init;
    job.data = all_data();
    job.tokens = s.tokens;
    job.out_dir = dir_.seed_dir();
    job.seed = cfg_.seed;
    job.bos_id = tok->bos_id();
    job.eos_id = tok->eos_id();
    job.pad_id = tok->pad_id();
    spdlog::info("[seed] pretraining on the whole training mix for {} tokens", s.tokens);
    const TrainResult r = trainer->train(job);
    if (!lead && s.init.empty()) fs::remove_all(init);  // this rank's own copy of the initial weights
    if (lead) export_tokenizer(*tok, r.checkpoint);
    summary = result_json(dir_, r);
  } else {
    spdlog::info("[seed] seed_lm.tokens = 0: the experts branch from {}", init);
    summary = {{"checkpoint", fs::path(init).is_absolute() && init.rfind(dir_.root(), 0) != 0 ? init : rel(dir_, init)},
               {"steps", 0}, {"tokens", 0}};
  }
  if (lead) finish_stage("seed", summary);
}

void Pipeline::train_experts(const std::vector<int32_t>& which) {
  const int32_t k = experts();
  std::vector<int32_t> todo = which;
  if (todo.empty())
    for (int32_t j = 0; j < k; ++j) todo.push_back(j);
  for (int32_t j : todo)
    if (j < 0 || j >= k) throw Error("--expert " + std::to_string(j) + ": there are experts 0.." + std::to_string(k - 1));
  bool any = false;
  for (int32_t j : todo) any = any || !done(expert_stage(j));
  if (!any) {
    spdlog::info("[experts] {} finished earlier; skipping", which.empty() ? std::string("all experts") : std::string("the requested experts"));
    write_manifest();
    return;
  }
  require_done("assign", "cbtm assign CONFIG --out " + dir_.root());
  require_done("seed", "cbtm train CONFIG --out " + dir_.root() + " --seed");
  const std::string seed = seed_checkpoint();
  auto tok = load_tokenizer();
  auto trainer = host_.registry().create<Trainer>(cfg_.node("branch.trainer"));
  const bool lead = data_parallel_rank() == 0;  // data-parallel ranks > 0 only train
  const int64_t per_expert = cfg_.branch.tokens / k;
  for (int32_t j : todo) {
    const std::string stage = expert_stage(j);
    if (done(stage)) {
      spdlog::info("[{}] finished earlier; skipping", stage);
      continue;
    }
    if (list_token_shards(dir_.cluster_data(j)).empty() || dir_.record("assign")["summary"]["clusters"][j]["docs"].get<int64_t>() == 0)
      throw Error("cluster " + std::to_string(j) + " has no documents, so expert " + std::to_string(j) +
                  " cannot be trained; use a balanced clusterer or a smaller k");
    if (lead) begin_stage(stage);
    TrainJob job;
    job.name = stage;
    job.init = seed;
    job.data = {dir_.cluster_data(j)};
    job.tokens = per_expert;
    job.batch_divisor = cfg_.branch.expert_batch == "split" ? k : 1;
    job.out_dir = dir_.expert_dir(j);
    job.seed = cfg_.seed * 1000003ull + 1 + static_cast<uint64_t>(j);
    job.bos_id = tok->bos_id();
    job.eos_id = tok->eos_id();
    job.pad_id = tok->pad_id();
    spdlog::info("[{}] branching from the seed; training on cluster {} for {} tokens", stage, j, per_expert);
    const TrainResult r = trainer->train(job);
    if (!lead) continue;
    export_tokenizer(*tok, r.checkpoint);
    nlohmann::json summary = result_json(dir_, r);
    summary["cluster"] = j;
    finish_stage(stage, summary);
    write_manifest();
  }
  if (lead) write_manifest();
}

void Pipeline::train_baselines(const std::vector<std::string>& which) {
  const YAML::Node list = cfg_.resolved()["baselines"];
  const std::vector<std::string> known = baseline_types();
  for (const auto& w : which)
    if (std::find(known.begin(), known.end(), w) == known.end())
      throw Error("--baseline " + w + ": not in the config's baselines");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string name = known[i];
    if (!which.empty() && std::find(which.begin(), which.end(), name) == which.end()) continue;
    const std::string stage = "baseline-" + name;
    if (done(stage)) {
      spdlog::info("[{}] finished earlier; skipping", stage);
      continue;
    }
    require_done("seed", "cbtm train CONFIG --out " + dir_.root() + " --seed");
    auto tok = load_tokenizer();
    auto trainer = host_.registry().create<Trainer>(cfg_.node("branch.trainer"));
    auto baseline = host_.registry().create<Baseline>(cfg_.node("baselines." + std::to_string(i)));
    BaselineContext ctx;
    ctx.registry = &host_.registry();
    ctx.trainer_config = cfg_.node("branch.trainer");
    ctx.trainer = trainer.get();
    ctx.dir = dir_.baseline_dir(name);
    ctx.seed_checkpoint = seed_checkpoint();
    ctx.all_data = all_data();
    ctx.tokens = cfg_.branch.tokens;
    ctx.seed = cfg_.seed * 1000003ull;
    ctx.bos_id = tok->bos_id();
    ctx.eos_id = tok->eos_id();
    ctx.pad_id = tok->pad_id();
    spdlog::info("[{}] training from the seed on the whole training mix for {} tokens", stage, ctx.tokens);
    const bool lead = data_parallel_rank() == 0;  // data-parallel ranks > 0 only train
    if (lead) begin_stage(stage);
    const TrainResult r = baseline->train(ctx);
    if (!lead) continue;
    export_tokenizer_under(*tok, ctx.dir);
    nlohmann::json summary = r.checkpoint.empty() ? nlohmann::json{{"tokens", ctx.tokens}} : result_json(dir_, r);
    summary["dir"] = rel(dir_, ctx.dir);
    finish_stage(stage, summary);
  }
  if (data_parallel_rank() == 0) write_manifest();
}

}  // namespace cbtm
