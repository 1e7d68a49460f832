#pragma once
/// \file training_run.h
/// The body of LmTrainer::train, one call: plan the job (steps, batch, job identity), return
/// at once if out_dir/final exists, else resume from the newest valid checkpoint (or start
/// from job.init), train with checkpoints and metrics, and write out_dir/final.
#include "cbtm/trainer.h"
#include "lm_trainer.h"

namespace cbtm::lm {

TrainResult run_training(const LmTrainer::Options& options, const TrainJob& job);

}  // namespace cbtm::lm
