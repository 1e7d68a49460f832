// Few-shot classification accuracy (see fewshot/evaluate.h).
#include "cbtm/fewshot/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <limits>

#include <spdlog/spdlog.h>

#include "cbtm/document.h"
#include "cbtm/ensemble.h"
#include "cbtm/error.h"
#include "cbtm/hash.h"
#include "cbtm/language_model.h"
#include "cbtm/matrix.h"
#include "cbtm/router.h"
#include "cbtm/tokenizer.h"

namespace cbtm {

namespace {

constexpr size_t kBatch = 16;

uint64_t stream(uint64_t seed, const std::string& name, uint64_t purpose) {
  const uint64_t h = fnv1a(name, 1469598103934665603ull);  // stable across platforms, unlike std::hash
  return h ^ (seed * 0x9E3779B97F4A7C15ull) ^ (purpose << 56);
}

struct Prompt {
  std::string text;
  std::vector<int32_t> ctx;          // [bos] + prompt tokens (cut from the left to fit)
  std::vector<std::string> pieces;   // "" for bos, then each prompt token's text
  int32_t gold = 0;
  bool truncated = false;
};

// lp[i][l]: the model's log-probabilities of label l's verbaliser tokens after prompt i.
using LabelScores = std::vector<std::vector<std::vector<float>>>;

struct Context {
  const FewShotTask& task;
  const Tokenizer& tok;
  std::vector<std::vector<int32_t>> verb;
  int64_t max_ctx = 0;
};

Prompt make_prompt(const Context& c, const std::vector<FewShotExample>& demos, const FewShotExample& ex) {
  Prompt p;
  p.text = fewshot_prompt(c.task, demos, ex.text);
  p.gold = ex.label;
  std::vector<int32_t> ids = c.tok.encode(p.text);
  if (static_cast<int64_t>(ids.size()) > c.max_ctx) {
    ids.erase(ids.begin(), ids.end() - c.max_ctx);
    p.truncated = true;
  }
  p.ctx.reserve(ids.size() + 1);
  p.ctx.push_back(c.tok.bos_id());
  p.ctx.insert(p.ctx.end(), ids.begin(), ids.end());
  p.pieces.push_back("");
  for (int32_t id : ids) p.pieces.push_back(c.tok.piece(id));
  return p;
}

LabelScores score_labels(LanguageModel& lm, const std::vector<Prompt>& prompts, const std::vector<std::vector<int32_t>>& verb) {
  const size_t L = verb.size();
  LabelScores out(prompts.size(), std::vector<std::vector<float>>(L));
  bool single = std::all_of(verb.begin(), verb.end(), [](const auto& v) { return v.size() == 1; });
  for (size_t b = 0; b < prompts.size(); b += kBatch) {
    const size_t e = std::min(prompts.size(), b + kBatch);
    if (single) {
      // one forward pass per prompt gives every one-token label
      std::vector<std::vector<int32_t>> seqs;
      for (size_t i = b; i < e; ++i) seqs.push_back(prompts[i].ctx);
      try {
        const auto next = lm.next_token_log_probs(seqs);
        for (size_t i = b; i < e; ++i)
          for (size_t l = 0; l < L; ++l) out[i][l] = {next[i - b].at(static_cast<size_t>(verb[l][0]))};
        continue;
      } catch (const Error&) {
        single = false;  // a model that only scores: one sequence per label
      }
    }
    std::vector<std::vector<int32_t>> seqs;
    for (size_t i = b; i < e; ++i)
      for (size_t l = 0; l < L; ++l) {
        seqs.push_back(prompts[i].ctx);
        seqs.back().insert(seqs.back().end(), verb[l].begin(), verb[l].end());
      }
    const auto lp = lm.score(seqs);
    for (size_t i = b; i < e; ++i)
      for (size_t l = 0; l < L; ++l) {
        const auto& row = lp[(i - b) * L + l];
        out[i][l].assign(row.end() - static_cast<std::ptrdiff_t>(verb[l].size()), row.end());
      }
  }
  return out;
}

int32_t argmax(const std::vector<double>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());  // first of ties
}

int32_t predict(const std::vector<std::vector<float>>& label_lp) {
  std::vector<double> s;
  for (const auto& v : label_lp) s.push_back(std::accumulate(v.begin(), v.end(), 0.0));
  return argmax(s);
}

// The ensemble's prediction with weights w (K), mixing the experts per verbaliser token.
int32_t predict_mixed(const std::vector<LabelScores>& experts, size_t i, const std::vector<float>& w) {
  const size_t K = experts.size(), L = experts[0][i].size();
  std::vector<double> s(L);
  for (size_t l = 0; l < L; ++l) {
    const size_t T = experts[0][i][l].size();
    Matrix m(static_cast<int64_t>(T), static_cast<int64_t>(K));
    for (size_t t = 0; t < T; ++t)
      for (size_t j = 0; j < K; ++j) m.at(static_cast<int64_t>(t), static_cast<int64_t>(j)) = w[j];
    std::vector<std::vector<float>> lp(K);
    for (size_t j = 0; j < K; ++j)
      if (w[j] > 0) lp[j] = experts[j][i][l];
    const auto mixed = mix_log_probs(lp, m);
    s[l] = std::accumulate(mixed.begin(), mixed.end(), 0.0);
  }
  return argmax(s);
}

std::vector<std::vector<float>> correctness(const std::vector<LabelScores>& experts, const std::vector<Prompt>& prompts) {
  std::vector<std::vector<float>> c(prompts.size(), std::vector<float>(experts.size()));
  for (size_t i = 0; i < prompts.size(); ++i)
    for (size_t j = 0; j < experts.size(); ++j) c[i][j] = predict(experts[j][i]) == prompts[i].gold ? 1.f : 0.f;
  return c;
}

struct Tally {
  std::string name, role;
  std::vector<double> per_seed;
  double active = 0;
  int64_t active_n = 0;
};

}  // namespace

std::pair<std::vector<FewShotExample>, std::vector<size_t>> draw_demonstrations(const FewShotTask& task, int32_t n,
                                                                               uint64_t seed) {
  if (n < 0 || static_cast<size_t>(n) > task.train.size())
    throw Error("task '" + task.name + "': cannot draw " + std::to_string(n) + " demonstrations from " +
                std::to_string(task.train.size()) + " training examples");
  std::vector<size_t> idx(task.train.size());
  std::iota(idx.begin(), idx.end(), size_t(0));
  uint64_t rng = stream(seed, task.name, 0);
  shuffle(idx, rng);
  std::vector<FewShotExample> demos;
  for (int32_t d = 0; d < n; ++d) demos.push_back(task.train[idx[d]]);
  std::vector<size_t> rest(idx.begin() + n, idx.end());
  std::sort(rest.begin(), rest.end());
  return {demos, rest};
}

nlohmann::json evaluate_fewshot_task(const FewShotTask& task, const FewShotSuite& suite, const FewShotModels& m) {
  if (!m.tokenizer) throw Error("few-shot: no tokenizer");
  if (m.experts.empty() && m.singles.empty()) throw Error("few-shot: no models to evaluate");
  const size_t K = m.experts.size();
  Context c{task, *m.tokenizer, {}, 0};
  size_t longest = 0;
  for (const auto& v : task.verbalisers) {
    c.verb.push_back(m.tokenizer->encode(v));
    if (c.verb.back().empty()) throw Error("task '" + task.name + "': verbaliser '" + v + "' encodes to no tokens");
    longest = std::max(longest, c.verb.back().size());
  }
  std::vector<size_t> verb_tokens;
  for (const auto& v : c.verb) verb_tokens.push_back(v.size());
  if (std::adjacent_find(verb_tokens.begin(), verb_tokens.end(), std::not_equal_to<>()) != verb_tokens.end()) {
    std::string lens;
    for (size_t l = 0; l < task.verbalisers.size(); ++l)
      lens += (l ? ", '" : "'") + task.verbalisers[l] + "' " + std::to_string(verb_tokens[l]);
    spdlog::warn("[fewshot {}] the verbalisers encode to different numbers of tokens ({}): a label's score is the "
                 "sum over its tokens, so longer verbalisers score lower; verbalisers of one token each compare "
                 "evenly", task.name, lens);
  }
  int64_t max_len = std::numeric_limits<int64_t>::max();
  for (auto* e : m.experts) max_len = std::min(max_len, e->max_length());
  for (auto& s : m.singles) max_len = std::min(max_len, s.second->max_length());
  c.max_ctx = max_len - 1 - static_cast<int64_t>(longest);
  if (c.max_ctx < 1) throw Error("task '" + task.name + "': the verbalisers do not fit the models' length " + std::to_string(max_len));

  const size_t n_test = suite.test_examples > 0 ? std::min<size_t>(task.test.size(), static_cast<size_t>(suite.test_examples))
                                                : task.test.size();
  std::vector<Tally> tallies;
  for (const auto& s : m.singles) tallies.push_back({s.first, s.first == "dense" ? "dense" : "baseline", {}});
  for (const auto& e : m.ensembles) tallies.push_back({"c-btm " + e.first, "ensemble", {}});
  for (size_t j = 0; j < K; ++j) tallies.push_back({"expert " + std::to_string(j) + " alone", "expert", {}});
  int64_t truncated = 0, prompts_total = 0;

  for (uint64_t seed : suite.seeds) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto [demos, rest] = draw_demonstrations(task, suite.demonstrations, seed);
    std::vector<Prompt> prompts;
    for (size_t i = 0; i < n_test; ++i) prompts.push_back(make_prompt(c, demos, task.test[i]));
    for (const auto& p : prompts) truncated += p.truncated;
    prompts_total += static_cast<int64_t>(prompts.size());
    std::vector<LabelScores> ex(K);
    for (size_t j = 0; j < K; ++j) ex[j] = score_labels(*m.experts[j], prompts, c.verb);
    const auto correct = correctness(ex, prompts);

    // probes for accuracy routers, shared by routers asking for the same ones
    std::map<std::pair<std::string, int32_t>, std::vector<std::vector<float>>> probe_results;
    for (const auto& e : m.ensembles) {
      const FewShotRouting r = e.second->fewshot_routing();
      if (!r.by_accuracy || r.probes.empty() || probe_results.count({r.probes, r.probe_count})) continue;
      uint64_t rng = stream(seed, task.name, 1 + (r.probes == "demonstrations"));
      std::vector<Prompt> probes;
      if (r.probes == "validation") {
        if (rest.empty())
          throw Error("task '" + task.name + "': ensemble " + e.first + " needs validation examples, but every training "
                      "example is a demonstration");
        std::vector<size_t> pick = rest;
        shuffle(pick, rng);
        pick.resize(std::min(pick.size(), static_cast<size_t>(r.probe_count)));
        for (size_t idx : pick) probes.push_back(make_prompt(c, demos, task.train[idx]));
      } else if (r.probes == "demonstrations") {
        if (demos.size() < 2) throw Error("task '" + task.name + "': ensemble " + e.first + " needs at least 2 demonstrations");
        for (int32_t p = 0; p < r.probe_count; ++p) {
          std::vector<FewShotExample> perm = demos;
          shuffle(perm, rng);
          const FewShotExample last = perm.back();
          perm.pop_back();
          probes.push_back(make_prompt(c, perm, last));
        }
      } else {
        throw Error("ensemble " + e.first + ": unknown probe kind '" + r.probes + "'");
      }
      std::vector<LabelScores> pex(K);
      for (size_t j = 0; j < K; ++j) pex[j] = score_labels(*m.experts[j], probes, c.verb);
      probe_results[{r.probes, r.probe_count}] = correctness(pex, probes);
    }

    size_t slot = 0;
    auto accuracy = [&](const std::vector<int32_t>& pred) {
      int64_t ok = 0;
      for (size_t i = 0; i < prompts.size(); ++i) ok += pred[i] == prompts[i].gold;
      return static_cast<double>(ok) / static_cast<double>(prompts.size());
    };
    for (const auto& s : m.singles) {
      const auto lp = score_labels(*s.second, prompts, c.verb);
      std::vector<int32_t> pred;
      for (const auto& x : lp) pred.push_back(predict(x));
      tallies[slot++].per_seed.push_back(accuracy(pred));
    }
    for (const auto& e : m.ensembles) {
      Router& router = *e.second;
      const FewShotRouting r = router.fewshot_routing();
      if (r.by_accuracy) router.fewshot_begin(r.probes.empty() ? std::vector<std::vector<float>>{}
                                                               : probe_results.at({r.probes, r.probe_count}));
      std::vector<int32_t> pred;
      Tally& t = tallies[slot++];
      for (size_t i = 0; i < prompts.size(); ++i) {
        std::vector<float> w;
        if (r.by_accuracy) {
          w = router.fewshot_weights();
        } else {
          Document doc;
          // the seed is part of the id: a router that draws from the id (random) draws anew per seed
          doc.id = task.name + ":seed" + std::to_string(seed) + ":test:" + std::to_string(i);
          doc.text = prompts[i].text;
          const Matrix rw = router.route(doc, prompts[i].pieces);
          if (rw.rows != static_cast<int64_t>(prompts[i].pieces.size()) || rw.cols != static_cast<int64_t>(K))
            throw Error("ensemble " + e.first + ": the router returned " + std::to_string(rw.rows) + "x" +
                        std::to_string(rw.cols) + " weights for a " + std::to_string(prompts[i].pieces.size()) +
                        "-token prompt and " + std::to_string(K) + " experts");
          w.assign(rw.row(rw.rows - 1), rw.row(rw.rows - 1) + K);
        }
        if (w.size() != K) throw Error("ensemble " + e.first + ": " + std::to_string(w.size()) + " weights for " + std::to_string(K) + " experts");
        if (const std::string p = weight_row_problem(w.data(), static_cast<int64_t>(K)); !p.empty())
          throw Error("ensemble " + e.first + ": weights for test example " + std::to_string(i) + " of task " + task.name + ": " + p);
        pred.push_back(predict_mixed(ex, i, w));
        t.active += static_cast<double>(std::count_if(w.begin(), w.end(), [](float v) { return v > 0; }));
        ++t.active_n;
        if (r.by_accuracy) router.fewshot_observe(correct[i]);
      }
      t.per_seed.push_back(accuracy(pred));
    }
    for (size_t j = 0; j < K; ++j) {
      int64_t ok = 0;
      for (size_t i = 0; i < prompts.size(); ++i) ok += correct[i][j] > 0;
      tallies[slot++].per_seed.push_back(static_cast<double>(ok) / static_cast<double>(prompts.size()));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string line;
    for (size_t i = 0; i < m.singles.size() + m.ensembles.size(); ++i)
      line += fmt::format("  {} {:.3f}", tallies[i].name, tallies[i].per_seed.back());
    spdlog::info("[fewshot {}] seed {}: {} test examples x {} labels, {:.1f}s;{}", task.name, seed, prompts.size(),
                 task.labels.size(), secs, line);
  }

  nlohmann::json models = nlohmann::json::array();
  for (const auto& t : tallies) {
    const double n = static_cast<double>(t.per_seed.size());
    const double mean = std::accumulate(t.per_seed.begin(), t.per_seed.end(), 0.0) / n;
    double var = 0;
    for (double a : t.per_seed) var += (a - mean) * (a - mean);
    nlohmann::json j = {{"name", t.name}, {"role", t.role}, {"accuracy", mean},
                        {"std", t.per_seed.size() > 1 ? std::sqrt(var / (n - 1)) : 0.0}, {"per_seed", t.per_seed}};
    if (t.active_n > 0) j["mean_active_experts"] = t.active / static_cast<double>(t.active_n);
    models.push_back(j);
  }
  return {{"task", task.name},
          {"data", task.data},
          {"labels", task.labels},
          {"verbalisers", task.verbalisers},
          {"verbaliser_tokens", verb_tokens},
          {"test_examples", n_test},
          {"demonstrations", suite.demonstrations},
          {"seeds", suite.seeds},
          {"truncated_prompt_fraction", static_cast<double>(truncated) / static_cast<double>(std::max<int64_t>(1, prompts_total))},
          {"chance", 1.0 / static_cast<double>(task.labels.size())},
          {"models", models}};
}

}  // namespace cbtm
