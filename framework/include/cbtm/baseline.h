#pragma once
/// \file baseline.h
/// Extension point: a model trained next to C-BTM at the same total token budget, from the
/// same seed, and evaluated on the same held-out documents (dense, MoE, ...).
///
/// \code
///   baselines:
///     - {type: dense}
/// \endcode
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cbtm/component.h"
#include "cbtm/config_node.h"
#include "cbtm/trainer.h"

namespace cbtm {

class Registry;
class LanguageModel;

/// What the pipeline hands a baseline.
struct BaselineContext {
  const Registry* registry = nullptr;
  Trainer* trainer = nullptr;          ///< the trainer configured for the branch phase
  ConfigNode trainer_config;           ///< its section (branch.trainer, resolved): for a baseline
                                       ///< that trains with some settings of its own
  std::string dir;                     ///< this baseline's own output directory
  std::string seed_checkpoint;         ///< the seed LM every model starts from
  std::vector<std::string> all_data;   ///< token-shard directories of every cluster
  int64_t tokens = 0;                  ///< total training tokens (same as all experts together)
  uint64_t seed = 0;
  int32_t bos_id = 2;                  ///< document separator used when packing
  int32_t eos_id = 2;                  ///< the tokenizer's end-of-text id (TrainJob::eos_id)
  int32_t pad_id = 1;                  ///< the tokenizer's padding id (TrainJob::pad_id)
};

class Baseline : public Component {
 public:
  static constexpr const char* kKind = "baseline";
  /// Trains the baseline (resumable; returns at once when finished) and says what training
  /// cost: the final checkpoint, steps, tokens and FLOPs (recorded with the baseline's stage,
  /// so suites compare budgets in FLOPs as well as tokens).
  virtual TrainResult train(const BaselineContext& ctx) = 0;
  /// The trained model, to be scored like an expert.
  virtual std::unique_ptr<LanguageModel> model(const BaselineContext& ctx) = 0;
};

}  // namespace cbtm
