#pragma once
/// \file run_ensemble.h
/// A finished run's C-BTM ensemble loaded once, for scoring and generating text
/// (`cbtm generate`, `cbtm serve`): the tokenizer, the embedder and clusterer, every expert
/// and one router from the run's `eval.ensembles`.
///
/// Scoring follows cbtm eval's protocol (evaluate.h): [</s>, x1..xn, </s>] truncated to the
/// model's length, every token but the first scored, only the experts with weight run.
/// Generation: generate.h, with the run's experts and router.
///
/// \code
///   auto ens = RunEnsemble::open("out/quickstart", "top2", {}, host);
///   auto s = ens->score("Some text");                  // s.ppl
///   auto g = ens->generate("Once", {.max_tokens = 20}); // g.text
/// \endcode
#include <cstdint>
#include <memory>
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/serve/generate.h"
#include "cbtm/serve/worker.h"

namespace cbtm {

class PluginHost;
class Tokenizer;
class Embedder;
class Clusterer;
class Router;
class LanguageModel;

struct TextScore {
  int64_t tokens = 0;          ///< scored tokens
  double nll = 0;              ///< total negative log-likelihood (nats)
  double ppl = 0;              ///< exp(nll / tokens)
  int64_t bytes = 0;
  double mean_active_experts = 0;
  std::vector<float> logp;     ///< per scored token
  std::vector<std::string> pieces;  ///< the scored tokens' text
};

class RunEnsemble {
 public:
  /// Loads RUN (a finished `cbtm run` directory) and the router of eval.ensembles.NAME
  /// (empty: the first one listed); `overrides` are --set assignments applied to the run's
  /// config.yaml (e.g. eval.ensembles.top1.top_k=2). Error naming what is missing.
  static std::unique_ptr<RunEnsemble> open(const std::string& run, const std::string& ensemble,
                                           const std::vector<std::string>& overrides, PluginHost& host);
  ~RunEnsemble();

  /// Thread-safe: calls from any thread run on the ensemble's own worker thread (so the math
  /// libraries' thread pools stay warm however many client threads call). Texts that wait
  /// while the worker is busy are scored together, up to max_batch() at a time, as one
  /// evaluation (each expert runs once over all of them; batch_queue.h): under concurrent
  /// clients the per-call costs are shared. A text's score does not depend on its
  /// batch-mates beyond float rounding; a batch that fails is retried text by text, so an
  /// error reaches only the caller whose text caused it.
  TextScore score(const std::string& text);
  /// Thread-safe: scores `texts` together as one evaluation on the worker (a bulk request;
  /// not merged with other callers' texts).
  std::vector<TextScore> score_many(const std::vector<std::string>& texts);
  /// Scores `texts` as one evaluation, on the calling thread (not thread-safe: score() is).
  std::vector<TextScore> score_now(const std::vector<std::string>& texts);
  /// Most texts scored together (>= 1; 1: one at a time). Default 16.
  void set_max_batch(int64_t n);
  int64_t max_batch() const;
  /// Thread-safe, as score(). Error if the prompt does not fit the model; GenerationCancelled
  /// when opt.cancelled says so between tokens (the client hung up).
  Generation generate(const std::string& prompt, const GenerateOptions& opt);
  /// Shuts the ensemble down for good once `stop` is true (`cbtm serve`'s SIGINT/SIGTERM flag;
  /// it must outlive the ensemble), so that stopping does not wait for the queue to drain:
  /// from then on score(), score_many() and generate() throw ShuttingDown (worker.h) at once,
  /// the calls queued but not started throw it instead of running, and a generation in
  /// progress throws it before its next token. No thread watches `stop`: it is read when a
  /// call is made, when a queued call's turn comes, and between generated tokens.
  void shut_down_when(const std::atomic<bool>& stop);
  /// Lends the calling thread to run score() and generate() calls (made from other threads)
  /// until `stop` becomes true (checked every 10 ms). `cbtm serve` and `cbtm generate` lend
  /// their main thread: the models run about twice as fast there as on any other thread once
  /// the main thread has an OpenMP team of its own (docs/design.md, Threads).
  /// `lent`, if given, is called on this thread once it is lent, before it takes a call: start
  /// the callers there, so that none of their calls goes to the ensemble's own thread (which
  /// runs the calls while no thread is lent).
  void run_requests_here(const std::atomic<bool>& stop, const std::function<void()>& lent = {});
  /// Runs `work` (which calls score()/generate()) on a new thread while the calling thread
  /// runs those calls (run_requests_here); returns when `work` has, rethrowing what it threw.
  void run_with_this_thread(const std::function<void()>& work);
  /// run, ensemble name, router config, experts, parameters, max_length, max_batch, and
  /// the texts scored so far and the evaluations they took (score_requests, score_batches).
  nlohmann::json info() const;

 private:
  RunEnsemble() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Generation generate_now(const std::string& prompt, const GenerateOptions& opt);
  void throw_if_shut_down() const;
};

}  // namespace cbtm
