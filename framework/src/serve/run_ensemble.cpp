// A finished run's ensemble, loaded once: scoring (via EnsembleEvaluator) and generation.
#include "cbtm/json_file.h"
#include "cbtm/serve/run_ensemble.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>

#include <yaml-cpp/yaml.h>

#include "cbtm/artifact.h"
#include "cbtm/clusterer.h"
#include "cbtm/embedder.h"
#include "cbtm/error.h"
#include "cbtm/fs.h"
#include "cbtm/language_model.h"
#include "cbtm/pipeline/evaluate.h"
#include "cbtm/pipeline/run_config.h"
#include "cbtm/pipeline/run_dir.h"
#include "cbtm/plugin_host.h"
#include "cbtm/router.h"
#include "cbtm/runtime.h"
#include "cbtm/serve/batch_queue.h"
#include "cbtm/tokenizer.h"

namespace cbtm {

namespace {

// Hands an already loaded expert to EnsembleEvaluator::run without giving up ownership.
class BorrowedModel : public LanguageModel {
 public:
  explicit BorrowedModel(LanguageModel& m) : m_(m) {}
  std::vector<std::vector<float>> score(const std::vector<std::vector<int32_t>>& s) override { return m_.score(s); }
  std::vector<std::vector<float>> score_positions(const std::vector<std::vector<int32_t>>& s,
                                                  const std::vector<std::vector<uint8_t>>& wanted) override {
    return m_.score_positions(s, wanted);
  }
  std::vector<std::vector<float>> next_token_log_probs(const std::vector<std::vector<int32_t>>& s) override {
    return m_.next_token_log_probs(s);
  }
  std::unique_ptr<Continuation> continuation() override { return m_.continuation(); }
  int64_t max_length() const override { return m_.max_length(); }
  int64_t parameters() const override { return m_.parameters(); }

 private:
  LanguageModel& m_;
};

}  // namespace

struct RunEnsemble::Impl {
  std::string run, name, router_yaml;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Embedder> emb;
  std::unique_ptr<Clusterer> cl;
  std::vector<std::unique_ptr<LanguageModel>> experts;
  std::map<std::string, std::vector<int64_t>> domain_counts;
  std::unique_ptr<Router> router;
  int64_t max_len = 0;
  std::string domain_field;
  std::unique_ptr<BatchQueue<std::string, TextScore>> scores;  // /score texts gathered into evaluations (batch_queue.h)
  ModelWorker worker;  // declared last: joined first, before the models (and queued scores) go away
};

RunEnsemble::~RunEnsemble() = default;

std::unique_ptr<RunEnsemble> RunEnsemble::open(const std::string& run, const std::string& ensemble,
                                               const std::vector<std::string>& overrides, PluginHost& host) {
  namespace fs = std::filesystem;
  for (const char* f : {"config.yaml", "manifest.json", "tokenizer.safetensors", "clusterer.safetensors"})
    if (!fs::exists(fs::path(run) / f))
      throw Error(run + ": not a finished run directory (no " + f + "); run `cbtm run CONFIG --out " + run + "` first");
  std::unique_ptr<RunEnsemble> self(new RunEnsemble());
  auto im = std::make_unique<Impl>();
  im->run = run;
  const RunConfig cfg = RunConfig::load(run + "/config.yaml", overrides, host);
  runtime() = cfg.runtime;  // threads, device, bf16, expert_devices of the run (or --set)
  const Registry& reg = host.registry();
  if (cfg.ensemble_names.empty()) throw Error(run + "/config.yaml: eval.ensembles is empty: no router to serve");
  im->name = ensemble.empty() ? cfg.ensemble_names.front() : ensemble;
  if (std::find(cfg.ensemble_names.begin(), cfg.ensemble_names.end(), im->name) == cfg.ensemble_names.end()) {
    std::string known;
    for (const auto& n : cfg.ensemble_names) known += (known.empty() ? "" : ", ") + n;
    throw Error(run + "/config.yaml: no ensemble '" + im->name + "' in eval.ensembles (has: " + known + ")");
  }
  ArtifactReader tok_art(run + "/tokenizer.safetensors", "tokenizer");
  im->tok = tok_art.load<Tokenizer>(reg, "tokenizer");
  ArtifactReader art(run + "/clusterer.safetensors", "clusterer");
  im->emb = art.load<Embedder>(reg, "embedder");
  im->cl = art.load<Clusterer>(reg, "clusterer");
  const auto manifest = read_json_file(run + "/manifest.json");
  if (!manifest.contains("experts") || manifest["experts"].empty()) throw Error(run + "/manifest.json: lists no experts");
  for (size_t j = 0; j < manifest["experts"].size(); ++j)  // expert j on runtime.expert_devices[j mod n]
    im->experts.push_back(load_language_model(reg, run + "/" + manifest_expert_checkpoint(manifest, run + "/manifest.json", j),
                                              expert_device(static_cast<int32_t>(im->experts.size()))));
  im->max_len = im->experts.front()->max_length();
  if (cfg.eval.max_length > 0) im->max_len = std::min(im->max_len, cfg.eval.max_length);
  im->domain_counts = RunDir(run).domain_counts();
  im->domain_field = cfg.data.domain_field;
  const ConfigNode rn = cfg.node("eval.ensembles." + im->name);
  im->router_yaml = YAML::Dump(rn.node);
  im->router = reg.create<Router>(rn);
  if (im->router->calibration_docs() > 0)
    throw Error("ensemble '" + im->name + "': its router calibrates on held-out documents (calibration_docs " +
                std::to_string(im->router->calibration_docs()) + "), which serving does not do; set "
                "eval.ensembles." + im->name + ".calibration_docs=0 or choose another ensemble");
  RoutingContext ctx;
  ctx.embedder = im->emb.get();
  ctx.clusterer = im->cl.get();
  ctx.experts = static_cast<int32_t>(im->experts.size());
  ctx.domain_counts = im->domain_counts.empty() ? nullptr : &im->domain_counts;
  ctx.domain_field = im->domain_field;
  im->router->bind(ctx);
  RunEnsemble* me = self.get();
  ModelWorker* worker = &im->worker;
  im->scores = std::make_unique<BatchQueue<std::string, TextScore>>(
      [me](const std::vector<std::string>& texts) {
        me->throw_if_shut_down();  // texts queued before the shutdown are not scored
        return me->score_now(texts);
      },
      [worker](std::function<void()> job) { worker->post(std::move(job)); });
  self->impl_ = std::move(im);
  return self;
}

nlohmann::json RunEnsemble::info() const {
  const Impl& im = *impl_;
  return {{"run", im.run}, {"ensemble", im.name}, {"router", im.router_yaml}, {"experts", im.experts.size()},
          {"parameters_per_expert", im.experts.front()->parameters()}, {"max_length", im.max_len},
          {"vocab_size", im.tok->vocab_size()}, {"max_batch", im.scores->max_batch()},
          {"score_requests", im.scores->calls()}, {"score_batches", im.scores->batches()}};
}

void RunEnsemble::set_max_batch(int64_t n) {
  if (n < 1) throw Error("max_batch must be >= 1 (got " + std::to_string(n) + ")");
  impl_->scores->set_max_batch(n);
}

int64_t RunEnsemble::max_batch() const { return impl_->scores->max_batch(); }

TextScore RunEnsemble::score(const std::string& text) {
  throw_if_shut_down();
  return impl_->scores->call(text);
}

void RunEnsemble::shut_down_when(const std::atomic<bool>& stop) { impl_->worker.close_when(stop); }

void RunEnsemble::throw_if_shut_down() const {
  if (impl_->worker.closed()) throw ShuttingDown(kShuttingDownNotRun);
}

void RunEnsemble::run_with_this_thread(const std::function<void()>& work) {
  std::exception_ptr error;
  std::atomic<bool> done{false};
  std::thread helper;
  run_requests_here(done, [&] {
    helper = std::thread([&] {
      try {
        work();
      } catch (...) {
        error = std::current_exception();
      }
      done = true;
    });
  });
  helper.join();
  if (error) std::rethrow_exception(error);
}

std::vector<TextScore> RunEnsemble::score_many(const std::vector<std::string>& texts) {
  return impl_->worker.run([&] { return score_now(texts); });
}

Generation RunEnsemble::generate(const std::string& prompt, const GenerateOptions& opt) {
  return impl_->worker.run([&] { return generate_now(prompt, opt); });
}

void RunEnsemble::run_requests_here(const std::atomic<bool>& stop, const std::function<void()>& lent) {
  impl_->worker.run_here(stop, lent);
}

std::vector<TextScore> RunEnsemble::score_now(const std::vector<std::string>& texts) {
  Impl& im = *impl_;
  std::vector<Document> in(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    in[i].id = "request-" + std::to_string(i);
    in[i].text = texts[i];
  }
  const auto docs = prepare_eval_docs(in, *im.tok, im.max_len, "");
  const int32_t k = static_cast<int32_t>(im.experts.size());
  EnsembleEvaluator ev(docs, k);
  ev.add(im.name, *im.router);
  ev.run([&](int32_t j) { return std::make_unique<BorrowedModel>(*im.experts[j]); });
  std::vector<TextScore> out(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    const auto r = ev.result(im.name, i);
    TextScore& s = out[i];
    s.tokens = r.score.all.tokens;
    s.nll = r.score.all.nll;
    s.ppl = r.score.all.ppl();
    s.bytes = r.score.all.bytes;
    s.mean_active_experts = r.mean_active_experts;
    s.logp = ev.mixed(im.name, i);
    for (size_t t = 1; t < docs[i].row.size(); ++t) s.pieces.push_back(im.tok->piece(docs[i].row[t]));
  }
  return out;
}

Generation RunEnsemble::generate_now(const std::string& prompt, const GenerateOptions& opt) {
  Impl& im = *impl_;
  std::vector<LanguageModel*> experts;
  for (auto& e : im.experts) experts.push_back(e.get());
  // between tokens: stop for the caller's reason (its client hung up) or for the shutdown
  GenerateOptions o = opt;
  const ModelWorker& worker = im.worker;
  o.cancelled = [&worker, &opt] { return worker.closed() || (opt.cancelled && opt.cancelled()); };
  try {
    return cbtm::generate(experts, *im.router, *im.tok, im.max_len, prompt, o);
  } catch (const GenerationCancelled& e) {
    if (worker.closed()) throw ShuttingDown(std::string("the server is shutting down: ") + e.what());
    throw;
  }
}

}  // namespace cbtm
