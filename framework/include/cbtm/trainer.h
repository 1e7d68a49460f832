#pragma once
/// \file trainer.h
/// Extension point: train a language model checkpoint on tokenized data for a token
/// budget. Used for the seed LM, every expert (branch = start from the seed checkpoint),
/// and baselines. Training must be resumable: when `out_dir` already holds a checkpoint of
/// this job, train() continues from it and reproduces the same loss curve.
///
/// \code
///   TrainJob job;
///   job.name = "expert-002"; job.init = "out/seed/final";
///   job.data = {"out/clusters/cluster-002"}; job.tokens = 1'000'000;
///   job.out_dir = "out/experts/expert-002";
///   TrainResult r = trainer->train(job);   // r.checkpoint == "out/experts/expert-002/final"
/// \endcode
#include <cstdint>
#include <string>
#include <vector>

#include "cbtm/component.h"

namespace cbtm {

struct TrainJob {
  std::string name;               ///< for logs ("seed", "expert-002", "dense")
  std::string init;               ///< checkpoint directory to start from
  std::vector<std::string> data;  ///< token-shard directories (see token_shard.h), mixed
  int64_t tokens = 0;             ///< training budget in tokens (input positions)
  int64_t batch_divisor = 1;      ///< divide the configured batch size by this (>= 1 seq)
  std::string out_dir;            ///< checkpoints, logs; the result goes to out_dir/final
  uint64_t seed = 0;              ///< data order and dropout
  int32_t bos_id = 2;             ///< token put before every document when packing
  /// The run tokenizer's end-of-text and padding ids, for the checkpoints' config.json (with
  /// bos_id), so that a sealed checkpoint needs no rewrite afterwards; OPT's by default.
  int32_t eos_id = 2;
  int32_t pad_id = 1;
};

struct TrainResult {
  std::string checkpoint;  ///< out_dir/final
  int64_t steps = 0;
  int64_t tokens = 0;
  double first_loss = 0;   ///< mean training loss over the first logged window
  double last_loss = 0;    ///< mean training loss over the last logged window
  double seconds = 0;
  double flops = 0;        ///< training FLOPs per the paper's A.2 formula
};

class Trainer : public Component {
 public:
  static constexpr const char* kKind = "trainer";
  /// Trains (or resumes, or returns at once if out_dir/final exists). Error on bad data,
  /// a non-finite loss (the last good checkpoint is kept), or a missing init checkpoint.
  virtual TrainResult train(const TrainJob& job) = 0;
};

}  // namespace cbtm
