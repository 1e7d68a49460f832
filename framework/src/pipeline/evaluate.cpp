#include "cbtm/pipeline/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "cbtm/ensemble.h"
#include "cbtm/error.h"
#include "cbtm/language_model.h"
#include "cbtm/progress.h"
#include "cbtm/router.h"
#include "cbtm/tokenizer.h"

namespace cbtm {

std::vector<EvalDoc> prepare_eval_docs(const std::vector<Document>& docs, const Tokenizer& tok,
                                       int64_t max_length, const std::string& domain_field) {
  if (max_length < 2) throw Error("evaluation needs rows of at least 2 tokens (max_length " + std::to_string(max_length) + ")");
  std::vector<EvalDoc> out(docs.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < static_cast<int64_t>(docs.size()); ++i) {
    EvalDoc& e = out[i];
    e.doc = docs[i];
    e.id = docs[i].id;
    e.domain = domain_field.empty() ? "" : docs[i].field(domain_field);
    e.row.push_back(tok.bos_id());
    for (int32_t t : tok.encode(docs[i].text)) e.row.push_back(t);
    e.row.push_back(tok.eos_id());
    if (static_cast<int64_t>(e.row.size()) > max_length) e.row.resize(static_cast<size_t>(max_length));
    e.pieces.reserve(e.row.size() - 1);
    for (size_t t = 0; t + 1 < e.row.size(); ++t) e.pieces.push_back(t == 0 ? std::string() : tok.piece(e.row[t]));
    for (size_t t = 1; t < e.row.size(); ++t) e.bytes += static_cast<int64_t>(tok.piece(e.row[t]).size());
  }
  return out;
}

// ---- scores ----------------------------------------------------------------------------
void PerplexityScore::add(const std::vector<float>& logp, int64_t doc_bytes) {
  for (float v : logp) nll -= v;
  tokens += static_cast<int64_t>(logp.size());
  bytes += doc_bytes;
  ++docs;
}
double PerplexityScore::ppl() const { return tokens ? std::exp(nll / static_cast<double>(tokens)) : 0.0; }
double PerplexityScore::bits_per_byte() const { return bytes ? nll / (static_cast<double>(bytes) * std::log(2.0)) : 0.0; }
nlohmann::json PerplexityScore::to_json() const {
  return {{"ppl", ppl()}, {"nll_per_token", tokens ? nll / static_cast<double>(tokens) : 0.0},
          {"bits_per_byte", bits_per_byte()}, {"tokens", tokens}, {"bytes", bytes}, {"docs", docs}};
}

void ModelScore::add(const EvalDoc& d, const std::vector<float>& logp) {
  all.add(logp, d.bytes);
  if (!d.domain.empty()) by_domain[d.domain].add(logp, d.bytes);
}
nlohmann::json ModelScore::to_json() const {
  nlohmann::json j = all.to_json();
  if (!by_domain.empty()) {
    nlohmann::json dom;
    for (const auto& [k, v] : by_domain) dom[k] = v.to_json();
    j["by_domain"] = dom;
  }
  return j;
}

namespace {
std::vector<std::vector<float>> score_rows(LanguageModel& lm, const std::vector<EvalDoc>& docs,
                                           const std::vector<size_t>& which, const std::string& what) {
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(which.size());
  int64_t tokens = 0;
  for (size_t i : which) {
    rows.push_back(docs[i].row);
    tokens += static_cast<int64_t>(docs[i].row.size());
  }
  Progress timer("eval " + what, static_cast<double>(tokens), "tok", 1e9);
  auto out = lm.score(rows);
  timer.update(static_cast<double>(tokens));
  timer.finish(std::to_string(rows.size()) + " documents");
  if (out.size() != rows.size()) throw Error("model returned scores for " + std::to_string(out.size()) + " of " + std::to_string(rows.size()) + " documents");
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i].size() + 1 != rows[i].size())
      throw Error("model returned " + std::to_string(out[i].size()) + " log-probs for a row of " + std::to_string(rows[i].size()) + " tokens");
  return out;
}
}  // namespace

ModelScore score_model(LanguageModel& lm, const std::vector<EvalDoc>& docs,
                       std::vector<std::vector<float>>* logp_out, const std::string& name) {
  std::vector<size_t> all(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) all[i] = i;
  auto logp = score_rows(lm, docs, all, name);
  ModelScore s;
  for (size_t i = 0; i < docs.size(); ++i) s.add(docs[i], logp[i]);
  if (logp_out) *logp_out = std::move(logp);
  return s;
}

// ---- ensembles ---------------------------------------------------------------------------
std::vector<Matrix> route_documents(const Router& router, const std::vector<EvalDoc>& docs, const std::string& name) {
  std::vector<Matrix> w(docs.size());
  std::string error;
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < static_cast<int64_t>(docs.size()); ++i) {
    try {
      w[i] = router.route(docs[i].doc, docs[i].pieces);
    } catch (const std::exception& e) {
#pragma omp critical
      error = e.what();
    }
  }
  if (!error.empty()) throw Error("ensemble '" + name + "': routing failed: " + error);
  return w;
}

EnsembleEvaluator::EnsembleEvaluator(const std::vector<EvalDoc>& docs, int32_t experts)
    : docs_(docs), k_(experts), logp_(static_cast<size_t>(experts)),
      have_(static_cast<size_t>(experts), std::vector<std::vector<uint8_t>>(docs.size())) {
  for (auto& l : logp_) l.resize(docs.size());
}

namespace {
// Every position set in `want` is set in `have`.
bool covers(const std::vector<uint8_t>& have, const std::vector<uint8_t>& want) {
  for (size_t t = 0; t < want.size(); ++t)
    if (want[t] && (t >= have.size() || !have[t])) return false;
  return true;
}
void merge_into(std::vector<uint8_t>& into, const std::vector<uint8_t>& from) {
  if (into.size() < from.size()) into.resize(from.size(), 0);
  for (size_t t = 0; t < from.size(); ++t) into[t] |= from[t];
}
}  // namespace

void EnsembleEvaluator::add(const std::string& name, const Router& router) {
  if (router.needs_expert_scores()) {
    // Routed after run(): until then, every expert is needed at every position.
    std::vector<Matrix> all(docs_.size());
    for (size_t i = 0; i < docs_.size(); ++i) all[i] = Matrix(static_cast<int64_t>(docs_[i].pieces.size()), k_, 1.f);
    names_.push_back(name);
    weights_[name] = std::move(all);
    scored_[name] = &router;
    return;
  }
  std::vector<Matrix> w = route_documents(router, docs_, name);
  check_shapes(name, w);
  names_.push_back(name);
  weights_[name] = std::move(w);
}

void EnsembleEvaluator::check_shapes(const std::string& name, const std::vector<Matrix>& w) const {
  for (size_t i = 0; i < docs_.size(); ++i)
    if (w[i].rows != static_cast<int64_t>(docs_[i].pieces.size()) || w[i].cols != k_)
      throw Error("ensemble '" + name + "': router returned a " + std::to_string(w[i].rows) + "x" + std::to_string(w[i].cols) +
                  " matrix for a document of " + std::to_string(docs_[i].pieces.size()) + " positions and " + std::to_string(k_) + " experts");
  // Values too: a row of zeros or NaNs would make the perplexity inf/NaN (written as null) and
  // an unnormalised row would lower it without a word.
  for (size_t i = 0; i < docs_.size(); ++i)
    check_weight_rows(w[i], "ensemble '" + name + "': router weights for document " + std::to_string(i) + " (" + docs_[i].id + ")");
}

void EnsembleEvaluator::run(const std::function<std::unique_ptr<LanguageModel>(int32_t)>& load) {
  // want[j][i]: the scored positions of document i where some ensemble weights expert j.
  std::vector<std::vector<std::vector<uint8_t>>> want(static_cast<size_t>(k_), std::vector<std::vector<uint8_t>>(docs_.size()));
  for (const auto& n : names_)
    for (size_t i = 0; i < docs_.size(); ++i) {
      const auto p = weighted_positions(weights_.at(n)[i]);
      for (int32_t j = 0; j < k_; ++j) merge_into(want[j][i], p[j]);
    }
  for (int32_t j = 0; j < k_; ++j) {
    std::vector<size_t> which;
    std::vector<std::vector<int32_t>> rows;
    std::vector<std::vector<uint8_t>> masks;
    int64_t tokens = 0, prefixes = 0;
    for (size_t i = 0; i < docs_.size(); ++i) {
      if (covers(have_[j][i], want[j][i])) continue;
      which.push_back(i);
      masks.push_back(have_[j][i]);  // rescored: keep what was there
      merge_into(masks.back(), want[j][i]);
      const int64_t need = static_cast<int64_t>(masks.back().size());
      const auto& row = docs_[i].row;
      // A causal model scores a prefix exactly as it scores the prefix of the whole row.
      rows.emplace_back(row.begin(), row.begin() + need + 1);
      tokens += need + 1;
      prefixes += need + 1 < static_cast<int64_t>(row.size()) ? 1 : 0;
    }
    if (which.empty()) continue;
    spdlog::info("[eval] expert {}: scoring {} of {} documents ({} of them only a prefix)", j, which.size(),
                 docs_.size(), prefixes);
    auto lm = load(j);
    Progress timer("eval expert " + std::to_string(j), static_cast<double>(tokens), "tok", 1e9);
    auto out = lm->score_positions(rows, masks);
    timer.update(static_cast<double>(tokens));
    timer.finish(std::to_string(rows.size()) + " documents");
    if (out.size() != rows.size()) throw Error("expert " + std::to_string(j) + " returned scores for " + std::to_string(out.size()) + " of " + std::to_string(rows.size()) + " rows");
    for (size_t n = 0; n < which.size(); ++n) {
      if (out[n].size() + 1 != rows[n].size())
        throw Error("expert " + std::to_string(j) + " returned " + std::to_string(out[n].size()) + " log-probs for a row of " + std::to_string(rows[n].size()) + " tokens");
      have_[j][which[n]] = std::move(masks[n]);
      logp_[j][which[n]] = std::move(out[n]);
    }
  }
  for (const auto& [name, router] : scored_) {
    if (routed_.count(name)) continue;
    std::vector<Matrix> w(docs_.size());
    std::string error;
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < static_cast<int64_t>(docs_.size()); ++i) {
      try {
        std::vector<std::vector<float>> lp(static_cast<size_t>(k_));
        for (int32_t j = 0; j < k_; ++j) lp[j] = logp_[j][i];
        w[i] = router->route_scored(docs_[i].doc, docs_[i].pieces, lp);
      } catch (const std::exception& e) {
#pragma omp critical
        error = e.what();
      }
    }
    if (!error.empty()) throw Error("ensemble '" + name + "': routing failed: " + error);
    check_shapes(name, w);
    weights_[name] = std::move(w);
    routed_.insert(name);
  }
}

void calibrate_router(Router& router, const std::vector<EvalDoc>& calib, int32_t experts,
                      const std::function<std::unique_ptr<LanguageModel>(int32_t)>& load) {
  std::vector<std::vector<std::vector<float>>> lp(calib.size(), std::vector<std::vector<float>>(static_cast<size_t>(experts)));
  std::vector<size_t> all(calib.size());
  for (size_t i = 0; i < calib.size(); ++i) all[i] = i;
  for (int32_t j = 0; j < experts; ++j) {
    auto lm = load(j);
    auto out = score_rows(*lm, calib, all, "calibration, expert " + std::to_string(j));
    for (size_t i = 0; i < calib.size(); ++i) lp[i][j] = std::move(out[i]);
  }
  router.calibrate(lp);
}

EnsembleEvaluator::Result EnsembleEvaluator::result(const std::string& name) const {
  return result_over(name, 0, docs_.size());
}

EnsembleEvaluator::Result EnsembleEvaluator::result(const std::string& name, size_t doc) const {
  if (doc >= docs_.size()) throw std::out_of_range("document " + std::to_string(doc) + " of " + std::to_string(docs_.size()));
  return result_over(name, doc, doc + 1);
}

EnsembleEvaluator::Result EnsembleEvaluator::result_over(const std::string& name, size_t begin, size_t end) const {
  auto it = weights_.find(name);
  if (it == weights_.end()) throw std::logic_error("no ensemble " + name);
  if (scored_.count(name) && !routed_.count(name)) throw std::logic_error("ensemble " + name + " is routed by run()");
  Result r;
  int64_t positions = 0;
  double token_experts = 0;
  for (size_t i = begin; i < end; ++i) {
    const Matrix& w = it->second[i];
    const auto active = active_experts(w);
    auto needed = needed_positions(w);
    const auto weighted = weighted_positions(w);
    std::vector<std::vector<float>> lp(static_cast<size_t>(k_));
    for (int32_t j : active) {
      if (!covers(have_[j][i], weighted[j])) throw std::logic_error("expert not run");
      lp[j] = logp_[j][i];
    }
    r.score.add(docs_[i], mix_log_probs(lp, w));
    // Compute: an expert runs where it is weighted and, for a router that reads the experts'
    // scores, wherever the router read them (even at zero weight).
    if (auto sc = scored_.find(name); sc != scored_.end()) {
      const auto read = sc->second->scores_read(w);
      for (int32_t j = 0; j < k_ && j < static_cast<int32_t>(read.size()); ++j)
        needed[j] = std::max(needed[j], std::min<int64_t>(read[j], w.rows));
    }
    int64_t runs = 0;
    for (int32_t j = 0; j < k_; ++j) {
      r.expert_tokens += needed[j];
      runs += needed[j] > 0 ? 1 : 0;
    }
    r.mean_active_experts += static_cast<double>(runs);
    r.expert_doc_runs += runs;
    for (int64_t t = 0; t < w.rows; ++t)
      for (int64_t j = 0; j < w.cols; ++j) token_experts += w.at(t, j) > 0.f ? 1 : 0;
    positions += w.rows;
  }
  if (end > begin) r.mean_active_experts /= static_cast<double>(end - begin);
  if (positions) r.mean_token_experts = token_experts / static_cast<double>(positions);
  if (positions) r.expert_token_fraction = static_cast<double>(r.expert_tokens) / (static_cast<double>(positions) * k_);
  return r;
}

std::vector<float> EnsembleEvaluator::mixed(const std::string& name, size_t i) const {
  auto it = weights_.find(name);
  if (it == weights_.end()) throw std::logic_error("no ensemble " + name);
  if (scored_.count(name) && !routed_.count(name)) throw std::logic_error("ensemble " + name + " is routed by run()");
  const Matrix& w = it->second.at(i);
  const auto weighted = weighted_positions(w);
  std::vector<std::vector<float>> lp(static_cast<size_t>(k_));
  for (int32_t j = 0; j < k_; ++j) {
    if (weighted[j].empty()) continue;
    if (!covers(have_[j][i], weighted[j])) throw std::logic_error("expert not run");
    lp[j] = logp_[j][i];
  }
  return mix_log_probs(lp, w);
}

bool EnsembleEvaluator::has_standalone(int32_t j) const {
  for (size_t i = 0; i < docs_.size(); ++i)
    if (have_[j][i].size() + 1 < docs_[i].row.size() ||
        std::find(have_[j][i].begin(), have_[j][i].end(), uint8_t{0}) != have_[j][i].end())
      return false;
  return !docs_.empty();
}

ModelScore EnsembleEvaluator::standalone(int32_t j) const {
  ModelScore s;
  for (size_t i = 0; i < docs_.size(); ++i) s.add(docs_[i], logp_[j][i]);
  return s;
}

bool EnsembleEvaluator::has_oracle() const {
  for (int32_t j = 0; j < k_; ++j)
    if (!has_standalone(j)) return false;
  return true;
}

ModelScore EnsembleEvaluator::oracle() const {
  ModelScore s;
  for (size_t i = 0; i < docs_.size(); ++i) {
    int32_t best = 0;
    double best_nll = std::numeric_limits<double>::infinity();
    for (int32_t j = 0; j < k_; ++j) {
      double nll = 0;
      for (float v : logp_[j][i]) nll -= v;
      if (nll < best_nll) {
        best_nll = nll;
        best = j;
      }
    }
    s.add(docs_[i], logp_[best][i]);
  }
  return s;
}

Specialisation specialisation(const EnsembleEvaluator& ev, const std::vector<EvalDoc>& docs,
                              const std::vector<int32_t>& cluster, int32_t experts) {
  if (!ev.has_oracle()) throw Error("specialisation: needs every expert's scores on every document");
  if (cluster.size() != docs.size())
    throw Error("specialisation: " + std::to_string(cluster.size()) + " cluster ids for " + std::to_string(docs.size()) + " documents");
  const size_t K = static_cast<size_t>(experts);
  Specialisation s;
  s.docs.assign(K, 0);
  std::vector<std::vector<double>> nll(K, std::vector<double>(K, 0.0));
  std::vector<int64_t> tokens(K, 0);
  for (size_t i = 0; i < docs.size(); ++i) {
    const int32_t c = cluster[i];
    if (c < 0 || c >= experts) throw Error("specialisation: cluster id " + std::to_string(c) + " out of range");
    ++s.docs[c];
    tokens[c] += static_cast<int64_t>(docs[i].row.size()) - 1;
    for (size_t j = 0; j < K; ++j)
      for (float v : ev.expert_log_probs(static_cast<int32_t>(j), i)) nll[c][j] -= v;
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.ppl.assign(K, std::vector<double>(K, nan));
  s.ratio = s.ppl;
  for (size_t c = 0; c < K; ++c) {
    if (tokens[c] == 0) continue;
    for (size_t j = 0; j < K; ++j) s.ppl[c][j] = std::exp(nll[c][j] / static_cast<double>(tokens[c]));
    for (size_t j = 0; j < K; ++j) s.ratio[c][j] = s.ppl[c][j] / s.ppl[c][c];
  }
  return s;
}

nlohmann::json Specialisation::to_json() const {
  auto rows = [](const std::vector<std::vector<double>>& m) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : m) {
      nlohmann::json row = nlohmann::json::array();
      for (double v : r) row.push_back(std::isnan(v) ? nlohmann::json() : nlohmann::json(v));
      out.push_back(row);
    }
    return out;
  };
  return {{"docs", docs}, {"ppl", rows(ppl)}, {"ratio", rows(ratio)},
          {"about", "rows: held-out documents of cluster c (nearest centre); columns: expert j; "
                    "ratio = ppl(expert j) / ppl(expert c) on those documents"}};
}

}  // namespace cbtm
