#pragma once
/// \file language_model.h
/// Extension point: a model architecture (kind "model"), which creates fresh checkpoints
/// and loads checkpoints as LanguageModels for scoring.
///
/// A checkpoint is a directory in Hugging Face layout: `config.json` (with `model_type`,
/// which names the architecture plugin, and a `cbtm` section) + `model.safetensors`.
///
/// \code
///   auto lm = load_language_model(registry, "out/experts/expert-000/final");
///   auto logp = lm->score({{2, 17, 99, 2}});  // log p of tokens 1..3
/// \endcode
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cbtm/component.h"

namespace cbtm {

class Registry;

/// One growing sequence's next-token distributions, computed incrementally (generation).
class Continuation {
 public:
  virtual ~Continuation();
  /// Appends `tokens` (the first call: the prompt, beginning-of-document token first; at
  /// least one token a call) and returns log p(v | every token so far) for each vocabulary
  /// entry v. Error past the model's max_length().
  virtual std::vector<float> extend(const std::vector<int32_t>& tokens) = 0;
};

/// A loaded model that scores token sequences. Implementations may batch and pad
/// internally; score() may be called from one thread at a time.
class LanguageModel {
 public:
  virtual ~LanguageModel();
  /// For each sequence s: log p(s[t] | s[<t]) for t = 1 .. s.size()-1 (natural log).
  /// Every sequence must be at most max_length() tokens.
  virtual std::vector<std::vector<float>> score(
      const std::vector<std::vector<int32_t>>& sequences) = 0;
  /// As score(), but only the log-probabilities where wanted[i][t] != 0 are needed (wanted[i]
  /// has sequences[i].size() - 1 entries, one per scored token); the others come back NaN.
  /// A sparse ensemble asks an expert for the positions where it has weight: a causal model
  /// must still run its body over the whole prefix (later positions attend to it), but may skip
  /// its output layer elsewhere. Default: score(), then NaN where not wanted.
  virtual std::vector<std::vector<float>> score_positions(
      const std::vector<std::vector<int32_t>>& sequences,
      const std::vector<std::vector<uint8_t>>& wanted);
  /// For each non-empty sequence s: log p(v | s) for every vocabulary entry v (natural log),
  /// the distribution of the token that would follow s (for generation). Default: Error
  /// (a model that only scores).
  virtual std::vector<std::vector<float>> next_token_log_probs(
      const std::vector<std::vector<int32_t>>& sequences);
  /// A Continuation of an empty sequence. Default: one that keeps the tokens and calls
  /// next_token_log_probs() on all of them every time; a model with a key/value cache
  /// computes only the new tokens. Lives no longer than this model.
  virtual std::unique_ptr<Continuation> continuation();
  virtual int64_t max_length() const = 0;
  virtual int64_t parameters() const = 0;
};

class ModelArchitecture : public Component {
 public:
  static constexpr const char* kKind = "model";

  /// Writes a randomly initialised checkpoint for `vocab_size` tokens into `dir`
  /// (atomically), seeded by `seed`.
  virtual void init_checkpoint(const std::string& dir, int32_t vocab_size,
                               uint64_t seed) const = 0;
  /// Loads a checkpoint written by this architecture (Error naming the file if truncated
  /// or of another architecture), on runtime().device.
  virtual std::unique_ptr<LanguageModel> load(const std::string& dir) const = 0;
  /// load() onto `device` (cpu | cuda | cuda:N; "": runtime().device), for ensembles whose
  /// experts live on different devices (runtime.expert_devices). Default: load() for "",
  /// an Error for anything else (an architecture that cannot place its models).
  virtual std::unique_ptr<LanguageModel> load_on(const std::string& dir, const std::string& device) const;
  /// Parameters of a model with this configuration and vocabulary (for reports and FLOPs).
  virtual int64_t parameters(int32_t vocab_size) const = 0;
};

/// Error unless `wanted` has one mask per sequence, of sequences[i].size() - 1 entries (for
/// implementations of LanguageModel::score_positions).
void check_wanted_positions(const std::vector<std::vector<int32_t>>& sequences,
                            const std::vector<std::vector<uint8_t>>& wanted);

/// Reads `dir/config.json`, creates the architecture it names (from its stored options)
/// and loads the checkpoint onto `device` ("": runtime().device; see load_on).
std::unique_ptr<LanguageModel> load_language_model(const Registry& registry,
                                                   const std::string& dir, const std::string& device = "");

}  // namespace cbtm
