#pragma once
/// \file lm_embedder.h
/// The "lm" embedder: pooled hidden states of a trained OPT model (C-BTM paper §2.1: "any
/// embedding function can be used", e.g. mean-pooled hidden states of a trained LM).
///
/// embed(): each text -> its first max_tokens token ids (leading_tokens) -> the row
///   [</s>, ids...] (</s> first, as the trainer puts it before every document) -> hidden
///   states of `layer` -> pooled over the document's own positions (the </s> position is
///   context only, never pooled):
///     mean: the average of the states of the ids;  last: the state of the last id
///   -> normaliser:
///     l2:          y / ||y||        standardize: (y - mean) / std (fitted in fit())
///     none:        y
/// Rows are sorted by length and packed into right-padded batches of about batch_tokens
/// tokens; the model is causal, so padding never changes a document's states (an
/// embedding does not depend on its batch, up to float rounding). Runs under no-grad on
/// models::model_device(), with bf16 autocast when precision is bf16; tokenization uses
/// runtime().resolved_threads() threads, and so does LibTorch.
///
/// A text with no tokens (the empty text) embeds to the zero vector for every normaliser.
///
/// fit(texts) loads the checkpoint and the tokenizer artifact (checking that the vocabulary
/// fits the model) and, for standardize only, embeds the texts to fit mean and std (std 0 ->
/// 1; texts with no tokens are left out). load() loads them too.
///
/// context(): the default of Embedder (re-embeds the whole prefix at every current()), which
/// is exact; an incremental version would have to keep the model's key/value cache.
///
/// Saved tensors (`<prefix>.` + name): mean, scale (F64 [d_model]; 0 and 1 unless
/// standardize), settings (strings "key=value" of the options that change embed(), checked
/// against the options on load), source (strings "checkpoint=", "tokenizer=" (the paths),
/// "model=" (the model's OptConfig), "checkpoint_digest=", "tokenizer_digest=" (see
/// file_digest.h)). load() fails with an Error naming the path when the checkpoint or
/// tokenizer is missing, and naming what differs when either was replaced.
///
/// \code
///   LmEmbedder e(opts, host.registry());   // the registry holds the tokenizer plugins
///   e.fit(train_texts);
///   cbtm::Matrix y = e.embed({"the linux kernel"});     // 1 x d_model
/// \endcode
#include <memory>
#include <string>
#include <vector>

#include "cbtm/embedder.h"
#include "cbtm/registry.h"
#include "lm_options.h"

namespace cbtm::lm_embed {

class LmEmbedder : public Embedder {
 public:
  using Options = LmOptions;
  /// `registry` creates the tokenizer recorded in the tokenizer artifact; it must outlive
  /// the embedder (the plugin passes the registry it was registered into).
  LmEmbedder(const Options& options, const Registry& registry);
  ~LmEmbedder() override;

  void fit(const std::vector<std::string>& texts) override;
  Matrix embed(const std::vector<std::string>& texts) const override;
  /// d_model (read from the checkpoint's config.json before fit() or load()).
  int64_t dim() const override;
  void save(TensorFileWriter& out, const std::string& prefix) const override;
  void load(const TensorFile& in, const std::string& prefix) override;

  bool ready() const { return state_ != nullptr; }
  const Options& options() const { return options_; }
  /// The number of leading tokens embedded: min(max_tokens, max_positions - 1).
  int64_t effective_max_tokens() const;
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& scale() const { return scale_; }

 private:
  struct State;  // the model, tokenizer and digests (lm_embedder.cpp)
  /// Loads checkpoint and tokenizer from the options' paths. `where` prefixes messages.
  void open(const std::string& where);
  void require_ready(const char* what) const;
  /// Pooled hidden states before the normaliser, one row per text (zero for no tokens);
  /// `lengths` receives the number of tokens embedded per text.
  Matrix pool(const std::vector<std::string>& texts, std::vector<int64_t>& lengths) const;

  Options options_;
  const Registry* registry_;
  std::unique_ptr<State> state_;
  std::vector<double> mean_, scale_;
};

}  // namespace cbtm::lm_embed
