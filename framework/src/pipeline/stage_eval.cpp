// The eval stage: held-out perplexity of baselines, the seed, each expert and the C-BTM
// ensembles; writes results.json and prints the tables.
#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cbtm/artifact.h"
#include "cbtm/baseline.h"
#include "cbtm/clusterer.h"
#include "cbtm/corpus.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/json_file.h"
#include "cbtm/language_model.h"
#include "cbtm/pipeline/evaluate.h"
#include "cbtm/pipeline/pipeline.h"
#include "cbtm/pipeline/results_table.h"
#include "cbtm/plugin_host.h"
#include "cbtm/router.h"
#include "cbtm/tokenizer.h"
#include "cbtm/trainer.h"
#include "cbtm/runtime.h"
#include "cbtm/version.h"

namespace cbtm {

void Pipeline::eval() {
  const int32_t k = experts();
  for (int32_t j = 0; j < k; ++j)
    require_done(expert_stage(j), "cbtm train CONFIG --out " + dir_.root());
  for (const auto& b : cfg_.resolved()["baselines"])
    require_done("baseline-" + b["type"].as<std::string>(), "cbtm train CONFIG --out " + dir_.root());
  // Evaluation is cheap and writes only results.json: new eval settings simply re-evaluate.
  if (!dir_.record("eval").is_null() && !same_settings(dir_.record("eval").value("config", ""), config_text("eval"))) {
    spdlog::info("[eval] evaluation settings changed; re-evaluating");
    dir_.forget("eval");
  }
  if (done("eval")) {
    spdlog::info("[eval] finished earlier; results in {}", dir_.results());
    return;
  }
  write_manifest();
  const Registry& reg = host_.registry();
  const auto& d = cfg_.data;
  auto tok = load_tokenizer();
  ArtifactReader art(dir_.clusterer(), "clusterer");
  auto emb = art.load<Embedder>(reg, "embedder");
  auto cl = art.load<Clusterer>(reg, "clusterer");

  CorpusOptions co;
  co.text_field = d.text_field;
  co.id_field = d.id_field;
  co.on_bad_document = d.on_bad_document;
  // Routers that calibrate on held-out data (the cached prior) get the documents after the
  // evaluated ones.
  std::vector<std::unique_ptr<Router>> routers;
  int64_t calib_docs = 0;
  for (const auto& name : cfg_.ensemble_names) {
    routers.push_back(reg.create<Router>(cfg_.node("eval.ensembles." + name)));
    calib_docs = std::max(calib_docs, routers.back()->calibration_docs());
  }
  if (calib_docs > 0 && cfg_.eval.docs == 0)
    throw Error(cfg_.file() + ": eval.docs is 0 (every document of " + d.eval + " is evaluated), but an ensemble's router "
                "calibrates on " + std::to_string(calib_docs) + " held-out documents after the evaluated ones: set eval.docs");
  co.max_docs = cfg_.eval.docs + calib_docs;
  std::vector<Document> raw = read_corpus(d.eval, co);
  std::vector<Document> calib_raw;
  if (calib_docs > 0) {
    if (static_cast<int64_t>(raw.size()) < cfg_.eval.docs + calib_docs)
      throw Error(d.eval + ": has " + std::to_string(raw.size()) + " documents; eval.docs (" + std::to_string(cfg_.eval.docs) +
                  ") plus the router's calibration_docs (" + std::to_string(calib_docs) + ") need " +
                  std::to_string(cfg_.eval.docs + calib_docs));
    calib_raw.assign(raw.begin() + cfg_.eval.docs, raw.end());
    raw.resize(static_cast<size_t>(cfg_.eval.docs));
  }

  // Every model in a run shares the architecture; its length limit bounds the rows.
  const std::string seed_ckpt = seed_checkpoint();
  auto seed_lm = load_language_model(reg, seed_ckpt);
  int64_t max_len = seed_lm->max_length();
  if (cfg_.eval.max_length > 0) max_len = std::min(max_len, cfg_.eval.max_length);
  const auto docs = prepare_eval_docs(raw, *tok, max_len, d.domain_field);
  int64_t scored = 0;
  for (const auto& e : docs) scored += static_cast<int64_t>(e.row.size()) - 1;
  spdlog::info("[eval] {} held-out documents ({} scored tokens, rows of at most {} tokens)", docs.size(), scored, max_len);

  nlohmann::json models = nlohmann::json::array();
  auto add_model = [&](const std::string& name, const std::string& role, const ModelScore& s, nlohmann::json extra = {}) {
    nlohmann::json m = s.to_json();
    m["name"] = name;
    m["role"] = role;
    for (auto it = extra.begin(); it != extra.end(); ++it) m[it.key()] = it.value();
    models.push_back(m);
    spdlog::info("[eval] {:<24} ppl {:.3f}", name, s.all.ppl());
  };

  // Baselines.
  const YAML::Node bl = cfg_.resolved()["baselines"];
  for (size_t i = 0; i < bl.size(); ++i) {
    const std::string name = bl[i]["type"].as<std::string>();
    auto baseline = reg.create<Baseline>(cfg_.node("baselines." + std::to_string(i)));
    auto trainer = reg.create<Trainer>(cfg_.node("branch.trainer"));
    BaselineContext ctx;
    ctx.registry = &reg;
    ctx.trainer = trainer.get();
    ctx.dir = dir_.baseline_dir(name);
    ctx.seed_checkpoint = seed_ckpt;
    ctx.all_data = all_data();
    ctx.tokens = cfg_.branch.tokens;
    ctx.seed = cfg_.seed * 1000003ull;
    ctx.bos_id = tok->bos_id();
    ctx.eos_id = tok->eos_id();
    ctx.pad_id = tok->pad_id();
    auto lm = baseline->model(ctx);
    add_model(name, name == "dense" ? "dense" : "baseline", score_model(*lm, docs, nullptr, name));
  }
  if (cfg_.eval.seed_model) add_model("seed", "seed", score_model(*seed_lm, docs, nullptr, "seed"));
  seed_lm.reset();

  // C-BTM ensembles.
  RoutingContext rctx;
  rctx.embedder = emb.get();
  rctx.clusterer = cl.get();
  rctx.experts = k;
  // The assign stage's training documents per (metadata value, cluster), for metadata routers.
  const std::map<std::string, std::vector<int64_t>> domain_counts = dir_.domain_counts();
  rctx.domain_counts = domain_counts.empty() ? nullptr : &domain_counts;
  rctx.domain_field = cfg_.data.domain_field;
  EnsembleEvaluator ev(docs, k);
  const nlohmann::json manifest = read_json_file(dir_.manifest());
  auto load_expert = [&](int32_t j) {
    return load_language_model(reg, dir_.path(manifest_expert_checkpoint(manifest, dir_.manifest(), static_cast<size_t>(j))),
                               expert_device(j));
  };
  const auto calib = prepare_eval_docs(calib_raw, *tok, max_len, d.domain_field);
  for (size_t i = 0; i < routers.size(); ++i) {
    routers[i]->bind(rctx);
    if (routers[i]->calibration_docs() > 0) {
      const std::vector<EvalDoc> mine(calib.begin(), calib.begin() + routers[i]->calibration_docs());
      spdlog::info("[eval] ensemble {}: calibrating its router on {} held-out documents", cfg_.ensemble_names[i], mine.size());
      calibrate_router(*routers[i], mine, k, load_expert);
    }
    ev.add(cfg_.ensemble_names[i], *routers[i]);
  }
  ev.run(load_expert);
  for (const auto& name : cfg_.ensemble_names) {
    const auto r = ev.result(name);
    nlohmann::json extra = {{"router", YAML::Dump(cfg_.node("eval.ensembles." + name).node)},
                            {"mean_active_experts", r.mean_active_experts},
                            {"mean_token_experts", r.mean_token_experts},
                            {"expert_doc_runs", r.expert_doc_runs},
                            {"expert_token_fraction", r.expert_token_fraction}};
    add_model("c-btm " + name, "ensemble", r.score, extra);
  }
  if (ev.has_oracle()) add_model("best expert (oracle)", "oracle", ev.oracle());
  // Expert specialisation (Fig. 15): each held-out document goes to its nearest cluster.
  nlohmann::json spec;
  if (ev.has_oracle()) {
    std::vector<std::string> texts, meta;
    const std::string meta_field = cl->metadata_field();
    for (const auto& e : docs) {
      texts.push_back(e.doc.text);
      if (!meta_field.empty()) meta.push_back(e.doc.field(meta_field));
    }
    const Matrix x = emb->embed(texts);
    const Assignment a = meta_field.empty() ? cl->assign(x) : cl->assign_with_metadata(x, meta);
    spec = specialisation(ev, docs, a.cluster, k).to_json();
  } else {
    spdlog::info("[eval] no expert specialisation matrix: it needs every expert on every document "
                 "(an ensemble with top_k 0)");
  }
  for (int32_t j = 0; j < k; ++j)
    if (ev.has_standalone(j)) add_model("expert " + std::to_string(j) + " alone", "expert", ev.standalone(j));

  nlohmann::json results;
  results["format"] = "cbtm-results";
  results["format_version"] = 1;
  results["cbtm_version"] = kVersion;
  results["k"] = k;
  results["branch_tokens"] = cfg_.branch.tokens;
  results["tokens_per_expert"] = cfg_.branch.tokens / k;
  results["seed_tokens"] = cfg_.seed_lm.tokens;
  results["eval"] = {{"docs", docs.size()}, {"tokens", scored}, {"max_length", max_len}, {"file", d.eval}};
  results["models"] = models;
  if (!spec.is_null()) results["specialisation"] = spec;
  results["config"] = cfg_.yaml();
  write_file_atomic(dir_.results(), results.dump(2) + "\n");
  finish_stage("eval", {{"results", "results.json"}});
  spdlog::info("[eval] results -> {}", dir_.results());  // the table: the command prints it (stdout)
}

}  // namespace cbtm
