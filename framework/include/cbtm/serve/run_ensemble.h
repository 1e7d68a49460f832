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
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/serve/generate.h"

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

  /// Thread-safe: calls from any thread run one at a time on the ensemble's own worker
  /// thread (so the math libraries' thread pools stay warm however many client threads call).
  TextScore score(const std::string& text);
  /// Thread-safe, as score(). Error if the prompt does not fit the model.
  Generation generate(const std::string& prompt, const GenerateOptions& opt);
  /// Lends the calling thread to run score() and generate() calls (made from other threads)
  /// until `stop` becomes true (checked every 100 ms). `cbtm serve` lends its main thread:
  /// the models run about twice as fast there as on any other thread (bench/serve_bench).
  void run_requests_here(const std::atomic<bool>& stop);
  /// run, ensemble name, router config, experts, parameters, max_length.
  nlohmann::json info() const;

 private:
  RunEnsemble() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  TextScore score_now(const std::string& text);
  Generation generate_now(const std::string& prompt, const GenerateOptions& opt);
};

}  // namespace cbtm
