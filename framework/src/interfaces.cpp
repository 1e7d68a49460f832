// Out-of-line destructors anchor each interface's vtable and type_info in the framework
// library, so dynamic_cast works across plugin boundaries. Plus the interfaces' defaults.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "cbtm/baseline.h"
#include "cbtm/clusterer.h"
#include "cbtm/component.h"
#include "cbtm/error.h"
#include "cbtm/embedder.h"
#include "cbtm/language_model.h"
#include "cbtm/router.h"
#include "cbtm/tokenizer.h"
#include "cbtm/trainer.h"

namespace cbtm {

Component::~Component() = default;
ContextEmbedder::~ContextEmbedder() = default;
LanguageModel::~LanguageModel() = default;
Continuation::~Continuation() = default;

namespace {
class RecomputingContinuation : public Continuation {
 public:
  explicit RecomputingContinuation(LanguageModel& lm) : lm_(lm) {}
  std::vector<float> extend(const std::vector<int32_t>& tokens) override {
    if (tokens.empty()) throw Error("Continuation::extend: no tokens");
    row_.insert(row_.end(), tokens.begin(), tokens.end());
    if (static_cast<int64_t>(row_.size()) > lm_.max_length())
      throw Error("the sequence has " + std::to_string(row_.size()) + " tokens, more than the model's " +
                  std::to_string(lm_.max_length()));
    return lm_.next_token_log_probs({row_})[0];
  }

 private:
  LanguageModel& lm_;
  std::vector<int32_t> row_;
};
}  // namespace

std::unique_ptr<Continuation> LanguageModel::continuation() { return std::make_unique<RecomputingContinuation>(*this); }

std::vector<std::vector<float>> LanguageModel::next_token_log_probs(const std::vector<std::vector<int32_t>>&) {
  throw Error("this model only scores token sequences; it cannot give next-token distributions for generation");
}

void check_wanted_positions(const std::vector<std::vector<int32_t>>& sequences, const std::vector<std::vector<uint8_t>>& wanted) {
  if (wanted.size() != sequences.size())
    throw Error("score_positions: " + std::to_string(wanted.size()) + " position masks for " + std::to_string(sequences.size()) + " sequences");
  for (size_t i = 0; i < sequences.size(); ++i) {
    const size_t scored = sequences[i].empty() ? 0 : sequences[i].size() - 1;
    if (wanted[i].size() != scored)
      throw Error("score_positions: sequence " + std::to_string(i) + " has " + std::to_string(scored) + " scored tokens but a mask of " +
                  std::to_string(wanted[i].size()));
  }
}

std::vector<std::vector<float>> LanguageModel::score_positions(const std::vector<std::vector<int32_t>>& sequences,
                                                               const std::vector<std::vector<uint8_t>>& wanted) {
  check_wanted_positions(sequences, wanted);
  auto out = score(sequences);
  for (size_t i = 0; i < out.size() && i < wanted.size(); ++i)
    for (size_t t = 0; t < out[i].size() && t < wanted[i].size(); ++t)
      if (!wanted[i][t]) out[i][t] = std::numeric_limits<float>::quiet_NaN();
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += piece(id);
  return out;
}

// ---- Embedder::context default: re-embed the whole prefix -------------------------
namespace {
class RecomputingContext : public ContextEmbedder {
 public:
  explicit RecomputingContext(const Embedder& e) : e_(e) {}
  void append(std::string_view bytes) override { text_.append(bytes); }
  void current(float* out) override {
    Matrix m = e_.embed({text_});
    std::copy(m.data.begin(), m.data.end(), out);
  }

 private:
  const Embedder& e_;
  std::string text_;
};
}  // namespace

std::unique_ptr<ContextEmbedder> Embedder::context() const {
  return std::make_unique<RecomputingContext>(*this);
}

Matrix Embedder::fit_embed(const std::vector<std::string>& texts) {
  fit(texts);
  return embed(texts);
}

std::vector<TermWeight> Embedder::top_terms(const float*, int) const { return {}; }

void Clusterer::fit_with_metadata(const Matrix& x, const std::vector<std::string>&) { fit(x); }
Assignment Clusterer::assign_with_metadata(const Matrix& x, const std::vector<std::string>&) const {
  return assign(x);
}

// ---- Clusterer::assign default: greedy nearest centre --------------------------------
Assignment nearest_centers(const Matrix& x, const Matrix& c) {
  if (c.rows == 0) throw Error("cannot assign points: the clusterer has no centres (fit or load it first)");
  if (x.cols != c.cols)
    throw Error("cannot assign " + std::to_string(x.cols) + "-dimensional points to " + std::to_string(c.cols) +
                "-dimensional centres");
  Assignment a;
  a.cluster.assign(static_cast<size_t>(x.rows), 0);
  a.sqdist.assign(static_cast<size_t>(x.rows), 0.f);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < x.rows; ++i) {
    float best = squared_distance(x.row(i), c.row(0), x.cols);
    int32_t arg = 0;
    for (int64_t j = 1; j < c.rows; ++j) {
      const float d = squared_distance(x.row(i), c.row(j), x.cols);
      if (d < best) {
        best = d;
        arg = static_cast<int32_t>(j);
      }
    }
    a.cluster[i] = arg;
    a.sqdist[i] = best;
  }
  return a;
}

Assignment Clusterer::assign(const Matrix& x) const { return nearest_centers(x, centers()); }

// ---- routing ---------------------------------------------------------------------------
namespace {
// Router::session default: route() on every piece so far at each push.
class RecomputingSession : public RoutingSession {
 public:
  RecomputingSession(const Router& r, Document doc) : r_(r), doc_(std::move(doc)) { doc_.text.clear(); }
  std::vector<float> push(const std::string& piece) override {
    pieces_.push_back(piece);
    doc_.text += piece;
    const Matrix w = r_.route(doc_, pieces_);
    if (w.rows != static_cast<int64_t>(pieces_.size()))
      throw Error("router returned " + std::to_string(w.rows) + " rows of weights for " + std::to_string(pieces_.size()) + " positions");
    return std::vector<float>(w.row(w.rows - 1), w.row(w.rows - 1) + w.cols);
  }

 private:
  const Router& r_;
  Document doc_;
  std::vector<std::string> pieces_;
};
}  // namespace

std::unique_ptr<RoutingSession> Router::session(const Document& doc) const {
  if (needs_expert_scores()) throw Error("this router weighs experts by their predictions (route_scored): it has no text-only session");
  return std::make_unique<RecomputingSession>(*this, doc);
}

Matrix Router::route_scored(const Document& doc, const std::vector<std::string>& pieces,
                            const std::vector<std::vector<float>>&) const {
  return route(doc, pieces);
}
std::vector<int64_t> Router::scores_read(const Matrix& weights) const {
  return std::vector<int64_t>(static_cast<size_t>(weights.cols), weights.rows);
}

void Router::calibrate(const std::vector<std::vector<std::vector<float>>>&) {}
void Router::fewshot_begin(const std::vector<std::vector<float>>&) {}
std::vector<float> Router::fewshot_weights() const {
  throw Error("this router routes few-shot prompts by their text (route()), not by expert accuracy");
}
void Router::fewshot_observe(const std::vector<float>&) {}

void keep_top_k(Matrix& w, int32_t top_k) {
  const int64_t K = w.cols;
  std::vector<int64_t> idx(static_cast<size_t>(K));
  for (int64_t r = 0; r < w.rows; ++r) {
    float* row = w.row(r);
    for (int64_t j = 0; j < K; ++j)
      if (!std::isfinite(row[j]) || row[j] < 0.f)
        throw Error("routing weights: position " + std::to_string(r) + ": weight " + std::to_string(j) + " is " +
                    std::to_string(row[j]) + " (weights must be finite and >= 0)");
    if (top_k > 0 && top_k < K) {
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
      for (int64_t i = top_k; i < K; ++i) row[idx[i]] = 0.f;
    }
    double s = 0;
    for (int64_t j = 0; j < K; ++j) s += row[j];
    if (!(s > 0))
      throw Error("routing weights: position " + std::to_string(r) + ": no expert has a weight above 0");
    for (int64_t j = 0; j < K; ++j) row[j] = static_cast<float>(row[j] / s);
  }
}

std::string weight_row_problem(const float* row, int64_t k) {
  double s = 0;
  for (int64_t j = 0; j < k; ++j) {
    if (!std::isfinite(row[j]) || row[j] < 0.f)
      return "weight " + std::to_string(j) + " is " + std::to_string(row[j]) + " (weights must be finite and >= 0)";
    s += row[j];
  }
  if (std::abs(s - 1.0) > 1e-3) return "the weights sum to " + std::to_string(s) + ", not 1";
  return "";
}

void check_weight_rows(const Matrix& w, const std::string& what) {
  for (int64_t t = 0; t < w.rows; ++t) {
    const std::string p = weight_row_problem(w.row(t), w.cols);
    if (!p.empty()) throw Error(what + ": position " + std::to_string(t) + ": " + p);
  }
}

}  // namespace cbtm
