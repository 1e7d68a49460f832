// A finished run's ensemble, loaded once: scoring (via EnsembleEvaluator) and generation.
#include "cbtm/serve/run_ensemble.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
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

// Runs submitted jobs one at a time: on its own long-lived thread, or on a thread that lends
// itself with run_here() (the process's main thread runs the models about twice as fast as any
// other thread here -- measured with bench/serve_bench, cause not yet known -- so `cbtm serve`
// lends it). Model calls made from many short-lived connection threads would also each start
// a fresh OpenMP team.
class Worker {
 public:
  Worker() : thread_([this] { loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  template <class F> auto run(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.emplace_back([&task] { task(); });
    }
    cv_.notify_all();
    return result.get();  // rethrows what the job threw
  }
  // Runs the jobs on the calling thread (the own thread then idles) until `stop` is true.
  void run_here(const std::atomic<bool>& stop) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++lent_;
    }
    while (!stop.load()) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return !jobs_.empty(); })) continue;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      std::lock_guard<std::mutex> one(running_);
      job();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      --lent_;
    }
    cv_.notify_all();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || (lent_ == 0 && !jobs_.empty()); });
        if (stop_ && jobs_.empty()) return;
        if (jobs_.empty() || lent_ > 0) continue;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      std::lock_guard<std::mutex> one(running_);  // one job at a time, whichever thread runs it
      job();
    }
  }
  std::mutex mu_, running_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  int lent_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

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
  Worker worker;  // declared last: joined first, before the models it runs go away
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
  const auto manifest = nlohmann::json::parse(read_file(run + "/manifest.json"));
  if (!manifest.contains("experts") || manifest["experts"].empty()) throw Error(run + "/manifest.json: lists no experts");
  for (const auto& e : manifest["experts"])  // expert j on runtime.expert_devices[j mod n]
    im->experts.push_back(load_language_model(reg, run + "/" + e["checkpoint"].get<std::string>(),
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
  self->impl_ = std::move(im);
  return self;
}

nlohmann::json RunEnsemble::info() const {
  const Impl& im = *impl_;
  return {{"run", im.run}, {"ensemble", im.name}, {"router", im.router_yaml}, {"experts", im.experts.size()},
          {"parameters_per_expert", im.experts.front()->parameters()}, {"max_length", im.max_len},
          {"vocab_size", im.tok->vocab_size()}};
}

TextScore RunEnsemble::score(const std::string& text) {
  return impl_->worker.run([&] { return score_now(text); });
}

Generation RunEnsemble::generate(const std::string& prompt, const GenerateOptions& opt) {
  return impl_->worker.run([&] { return generate_now(prompt, opt); });
}

void RunEnsemble::run_requests_here(const std::atomic<bool>& stop) { impl_->worker.run_here(stop); }

TextScore RunEnsemble::score_now(const std::string& text) {
  Impl& im = *impl_;
  Document d;
  d.id = "request";
  d.text = text;
  const auto docs = prepare_eval_docs({d}, *im.tok, im.max_len, "");
  const int32_t k = static_cast<int32_t>(im.experts.size());
  EnsembleEvaluator ev(docs, k);
  ev.add(im.name, *im.router);
  ev.run([&](int32_t j) { return std::make_unique<BorrowedModel>(*im.experts[j]); });
  const auto r = ev.result(im.name);
  TextScore s;
  s.tokens = r.score.all.tokens;
  s.nll = r.score.all.nll;
  s.ppl = r.score.all.ppl();
  s.bytes = r.score.all.bytes;
  s.mean_active_experts = r.mean_active_experts;
  // per-token values: rerun the mixture on the stored scores (cheap) through a one-doc result
  s.logp.reserve(static_cast<size_t>(s.tokens));
  s.logp = ev.mixed(im.name, 0);
  for (size_t t = 1; t < docs[0].row.size(); ++t) s.pieces.push_back(im.tok->piece(docs[0].row[t]));
  return s;
}

Generation RunEnsemble::generate_now(const std::string& prompt, const GenerateOptions& opt) {
  if (opt.max_tokens < 0) throw Error("max_tokens must be >= 0");
  if (!(opt.temperature >= 0)) throw Error("temperature must be >= 0");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw Error("top_p must be in (0, 1]");
  Impl& im = *impl_;
  const int32_t k = static_cast<int32_t>(im.experts.size());
  std::vector<int32_t> row = {im.tok->bos_id()};
  for (int32_t t : im.tok->encode(prompt)) row.push_back(t);
  if (static_cast<int64_t>(row.size()) >= im.max_len)
    throw Error("the prompt has " + std::to_string(row.size() - 1) + " tokens; the model's length is " +
                std::to_string(im.max_len) + " (with the beginning-of-document token), so nothing can follow it");
  std::vector<std::string> pieces = {""};
  for (size_t t = 1; t < row.size(); ++t) pieces.push_back(im.tok->piece(row[t]));
  Document doc;
  doc.id = "request";
  doc.text = prompt;
  std::mt19937_64 rng(opt.seed);
  // Per expert, its continuation (key/value cache) and how many tokens of `row` it has seen:
  // an expert the router turns to later catches up on the tokens since.
  std::vector<std::unique_ptr<Continuation>> cont(static_cast<size_t>(k));
  std::vector<size_t> fed(static_cast<size_t>(k), 0);
  Generation g;
  g.stop_reason = "max_tokens";
  for (int64_t step = 0; step < opt.max_tokens; ++step) {
    if (static_cast<int64_t>(row.size()) >= im.max_len) {
      g.stop_reason = "max_length";
      break;
    }
    Matrix w;
    if (im.router->needs_expert_scores()) {
      std::vector<std::vector<float>> lp(static_cast<size_t>(k));
      // log-probs of the tokens so far, plus a dummy slot for the position being predicted
      for (int32_t j = 0; j < k; ++j) {
        lp[j] = row.size() >= 2 ? im.experts[j]->score({row})[0] : std::vector<float>{};
        lp[j].push_back(0.f);
      }
      w = im.router->route_scored(doc, pieces, lp);
    } else {
      w = im.router->route(doc, pieces);
    }
    if (w.rows != static_cast<int64_t>(pieces.size()) || w.cols != k)
      throw Error("router returned a " + std::to_string(w.rows) + "x" + std::to_string(w.cols) + " matrix for " +
                  std::to_string(pieces.size()) + " positions and " + std::to_string(k) + " experts");
    std::vector<float> last(w.row(w.rows - 1), w.row(w.rows - 1) + k);
    std::vector<std::vector<float>> next(static_cast<size_t>(k));
    std::vector<int32_t> ran;
    for (int32_t j = 0; j < k; ++j)
      if (last[j] > 0.f) {
        if (!cont[j]) cont[j] = im.experts[j]->continuation();
        next[j] = cont[j]->extend(std::vector<int32_t>(row.begin() + static_cast<int64_t>(fed[j]), row.end()));
        fed[j] = row.size();
        ran.push_back(j);
      }
    const int32_t tok = sample_token(mix_next_token(next, last), opt.temperature, opt.top_p, rng);
    if (opt.stop_at_eos && tok == im.tok->eos_id()) {
      g.stop_reason = "eos";
      break;
    }
    row.push_back(tok);
    g.tokens.push_back(tok);
    g.experts.push_back(ran);
    pieces.push_back(im.tok->piece(tok));
    doc.text += pieces.back();
  }
  g.text = im.tok->decode(g.tokens);
  return g;
}

std::vector<float> mix_next_token(const std::vector<std::vector<float>>& next, const std::vector<float>& w) {
  if (next.size() != w.size())
    throw Error("mix_next_token: " + std::to_string(next.size()) + " experts but " + std::to_string(w.size()) + " weights");
  size_t V = 0;
  for (size_t j = 0; j < w.size(); ++j)
    if (w[j] > 0.f) {
      if (next[j].empty()) throw Error("mix_next_token: expert " + std::to_string(j) + " has weight but no distribution");
      if (V && next[j].size() != V) throw Error("mix_next_token: experts' vocabularies differ in size");
      V = next[j].size();
    }
  if (!V) throw Error("mix_next_token: no expert has weight");
  std::vector<float> out(V);
  for (size_t v = 0; v < V; ++v) {
    double m = -std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < w.size(); ++j)
      if (w[j] > 0.f) m = std::max(m, std::log(static_cast<double>(w[j])) + next[j][v]);
    if (!std::isfinite(m)) {
      out[v] = static_cast<float>(m);
      continue;
    }
    double s = 0;
    for (size_t j = 0; j < w.size(); ++j)
      if (w[j] > 0.f) s += std::exp(std::log(static_cast<double>(w[j])) + next[j][v] - m);
    out[v] = static_cast<float>(m + std::log(s));
  }
  return out;
}

int32_t sample_token(const std::vector<float>& logp, double temperature, double top_p, std::mt19937_64& rng) {
  if (logp.empty()) throw Error("sample_token: empty distribution");
  if (temperature <= 0) return static_cast<int32_t>(std::max_element(logp.begin(), logp.end()) - logp.begin());
  const double mx = *std::max_element(logp.begin(), logp.end());
  std::vector<double> p(logp.size());
  double s = 0;
  for (size_t v = 0; v < p.size(); ++v) s += (p[v] = std::exp((logp[v] - mx) / temperature));
  std::vector<int32_t> idx(p.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  size_t keep = 0;
  double mass = 0;
  while (keep < idx.size() && (keep == 0 || mass < top_p * s)) mass += p[idx[keep++]];
  std::uniform_real_distribution<double> u(0.0, mass);
  double x = u(rng), c = 0;
  for (size_t i = 0; i < keep; ++i) {
    c += p[idx[i]];
    if (x < c) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace cbtm
