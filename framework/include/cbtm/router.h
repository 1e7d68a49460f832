#pragma once
/// \file router.h
/// Extension point: the weight of each expert for the next token, given the context so far.
///
/// A document to score is the token row [</s>, x1, ..., xn(, </s>)]. The router receives
/// the text piece of each context token (pieces[0] is "" for the leading </s>) and returns
/// a pieces.size() x experts matrix whose row r holds the weights after seeing
/// pieces[0..r] -- the weights used to predict token r+1. Rows sum to 1; zero entries mean
/// the expert is not needed (and is not run) for that token.
///
/// \code
///   auto router = registry.create<Router>(cfg.child("eval.ensembles.top2"));
///   router->bind({&embedder, &clusterer, k});
///   Matrix w = router->route(doc, pieces);
/// \endcode
///
/// Text that grows a token at a time (generation, serve) is routed through a session:
///
/// \code
///   auto s = router->session(doc);          // doc: id and metadata; its text is ignored
///   std::vector<float> w = s->push("");     // the leading </s>: weights for token 1
///   w = s->push(" The");                    // weights for token 2, ...
/// \endcode
///
/// push() returns what route() would return as its last row for the pieces pushed so far
/// (same values). The default session calls route() on all of them at every push; a router
/// that can update its state from the new piece alone (cluster_distance: the embedder's
/// incremental context) overrides session() so a token costs the same however long the text.
///
/// A router that weighs experts by how well each has predicted the document so far (BTM's
/// cached prior) returns true from needs_expert_scores(): the evaluator then runs every expert
/// on the whole document and calls route_scored() with their log-probabilities. Such a router
/// may also ask for held-out calibration documents (calibration_docs() > 0): calibrate() gets
/// their expert log-probabilities once, before any routing.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cbtm/component.h"
#include "cbtm/document.h"
#include "cbtm/matrix.h"

namespace cbtm {

class Embedder;
class Clusterer;

/// What a router may use. Pointers stay valid for the router's lifetime.
struct RoutingContext {
  const Embedder* embedder = nullptr;    ///< the fitted embedder h(.)
  const Clusterer* clusterer = nullptr;  ///< centres c_j, one per expert
  int32_t experts = 0;                   ///< K; expert j was trained on cluster j
  /// Training documents per metadata value and cluster (the assign stage's overlap table,
  /// domain_counts->at(value)[j]), for routers that read a document's metadata; null when the
  /// run has no metadata field.
  const std::map<std::string, std::vector<int64_t>>* domain_counts = nullptr;
  std::string domain_field = "domain";   ///< the Document::meta key those values come from
};

/// How a router weighs experts on a few-shot classification task (fewshot/evaluate.h).
struct FewShotRouting {
  /// false: route() on the prompt (demonstrations + example), the weights after its last
  /// token. true: fewshot_weights(), from each expert's accuracy ("performance routing").
  bool by_accuracy = false;
  /// Probes each expert is scored on before the test examples (fewshot_begin()):
  /// "validation" -- the demonstrations + a training example not among them, each;
  /// "demonstrations" -- a random permutation of the demonstrations, the last one's label
  /// predicted from the others; "" -- none.
  std::string probes;
  int32_t probe_count = 0;
};

/// Routing of one growing text; see the file comment. Not thread-safe (one per text).
class RoutingSession {
 public:
  virtual ~RoutingSession() = default;
  /// Appends the next context piece and returns the experts' weights for the token after it.
  virtual std::vector<float> push(const std::string& piece) = 0;
};

class Router : public Component {
 public:
  static constexpr const char* kKind = "router";

  /// Called once before route().
  virtual void bind(const RoutingContext& ctx) = 0;
  /// Weights for every position of one document (see the file comment). Thread-safe.
  virtual Matrix route(const Document& doc, const std::vector<std::string>& pieces) const = 0;
  /// A session routing a text pushed piece by piece (doc supplies the id and metadata);
  /// each push() equals the last row of route() on the pieces so far. Default: route() on
  /// the whole text at every push. Thread-safe (the session is not). Not for a router that
  /// needs_expert_scores().
  virtual std::unique_ptr<RoutingSession> session(const Document& doc) const;

  /// True when the weights depend on the experts' predictions (route_scored()).
  virtual bool needs_expert_scores() const { return false; }
  /// Weights given expert_logp[j][t] = log p_j(row[t+1] | row[0..t]) for every expert j and
  /// scored token t (pieces.size() of them). Thread-safe. Default: route(doc, pieces).
  virtual Matrix route_scored(const Document& doc, const std::vector<std::string>& pieces,
                              const std::vector<std::vector<float>>& expert_logp) const;
  /// For a router that needs_expert_scores(): per expert j, how many leading scored tokens of
  /// the document route_scored() read to produce `weights` -- what expert j must be run on for
  /// routing alone, counted in the ensemble's compute beside needed_positions(weights).
  /// Default: every expert on every position (weights.rows each).
  virtual std::vector<int64_t> scores_read(const Matrix& weights) const;
  /// Held-out documents the router wants for calibrate() (0: none). They are taken from the
  /// evaluation file after the documents being evaluated.
  virtual int64_t calibration_docs() const { return 0; }
  /// expert_logp[d][j][t] as in route_scored(), for each calibration document d in file order.
  virtual void calibrate(const std::vector<std::vector<std::vector<float>>>& expert_logp);

  // -- few-shot classification (fewshot/evaluate.h); the defaults route by text --
  virtual FewShotRouting fewshot_routing() const { return {}; }
  /// Starts a task (one seed's demonstrations): correct[p][j] = 1 when expert j alone labels
  /// probe p right (no probes: empty).
  virtual void fewshot_begin(const std::vector<std::vector<float>>& correct);
  /// The weights for the next test example (sum to 1). Default: Error.
  virtual std::vector<float> fewshot_weights() const;
  /// After each test example, in order: 1 for each expert that alone labelled it right.
  virtual void fewshot_observe(const std::vector<float>& correct);
};

/// Keeps the `top_k` largest entries of each row (0 or >= cols: all), zeroes the rest, and
/// renormalises the row to sum to 1. Ties keep the lower index. A row with a non-finite or
/// negative entry, or nothing above 0, is an Error (naming the row).
void keep_top_k(Matrix& weights, int32_t top_k);

/// What every row of routing weights must be: finite, >= 0, summing to 1 (within 1e-3).
/// Returns "" when `row` is one, else what is wrong with it ("weight 2 is nan", "the weights
/// sum to 0"), for the caller's error message.
std::string weight_row_problem(const float* row, int64_t k);
/// Throws an Error "<what>: position <t>: <problem>" for the first row of `weights` that is not
/// a weight row (above).
void check_weight_rows(const Matrix& weights, const std::string& what);

}  // namespace cbtm
