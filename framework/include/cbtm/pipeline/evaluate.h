#pragma once
/// \file evaluate.h
/// Held-out perplexity: single models and routed sparse ensembles.
///
/// Protocol (the reference's): one document per row, [</s>, x1..xn, </s>] truncated to the
/// model's length, every token but the first scored (so the end of the document is scored);
/// perplexity = exp(total NLL / total scored tokens) over all documents. Bits per byte use
/// the bytes of the scored tokens.
///
/// An ensemble routes every position of every document (router.h), then runs each expert
/// only on the documents where some position gives it a non-zero weight -- and there only on
/// the prefix up to its last such position -- and mixes the experts' log-probabilities with
/// mix_log_probs (ensemble.h).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/document.h"
#include "cbtm/matrix.h"

namespace cbtm {

class Tokenizer;
class Router;
class LanguageModel;

struct EvalDoc {
  std::string id;
  std::string domain;
  Document doc;                     ///< the source document (for metadata routers)
  std::vector<int32_t> row;         ///< [bos, x1.., eos], truncated
  std::vector<std::string> pieces;  ///< text of row[0..L-2]: the context pieces ("" for bos)
  int64_t bytes = 0;                ///< bytes of the scored tokens
};

/// Tokenizes documents into rows of at most max_length tokens (>= 2).
std::vector<EvalDoc> prepare_eval_docs(const std::vector<Document>& docs, const Tokenizer& tok,
                                       int64_t max_length, const std::string& domain_field);

struct PerplexityScore {
  double nll = 0;
  int64_t tokens = 0;
  int64_t bytes = 0;
  int64_t docs = 0;
  void add(const std::vector<float>& logp, int64_t doc_bytes);
  double ppl() const;
  double bits_per_byte() const;
  nlohmann::json to_json() const;
};

/// Overall and per-domain scores of one model or ensemble.
struct ModelScore {
  PerplexityScore all;
  std::map<std::string, PerplexityScore> by_domain;
  void add(const EvalDoc& d, const std::vector<float>& logp);
  nlohmann::json to_json() const;
};

/// Scores every document with one model (logging its throughput under `name`); optionally
/// returns the per-token log-probs.
ModelScore score_model(LanguageModel& lm, const std::vector<EvalDoc>& docs,
                       std::vector<std::vector<float>>* logp_out = nullptr, const std::string& name = "model");

/// A text-only router's weights for every document, routed in parallel over documents (as
/// EnsembleEvaluator::add does). Error naming the ensemble and the failure.
std::vector<Matrix> route_documents(const Router& router, const std::vector<EvalDoc>& docs, const std::string& name);

class EnsembleEvaluator {
 public:
  EnsembleEvaluator(const std::vector<EvalDoc>& docs, int32_t experts);
  /// Routes every document with `router` (in parallel) and remembers the weights. A router
  /// that needs the experts' scores (Router::needs_expert_scores) is routed at the end of
  /// run(), which then runs every expert on every document; it must outlive run().
  void add(const std::string& name, const Router& router);
  /// Runs every expert on the documents (and prefixes) some ensemble needs it for, asking it
  /// for the positions where some ensemble weights it (LanguageModel::score_positions); load(j)
  /// loads expert j (experts are loaded one at a time and released after use).
  void run(const std::function<std::unique_ptr<LanguageModel>(int32_t)>& load);

  struct Result {
    ModelScore score;
    double mean_active_experts = 0;  ///< per document: experts run (weighted somewhere, or their scores read by the router)
    double mean_token_experts = 0;   ///< per scored token: experts with non-zero weight
    int64_t expert_doc_runs = 0;     ///< (expert, document) forward passes this ensemble needs
    int64_t expert_tokens = 0;       ///< scored positions those passes cover (prefixes count their length)
    double expert_token_fraction = 0;  ///< expert_tokens / (K x scored tokens): 1 = every expert everywhere
  };
  Result result(const std::string& name) const;
  /// The same figures over document `doc` alone (as if it had been evaluated by itself:
  /// batching documents together changes only float rounding in the experts).
  Result result(const std::string& name, size_t doc) const;
  /// The mixed log-probabilities of document i under ensemble `name` (after run()).
  std::vector<float> mixed(const std::string& name, size_t i) const;
  /// Expert j alone on every document (only if it ran on all of them).
  bool has_standalone(int32_t j) const;
  ModelScore standalone(int32_t j) const;
  /// Per document, the best single expert chosen after the fact (an upper bound on top-1
  /// routing); requires every expert to have run on every document.
  bool has_oracle() const;
  ModelScore oracle() const;
  /// Expert j's log-probabilities on document i (as far as it ran; NaN where no ensemble
  /// weighted it).
  const std::vector<float>& expert_log_probs(int32_t j, size_t i) const { return logp_[j][i]; }

 private:
  const std::vector<EvalDoc>& docs_;
  int32_t k_;
  std::vector<std::string> names_;
  std::map<std::string, std::vector<Matrix>> weights_;  // name -> per doc
  std::vector<std::vector<std::vector<float>>> logp_;   // expert -> doc -> log-probs
  std::vector<std::vector<std::vector<uint8_t>>> have_;  // expert -> doc -> 1 per scored token logp_ holds
  std::map<std::string, const Router*> scored_;         // routers routed from expert scores
  std::set<std::string> routed_;                        // ... once run() has routed them

  void check_shapes(const std::string& name, const std::vector<Matrix>& w) const;
  Result result_over(const std::string& name, size_t begin, size_t end) const;
};

/// Expert specialisation (the paper's Fig. 15): every expert's perplexity on the held-out
/// documents of every cluster, and its ratio to the perplexity of that cluster's own expert
/// (ratio[c][c] = 1; above 1: worse than the specialist).
struct Specialisation {
  std::vector<int64_t> docs;                 ///< held-out documents per cluster
  std::vector<std::vector<double>> ppl;      ///< [cluster][expert]; NaN for an empty cluster
  std::vector<std::vector<double>> ratio;    ///< ppl[c][j] / ppl[c][c]
  nlohmann::json to_json() const;
};
/// Requires ev.has_oracle() (every expert ran on every document); cluster[i] is document i's
/// nearest cluster.
Specialisation specialisation(const EnsembleEvaluator& ev, const std::vector<EvalDoc>& docs,
                              const std::vector<int32_t>& cluster, int32_t experts);

/// Scores the calibration documents with every expert (load(j), one at a time) and hands
/// the log-probabilities to router.calibrate() (see Router::calibration_docs).
void calibrate_router(Router& router, const std::vector<EvalDoc>& calib, int32_t experts,
                      const std::function<std::unique_ptr<LanguageModel>(int32_t)>& load);

}  // namespace cbtm
