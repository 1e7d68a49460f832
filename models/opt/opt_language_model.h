#pragma once
/// \file opt_language_model.h
/// A loaded OptLM behind the cbtm::LanguageModel interface (used by the "opt" plugin).
#include <cstdint>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "cbtm/language_model.h"
#include "opt/opt.h"

namespace cbtm::models {

/// Scores sequences with an OptLM on `device`: sorts them by length, packs them into
/// right-padded batches of at most kBatchTokens (CPU) or kBatchTokensGpu tokens (pad id 1), runs under no-grad and
/// (when use_bf16(device)) bf16 autocast, and gathers log_softmax (float32) of each target.
class OptLanguageModel : public LanguageModel {
 public:
  /// Padded tokens per forward pass on the CPU. Small enough that a layer's activations stay
  /// in cache: all-experts evaluation of the quickstart run took 3.23 s against 3.50 s with
  /// 16384 (three alternated infer_bench runs each, 2 cores; 1024 as 2048).
  static constexpr int64_t kBatchTokens = 2048;
  static constexpr int64_t kBatchTokensGpu = 16384;  ///< on a GPU, where larger batches fill the device
  static constexpr int64_t kLogitElements = int64_t(1) << 25;  ///< rows x vocab per head chunk
  static constexpr int64_t kPadId = 1;
  /// The fixed cost of one forward pass, in padded tokens: batches are cut to minimise padded
  /// tokens + this per batch. (Filling each batch up to kBatchTokens instead padded most rows
  /// of a batch of a few hundred documents to its longest: evaluation ran 1.6x slower, and a
  /// top-k expert's smaller set of documents was padded worse than all experts' -- bench/README.md.)
  /// 128 was the fastest of 0 / 32 / 64 / 128 / 256 / 1024 / 4096 with infer_bench on 2 cores.
  static constexpr int64_t kBatchOverheadTokens = 128;

  OptLanguageModel(OptLM model, torch::Device device);
  std::vector<std::vector<float>> score(
      const std::vector<std::vector<int32_t>>& sequences) override;
  /// Runs the body over every position, the tied head and log_softmax only where wanted.
  std::vector<std::vector<float>> score_positions(
      const std::vector<std::vector<int32_t>>& sequences,
      const std::vector<std::vector<uint8_t>>& wanted) override;
  std::vector<std::vector<float>> next_token_log_probs(
      const std::vector<std::vector<int32_t>>& sequences) override;
  /// Incremental: each extend() runs only the new tokens against the key/value cache.
  std::unique_ptr<Continuation> continuation() override;
  int64_t max_length() const override { return model_->config().max_positions; }
  int64_t parameters() const override { return count_parameters(model_->config()); }

  /// The batches [begin, end) of `order` (longest first), at most batch_tokens padded tokens
  /// each (a longer sequence alone), minimising padded tokens + kBatchOverheadTokens per batch.
  static std::vector<std::pair<size_t, size_t>> plan_batches(const std::vector<std::vector<int32_t>>& sequences,
                                                             const std::vector<size_t>& order,
                                                             int64_t batch_tokens = kBatchTokens);

 private:
  /// score() / score_positions() (wanted: null for every position).
  std::vector<std::vector<float>> score_impl(const std::vector<std::vector<int32_t>>& sequences,
                                             const std::vector<std::vector<uint8_t>>* wanted);
  /// Scores sequences[order[begin..end)] (longest first) into out.
  void score_batch(const std::vector<std::vector<int32_t>>& sequences,
                   const std::vector<std::vector<uint8_t>>* wanted, const std::vector<size_t>& order, size_t begin, size_t end,
                   std::vector<std::vector<float>>& out);

  OptLM model_;
  torch::Device device_;
};

}  // namespace cbtm::models
