#include "lm_trainer.h"

#include "training_run.h"

namespace cbtm::lm {

void LmTrainer::Options::validate() const {
  require(lr > 0, "lr", "must be positive");
  require(batch_size >= 1, "batch_size", "must be >= 1");
  require(seq_len >= 1, "seq_len", "must be >= 1");
  require(grad_accum >= 1, "grad_accum", "must be >= 1");
  require(adam_beta1 >= 0 && adam_beta1 < 1, "adam_beta1", "must be in [0, 1)");
  require(adam_beta2 >= 0 && adam_beta2 < 1, "adam_beta2", "must be in [0, 1)");
  require(adam_eps > 0, "adam_eps", "must be positive");
  require(weight_decay >= 0, "weight_decay", "must be >= 0");
  require(clip >= 0, "clip", "must be >= 0 (0 disables clipping)");
  require(warmup_steps >= 0, "warmup_steps", "must be >= 0");
  require(checkpoint_every >= 0, "checkpoint_every", "must be >= 0 (0: only the final model)");
  require(keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1");
  require(log_every >= 1, "log_every", "must be >= 1");
  require(loader_queue >= 1, "loader_queue", "must be >= 1");
  require(max_steps_this_run >= 0, "max_steps_this_run", "must be >= 0 (0: no limit)");
}

LmTrainer::LmTrainer(const Options& options) : options_(options) { options_.validate(); }

TrainResult LmTrainer::train(const TrainJob& job) { return run_training(options_, job); }

}  // namespace cbtm::lm
