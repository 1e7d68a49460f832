#pragma once
/// \file lm_options.h
/// Options of the "lm" embedder, mirrored 1:1 in YAML.
///
/// \code{.yaml}
///   embedder:
///     type: lm
///     checkpoint: runs/seed/checkpoints/final   # an OPT checkpoint directory (required)
///     tokenizer: runs/seed/tokenizer.safetensors  # the tokenizer it was trained with (required)
///     max_tokens: 512
///     batch_tokens: 16384
///     pooling: mean          # mean | last
///     normalize: l2          # l2 | standardize | none
///     precision: bf16        # bf16 | fp32
///     layer: -1              # -1: final LayerNorm output; 0..n_layers: HF hidden_states[i]
/// \endcode
#include <cstdint>
#include <string>

#include "cbtm/options.h"

namespace cbtm::lm_embed {

struct LmOptions {
  std::string checkpoint;
  std::string tokenizer;
  int64_t max_tokens = 512;
  int64_t batch_tokens = 16384;
  std::string pooling = "mean";
  std::string normalize = "l2";
  std::string precision = "bf16";
  int64_t layer = -1;

  template <class V>
  void visit(V& v) {
    v("checkpoint", checkpoint,
      "OPT checkpoint directory (config.json + model.safetensors) whose hidden states embed "
      "the documents (required; relative to the working directory)");
    v("tokenizer", tokenizer,
      "cbtm tokenizer artifact the checkpoint was trained with, e.g. RUN/tokenizer.safetensors "
      "(required)");
    v("max_tokens", max_tokens,
      "embed the first max_tokens tokens of each document (at most the model's max_positions "
      "- 1: a </s> goes first)");
    v("batch_tokens", batch_tokens,
      "padded tokens per forward pass: documents are sorted by length and packed into batches "
      "of about this many tokens");
    v("pooling", pooling,
      "how token states become one vector: mean (over the document's tokens) | last (the "
      "state of its last token)");
    v("normalize", normalize,
      "row normaliser after pooling: l2 (unit rows) | standardize (per-dimension mean 0 / "
      "variance 1 fitted on the fit() texts) | none");
    v("precision", precision,
      "model compute: bf16 (autocast, fast on CPUs with AMX and on GPUs) | fp32");
    v("layer", layer,
      "which hidden states: -1 = the final LayerNorm output; 0..n_layers = Hugging Face's "
      "hidden_states[layer] (0: embeddings, i: after block i, n_layers: same as -1)");
  }

  void validate() const {
    require(!checkpoint.empty(), "checkpoint", "is required: the OPT checkpoint directory to embed with");
    require(!tokenizer.empty(), "tokenizer",
            "is required: the tokenizer artifact of the checkpoint (e.g. RUN/tokenizer.safetensors)");
    require(max_tokens > 0, "max_tokens", "must be positive");
    require(batch_tokens > 0, "batch_tokens", "must be positive");
    require_one_of(pooling, {"mean", "last"}, "pooling");
    require_one_of(normalize, {"l2", "standardize", "none"}, "normalize");
    require_one_of(precision, {"bf16", "fp32"}, "precision");
    require(layer >= -1, "layer", "must be -1 (final LayerNorm output) or a layer index >= 0");
  }
};

}  // namespace cbtm::lm_embed
