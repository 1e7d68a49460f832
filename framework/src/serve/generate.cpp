// Generation with a routed ensemble: generate.h.
#include "cbtm/serve/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>

#include "cbtm/document.h"
#include "cbtm/error.h"
#include "cbtm/language_model.h"
#include "cbtm/router.h"
#include "cbtm/tokenizer.h"

namespace cbtm {

namespace {

void check_weights(const std::vector<float>& w, size_t k) {
  if (w.size() != k)
    throw Error("router returned weights for " + std::to_string(w.size()) + " experts; the ensemble has " + std::to_string(k));
}

// The weights for the next token from a router that reads the experts' predictions:
// logp[j] holds log p_j of every token after the first so far; route_scored() wants one more
// entry per expert (the position being predicted, not read).
std::vector<float> route_by_scores(const Router& router, const Document& doc, const std::vector<std::string>& pieces,
                                   std::vector<std::vector<float>>& logp) {
  for (auto& l : logp) l.push_back(0.f);
  Matrix w;
  try {
    w = router.route_scored(doc, pieces, logp);
  } catch (...) {
    for (auto& l : logp) l.pop_back();
    throw;
  }
  for (auto& l : logp) l.pop_back();
  if (w.rows != static_cast<int64_t>(pieces.size()))
    throw Error("router returned " + std::to_string(w.rows) + " rows of weights for " + std::to_string(pieces.size()) + " positions");
  return std::vector<float>(w.row(w.rows - 1), w.row(w.rows - 1) + w.cols);
}

// Stops the generation (GenerationCancelled) if its caller asks, e.g. because its client hung up.
void check_cancelled(const GenerateOptions& opt, size_t generated) {
  if (opt.cancelled && opt.cancelled())
    throw GenerationCancelled("generation cancelled after " + std::to_string(generated) + " tokens");
}

}  // namespace

Generation generate(const std::vector<LanguageModel*>& experts, const Router& router, const Tokenizer& tok,
                    int64_t max_length, const std::string& prompt, const GenerateOptions& opt) {
  if (opt.max_tokens < 0) throw Error("max_tokens must be >= 0");
  if (!(opt.temperature >= 0)) throw Error("temperature must be >= 0");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw Error("top_p must be in (0, 1]");
  if (experts.empty()) throw Error("generate: no experts");
  check_cancelled(opt, 0);  // before the prompt's work (a request that waited in a queue)
  const size_t k = experts.size();
  std::vector<int32_t> row = {tok.bos_id()};
  for (int32_t t : tok.encode(prompt)) row.push_back(t);
  if (static_cast<int64_t>(row.size()) >= max_length)
    throw PromptTooLong("the prompt has " + std::to_string(row.size() - 1) + " tokens; the model's length is " +
                std::to_string(max_length) + " (with the beginning-of-document token), so nothing can follow it");
  std::vector<std::string> pieces = {""};
  for (size_t t = 1; t < row.size(); ++t) pieces.push_back(tok.piece(row[t]));
  Document doc;
  doc.id = "request";
  doc.text = prompt;
  std::mt19937_64 rng(opt.seed);

  // Routing state: a text-only router's session (fed every piece so far), or, for a router
  // that reads the experts' predictions, each expert's log-probabilities of the text so far.
  const bool by_scores = router.needs_expert_scores();
  std::unique_ptr<RoutingSession> session;
  std::vector<std::vector<float>> logp(k);
  std::vector<float> w;
  if (by_scores) {
    if (row.size() >= 2)
      for (size_t j = 0; j < k; ++j) logp[j] = experts[j]->score({row})[0];
  } else {
    session = router.session(doc);
    for (const auto& p : pieces) w = session->push(p);
  }
  // Per expert, its continuation (key/value cache) and how many tokens of `row` it has seen:
  // an expert the router turns to later catches up on the tokens since.
  std::vector<std::unique_ptr<Continuation>> cont(k);
  std::vector<size_t> fed(k, 0);
  Generation g;
  g.stop_reason = "max_tokens";
  for (int64_t step = 0; step < opt.max_tokens; ++step) {
    check_cancelled(opt, g.tokens.size());
    if (static_cast<int64_t>(row.size()) >= max_length) {
      g.stop_reason = "max_length";
      break;
    }
    if (by_scores) w = route_by_scores(router, doc, pieces, logp);
    check_weights(w, k);
    std::vector<std::vector<float>> next(k);
    std::vector<int32_t> ran;
    for (size_t j = 0; j < k; ++j)
      if (w[j] > 0.f || by_scores) {  // a scoring router reads every expert's next prediction
        if (!cont[j]) cont[j] = experts[j]->continuation();
        next[j] = cont[j]->extend(std::vector<int32_t>(row.begin() + static_cast<int64_t>(fed[j]), row.end()));
        fed[j] = row.size();
        ran.push_back(static_cast<int32_t>(j));
      }
    const int32_t t = sample_token(mix_next_token(next, w), opt.temperature, opt.top_p, rng);
    if (opt.stop_at_eos && t == tok.eos_id()) {
      g.stop_reason = "eos";
      break;
    }
    row.push_back(t);
    g.tokens.push_back(t);
    g.experts.push_back(ran);
    pieces.push_back(tok.piece(t));
    doc.text += pieces.back();
    if (by_scores) {
      for (size_t j = 0; j < k; ++j) logp[j].push_back(next[j].at(static_cast<size_t>(t)));
    } else if (step + 1 < opt.max_tokens) {
      w = session->push(pieces.back());
    }
  }
  g.text = tok.decode(g.tokens);
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
  std::vector<size_t> live;  // the weighted experts, and their log-weights (once, not per entry)
  std::vector<double> logw;
  for (size_t j = 0; j < w.size(); ++j)
    if (w[j] > 0.f) {
      live.push_back(j);
      logw.push_back(std::log(static_cast<double>(w[j])));
    }
  std::vector<float> out(V);
  for (size_t v = 0; v < V; ++v) {
    double m = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < live.size(); ++i) m = std::max(m, logw[i] + next[live[i]][v]);
    if (!std::isfinite(m)) {
      out[v] = static_cast<float>(m);
      continue;
    }
    double s = 0;
    for (size_t i = 0; i < live.size(); ++i) s += std::exp(logw[i] + next[live[i]][v] - m);
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
  if (top_p >= 1) {  // the whole distribution: no order needed
    std::uniform_real_distribution<double> u(0.0, s);
    double x = u(rng), c = 0;
    for (size_t v = 0; v < p.size(); ++v) {
      c += p[v];
      if (x < c) return static_cast<int32_t>(v);
    }
    for (size_t v = p.size(); v-- > 0;)  // rounding at the top end: the last token with mass
      if (p[v] > 0) return static_cast<int32_t>(v);
  }
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
