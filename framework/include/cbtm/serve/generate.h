#pragma once
/// \file generate.h
/// Text generation with a routed ensemble of loaded experts (`cbtm generate`, `cbtm serve`).
///
/// Before every new token the router weighs the experts for the context so far; only the
/// experts with weight run, each through its own LanguageModel::Continuation (key/value
/// cache), catching up on the tokens since it last ran; their next-token distributions are
/// mixed (mix_next_token) and a token is drawn (sample_token).
///
/// Routing is incremental. A router that weighs from the text is pushed one piece per token
/// through its Router::session() (cluster_distance carries the embedder's context, so a
/// token's routing costs the same however long the text). A router that reads the experts'
/// predictions (needs_expert_scores: BTM's cached prior) runs every expert at every step,
/// and each generated token's log-probability under every expert is read from that step's
/// distributions: the prompt is scored once, never the whole text again.
///
/// \code
///   Generation g = generate(experts, router, tok, max_length, "Once", {.max_tokens = 20});
/// \endcode
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cbtm/error.h"

namespace cbtm {

/// generate()'s Error for a prompt that leaves no room in the model's length: the request's
/// fault (`cbtm serve` answers 422, `cbtm generate` exits 2), unlike the other Errors.
class PromptTooLong : public Error {
 public:
  using Error::Error;
};

/// generate()'s Error when GenerateOptions::cancelled returned true (the client hung up, or the
/// server is stopping): `cbtm serve` answers 503.
class GenerationCancelled : public Error {
 public:
  using Error::Error;
};

class LanguageModel;
class Router;
class Tokenizer;

struct GenerateOptions {
  int64_t max_tokens = 64;   ///< new tokens at most (also stops at the model's length)
  double temperature = 1.0;  ///< 0: greedy (argmax)
  double top_p = 1.0;        ///< nucleus: sample from the smallest set of tokens with mass >= top_p
  uint64_t seed = 0;         ///< the same seed and inputs give the same text
  bool stop_at_eos = true;   ///< stop at the end-of-document token (not included in the text)
  /// If set, asked before the prompt is read and before every new token: true stops the
  /// generation with GenerationCancelled (`cbtm serve`: the client hung up, or the server is
  /// stopping). Called on the generating thread; keep it cheap.
  std::function<bool()> cancelled = {};
};

struct Generation {
  std::string text;                          ///< the generated continuation (without the prompt)
  std::vector<int32_t> tokens;               ///< its token ids
  std::vector<std::vector<int32_t>> experts; ///< per generated token: the experts that ran
  std::string stop_reason;                   ///< "eos" | "max_tokens" | "max_length"
};

/// Continues `prompt` (after a beginning-of-document token) with the ensemble of `experts`
/// (expert j: the router's column j) routed by a bound `router`. max_length: the experts'
/// length in tokens. Error for bad options, a prompt that leaves no room, or a router whose
/// weights have the wrong shape; GenerationCancelled when opt.cancelled says so.
Generation generate(const std::vector<LanguageModel*>& experts, const Router& router, const Tokenizer& tok,
                    int64_t max_length, const std::string& prompt, const GenerateOptions& opt);

/// log sum_j w_j p_j(v) for every vocabulary entry v, over the experts with w_j > 0
/// (`next_logp[j]` may be empty for the others). Error if a weighted expert's row is missing
/// or rows differ in length.
std::vector<float> mix_next_token(const std::vector<std::vector<float>>& next_logp, const std::vector<float>& w);

/// Draws a token from log-probabilities: temperature 0 takes the argmax (lowest id on ties);
/// otherwise p ∝ exp(logp / temperature), cut to the smallest most-likely set whose mass
/// reaches top_p (at least one token), renormalised.
int32_t sample_token(const std::vector<float>& logp, double temperature, double top_p, std::mt19937_64& rng);

}  // namespace cbtm
