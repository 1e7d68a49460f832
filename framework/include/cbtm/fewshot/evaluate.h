#pragma once
/// \file evaluate.h
/// Few-shot classification accuracy of single models and routed ensembles (the paper's §5
/// and §A.7).
///
/// Per task and seed: `demonstrations` examples are drawn from the training split; every test
/// example is prompted with them (task.h). Each model scores each label's verbaliser after
/// the prompt ([</s>] + prompt tokens + verbaliser tokens; the prompt is cut from the left
/// if the whole does not fit the model). The prediction is the label of highest
/// log-probability (a sum over the verbaliser's tokens; ties: the first label).
///
/// An ensemble's weights are fixed for the verbaliser: routers that route by text (the
/// default) give the weights after the prompt's last token (route() on the prompt); routers
/// that route by accuracy (Router::fewshot_routing) give fewshot_weights(), after
/// fewshot_begin() with every expert's correctness on the probes they ask for, and
/// fewshot_observe() after each test example. Label log-probabilities mix the experts per
/// token (mix_log_probs). Every expert is scored on every prompt (its own accuracy is
/// reported, and accuracy routers need it), so the compute a sparse ensemble would save is
/// reported as mean_active_experts rather than saved.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/fewshot/task.h"

namespace cbtm {

class LanguageModel;
class Router;
class Tokenizer;

struct FewShotModels {
  const Tokenizer* tokenizer = nullptr;
  std::vector<LanguageModel*> experts;                           ///< expert j: cluster j
  std::vector<std::pair<std::string, LanguageModel*>> singles;   ///< scored alone (dense, seed)
  std::vector<std::pair<std::string, Router*>> ensembles;        ///< bound routers
};

/// Accuracy of every single model, every expert alone and every ensemble on one task, per seed
/// and averaged: {"task", "labels", "test_examples", "demonstrations", "seeds",
/// "truncated_prompt_fraction", "chance", "models": [{"name", "role", "accuracy", "std", "per_seed",
/// "mean_active_experts"?}]}.
nlohmann::json evaluate_fewshot_task(const FewShotTask& task, const FewShotSuite& suite, const FewShotModels& models);

/// The demonstrations of `seed`: `n` distinct training examples in random order, and the
/// indices of the training examples left for validation probes.
std::pair<std::vector<FewShotExample>, std::vector<size_t>> draw_demonstrations(const FewShotTask& task, int32_t n,
                                                                               uint64_t seed);

}  // namespace cbtm
